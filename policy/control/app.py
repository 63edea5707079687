"""The control plane as an ASGI app: routes, problem+json errors, Host checks and security headers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policy.control import api_mesh, api_read, api_state, web
from policy.control.common import authed
from policy.control.openapi import document
from policy.control.plane import ControlPlane
from policy.control.problems import ApiError, problem, render
from policy.core.errors import StoreUnavailable

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def package_version() -> str:
    try:
        return version("agent-mesh")
    except PackageNotFoundError:
        return "0+unknown"


async def openapi(request: Request) -> Response:
    authed(request)
    return JSONResponse(document(package_version()))


class HostCheck:
    """Pure ASGI middleware: refuse a Host header other than the listen address or loopback (DNS rebinding)."""

    def __init__(self, app: ASGIApp, plane: ControlPlane) -> None:
        self.app = app
        self.plane = plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not self.plane.host_allowed(host):
                await problem(400, "bad_host", f"Host {host!r} is not this control plane")(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Pure ASGI middleware (streams stay unbuffered): add the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    if key not in headers:
                        headers[key] = value
            await send(message)

        await self.app(scope, receive, with_headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return problem(exc.status_code, code, str(exc.detail))


async def _store_error(request: Request, exc: Exception) -> Response:
    return problem(503, "store_unavailable", str(exc))


def create_app(plane: ControlPlane) -> Starlette:
    """The control plane app on `plane`; `agent-mesh serve` runs it under uvicorn, tests through httpx."""
    routes = [*api_state.routes, *api_mesh.routes, *api_read.routes, Route("/openapi.json", openapi, methods=["GET"])]
    routes.append(Route("/decide", api_read.dry_run, methods=["POST"]))
    routes += web.routes
    app = Starlette(
        routes=routes,
        middleware=[Middleware(HostCheck, plane=plane), Middleware(SecurityHeaders)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, StoreUnavailable: _store_error},
    )
    app.state.plane = plane
    return app
