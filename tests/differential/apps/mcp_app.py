"""A notes MCP server (Python SDK `MCPServer`, Streamable HTTP, stateless, JSON answers) that records every
request it receives and every tool call it runs, keyed by the request's X-Diff-Nonce header (differential
harness upstream).

The SDK decodes bodies its own way (charset, BOM, content-type checks, pydantic's JSON parser); what it ran
is what counts. Run: `python mcp_app.py PORT`.
"""

from __future__ import annotations

import contextvars
import json
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

NONCE: contextvars.ContextVar[str] = contextvars.ContextVar("nonce", default="-")
SEEN: dict[str, list[dict[str, Any]]] = {}
mcp = MCPServer("notes")


def _ran(tool: str, args: dict[str, Any]) -> str:
    SEEN.setdefault(NONCE.get(), []).append({"op": tool, "args": args})
    return f"{tool} ran"


@mcp.tool()
def read_note(name: str, text: str | None = None) -> str:
    """Read a note."""
    return _ran("read_note", {"name": name} | ({} if text is None else {"text": text}))


@mcp.tool()
def write_note(name: str, text: str | None = None) -> str:
    """Write a note."""
    return _ran("write_note", {"name": name} | ({} if text is None else {"text": text}))


@mcp.tool()
def delete_note(name: str, text: str | None = None) -> str:
    """Delete a note."""
    return _ran("delete_note", {"name": name} | ({} if text is None else {"text": text}))


@mcp.custom_route("/__diff/seen/{nonce}", methods=["GET"])
async def seen(request: Request) -> JSONResponse:
    return JSONResponse(SEEN.pop(request.path_params["nonce"], []))


class Nonce:
    """Carries the request's X-Diff-Nonce header into the tool functions (the SDK runs them in its tasks)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = dict(scope["headers"]).get(b"x-diff-nonce", b"-").decode("latin-1")
            if not scope["path"].startswith("/__diff/"):
                # Every request that arrives, tool call or not: the harness tells forwarded from refused by it.
                SEEN.setdefault(value, []).append({"op": None, "method": scope["method"], "path": scope["path"]})
            token = NONCE.set(value)
            try:
                await self.app(scope, receive, send)
            finally:
                NONCE.reset(token)
            return
        await self.app(scope, receive, send)


if __name__ == "__main__":
    port = int(sys.argv[1])
    # Host checks off: the harness sends Host spellings on purpose, judging them is the proxy's job.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = mcp.streamable_http_app(json_response=True, stateless_http=True, transport_security=security)
    print(json.dumps({"framework": "mcp", "port": port}), flush=True)
    uvicorn.run(Nonce(app), host="127.0.0.1", port=port, log_level="warning", access_log=False)
