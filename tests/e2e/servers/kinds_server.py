"""An MCP server (Python SDK 2.x, both eras) with resources, a prompt and a tool that asks the user for input:
the request kinds mcpwrap and the proxy judge besides tools/call. `python kinds_server.py` serves stdio;
`python kinds_server.py PORT` serves Streamable HTTP on 127.0.0.1:PORT."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

server = MCPServer("kinds")


class Confirm(BaseModel):
    sure: bool


@server.resource("notes://public/readme")
def readme() -> str:
    """The public readme."""
    return "public readme"


@server.resource("notes://private/keys")
def keys() -> str:
    """Private keys."""
    return "-----BEGIN PRIVATE KEY-----"


@server.prompt()
def greet(who: str) -> str:
    """Greet someone."""
    return f"Say hello to {who}."


@server.tool()
async def confirm(question: str, ctx: Context) -> str:
    """Ask the user to confirm something."""
    answer = await ctx.elicit(question, Confirm)
    return f"{answer.action}"


if __name__ == "__main__":
    if len(sys.argv) > 1:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
    else:
        server.run("stdio")
