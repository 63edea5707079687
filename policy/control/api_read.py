"""Control API routes that observe: traces (query and live SSE), sessions, policies, `/decide` (a dry run
of the ladder that changes nothing), `/metrics` and `/health`.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from policy.control.common import authed, json_body, limit_param, ok, plane_of, text_field
from policy.control.metrics import CONTENT_TYPE
from policy.control.plane import ControlPlane
from policy.control.problems import bad_request
from policy.control.views import policies_view
from policy.control.watch import Event
from policy.core.errors import StoreUnavailable
from policy.core.model import SURFACES, HttpInfo, Surface, ToolCall, split_tool
from policy.gate.dryrun import open_dry_run, refresh_stops
from policy.gate.gate import Gate
from policy.trace.feed import TraceFilter, parse_filter

KEEPALIVE_SECONDS = 15.0


def _filter(request: Request) -> TraceFilter:
    try:
        return parse_filter(dict(request.query_params))
    except ValueError as exc:
        raise bad_request(str(exc)) from None


async def query_traces(request: Request) -> Response:
    plane, _ = authed(request)
    return ok({"traces": plane.feed.query(_filter(request), limit_param(request))})


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def _stream(request: Request, flt: TraceFilter | None, kinds: frozenset[str]) -> AsyncIterator[str]:
    plane = plane_of(request)
    async with plane.hub.subscribe() as queue:
        yield sse("ready", {"cursor": plane.watcher.cursor})
        if flt is not None and flt.after_seq is not None:
            for record in plane.feed.after(flt.after_seq):
                if flt.matches(record):
                    yield sse("trace", record)
        while True:
            try:
                event: Event | None = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if event is None:
                return
            if event.kind not in kinds:
                continue
            if event.kind == "trace" and flt is not None and not flt.matches(event.data):
                continue
            yield sse(event.kind, event.data)


def _sse_response(body: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def stream_traces(request: Request) -> Response:
    authed(request)
    return _sse_response(_stream(request, _filter(request), frozenset({"trace"})))


async def stream_events(request: Request) -> Response:
    """Everything live, for the page: `trace` records and `approvals` (the pending set changed)."""
    authed(request)
    return _sse_response(_stream(request, None, frozenset({"trace", "approvals", "grants"})))


async def sessions(request: Request) -> Response:
    plane, _ = authed(request)
    return ok({"sessions": plane.feed.sessions(limit_param(request))})


async def policies(request: Request) -> Response:
    plane, _ = authed(request)
    ps = plane.policy_set
    return ok({"policy_hash": ps.policy_hash, "file": plane.loaded.file, "policies": policies_view(ps)})


def _call_of(body: dict[str, Any]) -> ToolCall:
    tool = text_field(body, "tool", required=True)
    args = body.get("args", body.get("arguments", {}))
    if not isinstance(args, dict):
        raise bad_request("args must be a JSON object")
    surface = text_field(body, "surface", default="mcp_stdio")
    if surface not in SURFACES:
        raise bad_request(f"surface {surface!r} is not one of {', '.join(SURFACES)}")
    http = body.get("http")
    info = None
    if http is not None:
        if not isinstance(http, dict):
            raise bad_request("http must be an object with method, host and path")
        info = HttpInfo(str(http.get("method", "GET")).upper(), str(http.get("host", "")), str(http.get("path", "/")))
    annotations = body.get("annotations", {})
    if not isinstance(annotations, dict):
        raise bad_request("annotations must be an object")
    server, name = split_tool(tool)
    agent = text_field(body, "agent", required=True)
    s: Surface = surface  # type: ignore[assignment]
    return ToolCall(agent, s, server, name, args, http=info, annotations=annotations)


_dry_runs: weakref.WeakKeyDictionary[ControlPlane, Gate] = weakref.WeakKeyDictionary()


def _dry_run_gate(plane: ControlPlane) -> Gate:
    """The plane's dry-run gate on its store (previews never write), rebuilt when the policy changed."""
    gate = _dry_runs.get(plane)
    if gate is None or gate.policy_set.policy_hash != plane.policy_set.policy_hash:
        gate = _dry_runs[plane] = open_dry_run(plane.loaded, store=plane.store, clock=plane.clock, stops=False)
    refresh_stops(gate)
    return gate


async def dry_run(request: Request) -> Response:
    """What the live gate would do with a call now (Gate.preview: the state-dir guard, limits, policy, and the
    approval, grant or memory that would lift a human_approval); no state changes (no rate budget spent, no
    approval queued or used, nothing traced)."""
    plane, _ = authed(request)
    call = _call_of(await json_body(request))
    preview = _dry_run_gate(plane).preview(call, plane.now())
    d = preview.decision
    lift = preview.lifted_by
    out: dict[str, Any] = {
        "call": {"agent": call.agent, "tool": call.full_name, "call_hash": call.call_hash},
        "decision": {
            "action": d.action.value,
            "rule": d.rule,
            "policy": d.policy,
            "reason": d.reason,
            "considered": list(d.considered),
            "errors": list(d.errors),
        },
        "would_be": preview.kind.value,
        "decided_by": preview.decided_by,
        "lifted_by": preview.decided_by if lift is not None and lift.kind in ("approval", "grant", "memory") else None,
        "preview": preview.as_json(),
    }
    return ok(out)


async def metrics(request: Request) -> Response:
    plane, _ = authed(request)
    stats = plane.trace_queue()
    if stats is not None:
        plane.metrics.set_gauges(trace_queue_depth=stats.queued, trace_records_dropped_total=stats.dropped)
    return Response(plane.metrics.render(), media_type=CONTENT_TYPE)


async def health(request: Request) -> Response:
    """Liveness and store readability, without secrets: the one route that needs no token."""
    plane = plane_of(request)
    try:
        plane.feed.last_seq()
        store = "ok"
    except StoreUnavailable:
        store = "unavailable"
    status = 200 if store == "ok" else 503
    return JSONResponse({"status": "ok" if status == 200 else "degraded", "store": store}, status_code=status)


routes = [
    Route("/api/traces", query_traces, methods=["GET"]),
    Route("/api/traces/stream", stream_traces, methods=["GET"]),
    Route("/api/events", stream_events, methods=["GET"]),
    Route("/api/sessions", sessions, methods=["GET"]),
    Route("/api/policies", policies, methods=["GET"]),
    Route("/api/decide", dry_run, methods=["POST"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
]
