"""Control API routes for the mesh as a whole: the processes on the state dir with the policy each runs
(`GET /api/processes`), and the emergency stop and its lifting (`POST /api/stop`, `POST /api/resume`), the
same operations as `agent-mesh status|stop|resume`. Operator-authenticated like every state change; agents
never reach the control plane (the proxy refuses them)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from policy.control.common import authed, json_body, ok, text_field
from policy.control.plane import ControlPlane
from policy.control.problems import bad_request
from policy.mesh import emergency
from policy.mesh.status import describe_process, disk_hashes
from policy.store.board import ALL, Stop
from policy.trace.writer import TraceWriter


def mesh_view(plane: ControlPlane, *, gone: bool = False) -> dict[str, Any]:
    """Processes (running ones unless `gone`), active stops, and the reload errors worth a banner."""
    processes, stops = plane.board.processes(), plane.board.active_stops()
    now = time.time()
    hashes = disk_hashes(processes)
    rows = [describe_process(p, now, hashes.get(p.config)) for p in processes]
    if not gone:
        rows = [r for r in rows if r["state"] == "running"]
    return {
        "processes": rows,
        "stops": [emergency.to_json(s) for s in stops],
        "policy_hash": plane.policy_set.policy_hash,
        "config": plane.loaded.file,
    }


def _scope(body: dict[str, Any]) -> str:
    everyone = body.get("all", False)
    if not isinstance(everyone, bool):
        raise bad_request("all must be true or false")
    try:
        return emergency.parse_scope(text_field(body, "agent") or None, everyone)
    except ValueError as exc:
        raise bad_request(str(exc).replace("--agent", "agent").replace("--all", "all: true")) from None


async def _with_sink[T](plane: ControlPlane, work: Any) -> T:
    """Run `work(sink)` off the event loop with the trace of the state dir (its event record is durable)."""

    def run() -> T:
        sink = plane.event_sink or TraceWriter(plane.state_dir, plane.config.traces)
        try:
            result: T = work(sink)
            return result
        finally:
            if plane.event_sink is None:
                sink.close()

    return await asyncio.to_thread(run)


async def list_processes(request: Request) -> Response:
    plane, _ = authed(request)
    gone = request.query_params.get("all", "").lower() in ("1", "true", "yes")
    return ok(await asyncio.to_thread(mesh_view, plane, gone=gone))


async def stop(request: Request) -> Response:
    plane, who = authed(request)
    body = await json_body(request)
    scope = _scope(body)
    try:
        reason = emergency.check_reason(text_field(body, "reason"))
    except ValueError as exc:
        raise bad_request(str(exc).replace("with --reason", "in reason")) from None
    by = text_field(body, "by") or who.operator
    made: Stop = await _with_sink(plane, lambda sink: emergency.stop(plane.board, sink, scope, reason, by))
    # A stop matches the exact name: say so when it names no agent that is configured or running.
    running = await asyncio.to_thread(plane.board.processes)
    note = emergency.unknown_agent_note(scope, [*plane.config.agents, *(p.agent for p in running if p.agent)])
    return ok({"stop": emergency.to_json(made), "note": note}, 201)


async def resume(request: Request) -> Response:
    plane, who = authed(request)
    body = await json_body(request)
    scope = _scope(body)
    by = text_field(body, "by") or who.operator
    done: emergency.Resumed = await _with_sink(
        plane, lambda sink: emergency.resume(plane.board, sink, None if scope == ALL else scope, by)
    )
    still = done.still_stopped
    return ok(
        {
            "lifted": [emergency.to_json(s) for s in done.lifted],
            "still_stopped_by": None if still is None else emergency.to_json(still),
        }
    )


routes = [
    Route("/api/processes", list_processes, methods=["GET"]),
    Route("/api/stop", stop, methods=["POST"]),
    Route("/api/resume", resume, methods=["POST"]),
]
