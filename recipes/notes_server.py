"""A small stdio MCP server (Python SDK) for the mcpwrap recipes: notes you can read, write and delete.

Run on its own: `.venv/bin/python recipes/notes_server.py` (speaks MCP on stdin/stdout).
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("notes")
NOTES: dict[str, str] = {"todo": "buy milk"}


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def read_note(name: str) -> str:
    """Read one note."""
    return NOTES.get(name, "")


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
def write_note(name: str, text: str) -> str:
    """Write (or replace) one note."""
    NOTES[name] = text
    return "saved"


@server.tool(annotations=ToolAnnotations(destructiveHint=True))
def delete_note(name: str) -> str:
    """Delete one note."""
    NOTES.pop(name, None)
    return "deleted"


if __name__ == "__main__":
    server.run("stdio")
