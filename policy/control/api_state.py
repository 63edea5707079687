"""Control API routes that read and change governance state: approvals, grants and decision memory.

Every change goes through the Operator, the same object `agent-mesh approvals|grants|memory` uses.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from policy.control.common import (
    authed,
    confidence_field,
    duration_field,
    json_body,
    limit_param,
    ok,
    text_field,
)
from policy.control.plane import ControlPlane, Principal
from policy.control.problems import ApiError, bad_request, not_found
from policy.control.views import approval_view, fact_view, grant_view
from policy.core.conditions import compile_glob
from policy.store.base import MIN_PREFIX, Approval, ApprovalState, Grant, StoreConflict
from policy.trace.feed import TraceFilter

SUPERVISOR_PREFIX = "supervisor:"
STATES = {s.value: s for s in ApprovalState}


def _glob(request: Request, key: str) -> Any:
    raw = request.query_params.get(key)
    if not raw:
        return None
    try:
        return compile_glob(raw)
    except ValueError as exc:
        raise bad_request(f"{key}: {exc}") from None


def _approval(plane: ControlPlane, approval_id: str) -> Approval:
    try:
        return plane.operator.show(approval_id)
    except StoreConflict as exc:
        raise not_found(str(exc)) from None


def _grant(plane: ControlPlane, grant_id: str) -> Grant:
    if len(grant_id) < MIN_PREFIX:
        raise not_found(f"grant id {grant_id!r} is too short: give at least {MIN_PREFIX} characters")
    found = [g for g in plane.operator.grants(include_inactive=True) if g.id.startswith(grant_id.lower())]
    if len(found) != 1:
        raise not_found(
            f"no grant id starts with {grant_id!r}" if not found else f"{grant_id!r} matches several grants"
        )
    return found[0]


async def list_approvals(request: Request) -> Response:
    plane, _ = authed(request)
    status = request.query_params.get("status", "pending")
    if status != "all" and status not in STATES:
        raise bad_request(f"status {status!r} is not one of all, {', '.join(STATES)}")
    agent_rx, tool_rx = _glob(request, "agent"), _glob(request, "tool")
    limit = limit_param(request)
    now = plane.now()
    rows = plane.operator.approvals(None if status == "all" else STATES[status], limit=1000)
    picked = [
        a
        for a in rows
        if (agent_rx is None or agent_rx.match(a.agent)) and (tool_rx is None or tool_rx.match(a.full_name))
    ]
    return ok({"approvals": [approval_view(a, now, plane.redact_keys) for a in picked[:limit]]})


async def show_approval(request: Request) -> Response:
    plane, _ = authed(request)
    a = _approval(plane, request.path_params["id"])
    now = plane.now()
    traces = plane.feed.query(TraceFilter(agent=a.agent), 20)
    grants = [grant_view(g, now) for g in plane.operator.grants() if compile_glob(g.agent).match(a.agent)]
    facts = [fact_view(f, plane.redact_keys) for f in plane.operator.facts(a.agent, a.full_name, 20)]
    view = approval_view(a, now, plane.redact_keys)
    return ok({"approval": view, "recent_traces": traces, "grants": grants, "facts": facts})


def _resolver(body: dict[str, Any], who: Principal) -> str:
    supervisor = text_field(body, "supervisor")
    if supervisor:
        return f"{SUPERVISOR_PREFIX}{supervisor.removeprefix(SUPERVISOR_PREFIX)}"
    return text_field(body, "by") or who.operator


def _reasoning(body: dict[str, Any]) -> str:
    reason = text_field(body, "reason").strip()
    confidence = confidence_field(body)
    if confidence is not None:
        # The same wording the push supervisor uses, so it reads alike in the trace and in memory facts.
        reason = f"{reason} (confidence {confidence:g})".strip()
    return reason


async def approve(request: Request) -> Response:
    plane, who = authed(request)
    body = await json_body(request)
    target = _approval(plane, request.path_params["id"])
    for_seconds = duration_field(body, "for")
    try:
        done, grant = plane.operator.approve(
            target.id, by=_resolver(body, who), reason=_reasoning(body), for_seconds=for_seconds
        )
    except StoreConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    now = plane.now()
    return ok(
        {
            "approval": approval_view(done, now, plane.redact_keys),
            "grant": None if grant is None else grant_view(grant, now),
        }
    )


async def deny(request: Request) -> Response:
    plane, who = authed(request)
    body = await json_body(request)
    target = _approval(plane, request.path_params["id"])
    try:
        done = plane.operator.deny(target.id, by=_resolver(body, who), reason=_reasoning(body))
    except StoreConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return ok({"approval": approval_view(done, plane.now(), plane.redact_keys)})


async def list_grants(request: Request) -> Response:
    plane, _ = authed(request)
    everything = request.query_params.get("all", "").lower() in ("1", "true", "yes")
    now = plane.now()
    return ok({"grants": [grant_view(g, now) for g in plane.operator.grants(include_inactive=everything)]})


async def create_grant(request: Request) -> Response:
    plane, who = authed(request)
    body = await json_body(request)
    seconds = duration_field(body, "for")
    if seconds is None:
        raise bad_request("for is required (a duration such as 30m)")
    when = body.get("when")
    if when is not None and not isinstance(when, dict):
        raise bad_request("when must be an object of conditions on the arguments")
    max_uses = body.get("max_uses")
    if max_uses is not None and (isinstance(max_uses, bool) or not isinstance(max_uses, int)):
        raise bad_request("max_uses must be an integer")
    try:
        grant = plane.operator.add_grant(
            text_field(body, "agent", required=True),
            text_field(body, "tool", required=True),
            seconds,
            by=text_field(body, "by") or who.operator,
            when=when,
            max_uses=max_uses,
            reason=text_field(body, "reason"),
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return ok({"grant": grant_view(grant, plane.now())}, 201)


async def revoke_grant(request: Request) -> Response:
    plane, who = authed(request)
    target = _grant(plane, request.path_params["id"])
    try:
        revoked = plane.operator.revoke_grant(target.id, by=who.operator)
    except StoreConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return ok({"grant": grant_view(revoked, plane.now())})


async def list_facts(request: Request) -> Response:
    plane, _ = authed(request)
    q = request.query_params
    facts = plane.operator.facts(q.get("agent") or None, q.get("tool") or None, limit_param(request))
    return ok({"facts": [fact_view(f, plane.redact_keys) for f in facts]})


async def forget_fact(request: Request) -> Response:
    plane, _ = authed(request)
    try:
        n = plane.operator.forget([request.path_params["id"]])
    except StoreConflict as exc:
        raise bad_request(str(exc)) from None
    if n == 0:
        raise not_found(f"no fact id starts with {request.path_params['id']!r}")
    return ok({"forgotten": n})


async def forget_facts(request: Request) -> Response:
    plane, _ = authed(request)
    body = await json_body(request)
    agent, tool = text_field(body, "agent") or None, text_field(body, "tool") or None
    if agent is None and tool is None:
        raise bad_request("name an agent, a tool or both")
    return ok({"forgotten": plane.operator.forget((), agent, tool)})


routes = [
    Route("/api/approvals", list_approvals, methods=["GET"]),
    Route("/api/approvals/{id}", show_approval, methods=["GET"]),
    Route("/api/approvals/{id}/approve", approve, methods=["POST"]),
    Route("/api/approvals/{id}/deny", deny, methods=["POST"]),
    Route("/api/grants", list_grants, methods=["GET"]),
    Route("/api/grants", create_grant, methods=["POST"]),
    Route("/api/grants/{id}", revoke_grant, methods=["DELETE"]),
    Route("/api/memory", list_facts, methods=["GET"]),
    Route("/api/memory/forget", forget_facts, methods=["POST"]),
    Route("/api/memory/{id}", forget_fact, methods=["DELETE"]),
]
