"""One MCP server (Python SDK `MCPServer`, both eras) for the parity e2e: the same logic over stdio and over
Streamable HTTP, so that any difference a client sees comes from the mesh's surface, not from the server.

    python parity_server.py DESCRIPTION_FILE stdio
    python parity_server.py DESCRIPTION_FILE PORT      # Streamable HTTP on 127.0.0.1:PORT

`echo` says its text back; each `tools/list` reads DESCRIPTION_FILE and lists `echo` with that text as its
description (a rug pull on demand: rewrite the file). `hide_me` is for the policy to deny whatever the
arguments; `wipe` says it is destructive (`annotations.destructiveHint`), for a rule on annotations. Two
resources: `notes://public/readme` and `notes://private/keys` (a read to deny: refused as a JSON-RPC error
rather than an isError result).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations


class Parity(MCPServer):
    def __init__(self, description_file: Path) -> None:
        super().__init__("parity")
        self._file = description_file
        self._description: str | None = None
        self.add_tool(hide_me, description="Never shown to the agent.")
        self.add_tool(wipe, description="Deletes everything.", annotations=ToolAnnotations(destructive_hint=True))
        self.resource("notes://public/readme")(readme)
        self.resource("notes://private/keys")(keys)

    async def list_tools(self) -> Any:
        description = self._file.read_text("utf-8").strip()
        if description != self._description:
            if self._description is not None:
                self.remove_tool("echo")
            self.add_tool(echo, description=description)
            self._description = description
        return await super().list_tools()


def echo(text: str) -> str:
    return text


def hide_me() -> str:
    return "hidden"


def wipe() -> str:
    return "wiped"


def readme() -> str:
    """The public readme."""
    return "public readme"


def keys() -> str:
    """Private keys."""
    return "-----BEGIN PRIVATE KEY-----"


def main() -> None:
    server = Parity(Path(sys.argv[1]))
    if sys.argv[2] == "stdio":
        server.run("stdio")
        return
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))


if __name__ == "__main__":
    main()
