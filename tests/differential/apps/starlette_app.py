"""The notes API on Starlette/uvicorn, recording what each handler acted on (differential harness upstream).

Idioms of a typical Starlette app: the body is read with `await request.json()` whatever its content type
(a form body with `request.form()`), query values with `dict(request.query_params)` (the last of a repeated
key wins), and an `X-HTTP-Method-Override` or `X-HTTP-Method` header on a POST changes the method, as the
usual override middleware does. Run: `python starlette_app.py PORT [CERT_AND_KEY.pem]`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

NONCE = "x-diff-nonce"
SEEN: dict[str, list[dict[str, Any]]] = {}
OVERRIDES = (b"x-http-method-override", b"x-http-method")


class MethodOverride:
    """POST + an override header -> the method the header names (what the upstream then routes on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for name, value in scope["headers"]:
                if name.lower() in OVERRIDES and value.strip():
                    scope = dict(scope, method=value.decode("latin-1").strip().upper())
                    break
        await self.app(scope, receive, send)


async def _body(request: Request) -> tuple[bool, Any]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return True, {k: v for k, v in form.items() if isinstance(v, str)}
    raw = await request.body()
    if not raw:
        return True, None
    try:
        return True, await request.json()
    except ValueError:
        return False, None


async def _record(request: Request, op: str | None) -> JSONResponse:
    ok, body = await _body(request)
    record = {
        "op": op if ok else None,
        "method": request.method,
        "params": dict(request.path_params),
        "query": dict(request.query_params),
        "body": body,
        "host": request.headers.get("host"),
    }
    SEEN.setdefault(request.headers.get(NONCE, "-"), []).append(record)
    return JSONResponse(record, status_code=200 if ok and op else 400 if not ok else 404)


async def get_note(request: Request) -> JSONResponse:
    return await _record(request, "getNote")


async def update_note(request: Request) -> JSONResponse:
    return await _record(request, "updateNote")


async def delete_note(request: Request) -> JSONResponse:
    return await _record(request, "deleteNote")


async def purge_note(request: Request) -> JSONResponse:
    return await _record(request, "purgeNote")


async def unrouted(request: Request) -> JSONResponse:
    return await _record(request, None)


async def seen(request: Request) -> JSONResponse:
    return JSONResponse(SEEN.pop(request.path_params["nonce"], []))


ALL = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
app = MethodOverride(
    Starlette(
        routes=[
            Route("/__diff/seen/{nonce}", seen, methods=["GET"]),
            Route("/v1/notes/{id}", get_note, methods=["GET"]),
            Route("/v1/notes/{id}", update_note, methods=["POST"]),
            Route("/v1/notes/{id}", delete_note, methods=["DELETE"]),
            Route("/v1/notes/{id}/purge", purge_note, methods=["POST"]),
            Route("/{rest:path}", unrouted, methods=ALL),
        ]
    )
)

if __name__ == "__main__":
    # With a second argument (a PEM holding the certificate and its key), HTTPS.
    tls = {"ssl_certfile": sys.argv[2], "ssl_keyfile": sys.argv[2]} if len(sys.argv) > 2 else {}
    print(json.dumps({"framework": "starlette", "port": int(sys.argv[1]), "tls": bool(tls)}), flush=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, **tls)
