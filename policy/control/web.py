"""The operator's web page: login (one-time link or token form), the page, its live HTML fragments and
its static files. State changes go through the JSON API with the session's CSRF token.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from policy.control import render, render_mesh, render_trace
from policy.control.api_mesh import mesh_view
from policy.control.auth import SESSION_COOKIE, SESSION_SECONDS, Session
from policy.control.common import plane_of
from policy.control.plane import ControlPlane
from policy.control.problems import ApiError
from policy.control.views import approval_view, grant_view, policies_view
from policy.store.base import Approval, ApprovalState
from policy.trace.feed import TraceFilter, parse_filter

TRACE_ROWS = 50
SESSION_ROWS = 100  # a session's records under a trace's detail, newest first
MAX_SEQ = 2**63 - 1
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
MAX_LOGIN_BODY = 4096


def _html(text: str, status: int = 200) -> Response:
    """An HTML response that always encodes: a lone surrogate (JSON carries it, UTF-8 cannot) slipping past
    the renderers must not turn the whole inbox or trace list into an error the operator cannot read."""
    return Response(text.encode("utf-8", "backslashreplace"), status, media_type="text/html; charset=utf-8")


def _logged_in(request: Request, plane: ControlPlane) -> Session | None:
    return plane.auth.session(request.cookies.get(SESSION_COOKIE))


def _with_session(response: Response, session: Session) -> Response:
    response.set_cookie(
        SESSION_COOKIE, session.id, max_age=int(SESSION_SECONDS), httponly=True, samesite="strict", path="/"
    )
    return response


def inbox_html(plane: ControlPlane) -> str:
    now = plane.now()
    pending = plane.operator.approvals(ApprovalState.PENDING, limit=200)
    return render.inbox(
        (approval_view(a, now, plane.redact_keys) for a in reversed(pending)),
        (approval_view(a, now, plane.redact_keys) for a in recently_decided(plane, now)),
    )


def recently_decided(plane: ControlPlane, now: float) -> list[Approval]:
    """Approvals decided (or expired undecided) in the last DECIDED_SECONDS, newest decision first: a card
    leaves a line "approved by ..." instead of vanishing, whoever decided it and wherever."""

    def settled_at(a: Approval) -> float:
        return a.resolved_at if a.resolved_at is not None else a.expires_at

    recent = [
        a
        for a in plane.operator.approvals(None, limit=200)
        if a.effective_state(now) is not ApprovalState.PENDING and now - settled_at(a) <= render.DECIDED_SECONDS
    ]
    return sorted(recent, key=settled_at, reverse=True)[: render.DECIDED_LINES]


def traces_html(plane: ControlPlane, flt: TraceFilter) -> str:
    return render.traces(plane.feed.query(flt, TRACE_ROWS))


def grants_html(plane: ControlPlane) -> str:
    now = plane.now()
    return render.grants(grant_view(g, now) for g in plane.operator.grants())


def mesh_html(plane: ControlPlane) -> str:
    return render_mesh.mesh(mesh_view(plane))


def policies_html(plane: ControlPlane) -> str:
    return render.policies(policies_view(plane.policy_set), plane.policy_set.policy_hash)


async def index(request: Request) -> Response:
    plane = plane_of(request)
    session = _logged_in(request, plane)
    if session is None:
        return RedirectResponse("/login", 303)
    return _html(
        render.page(
            operator=session.operator,
            csrf=session.csrf,
            inbox_html=inbox_html(plane),
            traces_html=traces_html(plane, TraceFilter()),
            grants_html=grants_html(plane),
            policies_html=policies_html(plane),
            mesh_html=mesh_html(plane),
        )
    )


async def login_page(request: Request) -> Response:
    plane = plane_of(request)
    code = request.query_params.get("code")
    if code is None:
        return _html(render.login())
    session = plane.auth.redeem(code)
    if session is None:
        return _html(render.login("That login link was already used or has expired."), 401)
    return _with_session(_html(render.enter()), session)


async def login_form(request: Request) -> Response:
    plane = plane_of(request)
    body = await request.body()
    token = parse_qs(body[:MAX_LOGIN_BODY].decode("utf-8", "replace")).get("token", [""])[0]
    session = plane.auth.login_with_token(token)
    if session is None:
        return _html(render.login("Wrong token."), 401)
    return _with_session(RedirectResponse("/", 303), session)


async def logout(request: Request) -> Response:
    plane = plane_of(request)
    plane.principal(request)  # a logout must carry the CSRF token too
    plane.auth.logout(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def fragment(request: Request) -> Response:
    plane = plane_of(request)
    plane.principal(request)
    name = request.path_params["name"]
    if name == "inbox":
        return _html(inbox_html(plane))
    if name == "traces":
        try:
            flt = parse_filter(dict(request.query_params))
        except ValueError as exc:
            return _html(f'<p class="flag">{render.escape(exc)}</p>', 400)
        return _html(traces_html(plane, flt))
    if name == "grants":
        return _html(grants_html(plane))
    if name == "policies":
        return _html(policies_html(plane))
    if name == "mesh":
        return _html(mesh_html(plane))
    raise ApiError(404, "not_found", f"no fragment {name!r}")


async def trace_detail(request: Request) -> Response:
    """One trace record in detail, with the records of its session (a fragment, like the others)."""
    plane = plane_of(request)
    plane.principal(request)
    seq = int(request.path_params["seq"])
    if seq > MAX_SEQ:  # SQLite integers are 64-bit: a longer number names no record
        return _html(render_trace.missing(seq), 404)
    found = plane.feed.after(seq - 1, 1)
    if not found or found[0].get("seq") != seq:
        return _html(render_trace.missing(seq), 404)
    record = found[0]
    session = record.get("session_id")
    same = plane.feed.query(TraceFilter(session_id=str(session)), SESSION_ROWS) if session else []
    rows = render.traces(same, current=seq) if same else ""
    approval_id = record.get("approval_id")
    approval = plane.operator.store.get_approval(str(approval_id)) if approval_id else None
    line = approval.request_line if approval is not None else None
    return _html(render_trace.detail(record, rows, len(same), request=line))


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        raise ApiError(404, "not_found", f"no static file {name!r}")
    text = resources.files("policy.control").joinpath("static", name).read_text("utf-8")
    return Response(text, media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})


routes = [
    Route("/", index, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_form, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/ui/{name}", fragment, methods=["GET"]),
    Route("/ui/trace/{seq:int}", trace_detail, methods=["GET"]),
    Route("/static/{name}", static, methods=["GET"]),
]
