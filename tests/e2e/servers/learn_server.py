"""An MCP server (Python SDK `MCPServer`, both eras, Streamable HTTP) that needs a bearer token on every
request, for the e2e of the proxy's own tools/list before a session's first call.

    python learn_server.py PORT TOKEN [broken|sse]

`echo` says its text back; `wipe` says it is destructive (`annotations.destructiveHint`). With `broken`, its
`tools/list` fails (a JSON-RPC error), while its tools still run when called. With `sse`, it speaks the
2024-11-05 transport (an event stream at /sse, calls POSTed to the endpoint it announces).
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from starlette.types import ASGIApp, Receive, Scope, Send


class Learn(MCPServer):
    def __init__(self, broken: bool) -> None:
        super().__init__("learn")
        self._broken = broken
        self.add_tool(echo, description="Says the text back.")
        self.add_tool(wipe, description="Deletes everything.", annotations=ToolAnnotations(destructive_hint=True))

    async def list_tools(self) -> Any:
        if self._broken:
            raise RuntimeError("this server cannot list its tools")
        return await super().list_tools()


def echo(text: str) -> str:
    return text


def wipe() -> str:
    return "wiped"


def bearer(app: ASGIApp, token: str) -> ASGIApp:
    """Every HTTP request without `Authorization: Bearer <token>` is answered 401."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"a bearer token is required"})
            return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    port, token = int(sys.argv[1]), sys.argv[2]
    server = Learn(broken=sys.argv[3:] == ["broken"])
    app = server.sse_app() if sys.argv[3:] == ["sse"] else server.streamable_http_app()
    uvicorn.run(bearer(app, token), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
