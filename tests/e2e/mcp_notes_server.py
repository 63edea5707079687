"""A small MCP server (Python SDK `MCPServer`) for the proxy e2e tests:

    python mcp_notes_server.py PORT streamable-http [--json] [--stateless]
    python mcp_notes_server.py PORT sse            # the deprecated 2024-11-05 HTTP+SSE transport

`wait_for_ack` reports progress, then waits (bounded) until the client has seen it: it only finishes
"acknowledged" when progress notifications reach the client while the call is still running.
"""

from __future__ import annotations

import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer

ACK_WAIT_SECONDS = 20.0

mcp = MCPServer("notes")
NOTES: dict[str, str] = {"hello": "world"}


@mcp.tool()
def read_note(name: str) -> str:
    """Read a note."""
    return NOTES.get(name, "")


@mcp.tool()
def write_note(name: str, text: str) -> str:
    """Write a note."""
    NOTES[name] = text
    return f"wrote {name}"


@mcp.tool()
def delete_note(name: str) -> str:
    """Delete a note."""
    NOTES.pop(name, None)
    return f"deleted {name}"


@mcp.tool()
async def wait_for_ack(marker: str, ctx: Context) -> str:
    """Report progress, then wait for the client to create `marker` (it does so when the progress arrives)."""
    await ctx.report_progress(1, 2, "started")
    with anyio.move_on_after(ACK_WAIT_SECONDS):
        # The marker is a file another process creates: there is no event to await.
        while not await anyio.Path(marker).exists():  # noqa: ASYNC110
            await anyio.sleep(0.02)
        await ctx.report_progress(2, 2, "acknowledged")
        return "acknowledged"
    return "no progress reached the client while the call ran"


def main() -> None:
    port = int(sys.argv[1])
    transport = sys.argv[2]
    if transport == "sse":
        mcp.run("sse", host="127.0.0.1", port=port)
        return
    mcp.run(
        "streamable-http",
        host="127.0.0.1",
        port=port,
        json_response="--json" in sys.argv,
        stateless_http="--stateless" in sys.argv,
    )


if __name__ == "__main__":
    main()
