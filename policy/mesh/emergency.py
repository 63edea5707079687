"""The operator's emergency stop and resume (CLI and control plane alike): a row on the mesh board, which
every process's watcher (policy.mesh.reload) reads within ~50 ms, and one trace event each.

A stop names one agent or all ("*"); a resume lifts one agent's stop or every stop. A resume of one agent
while a stop of all agents holds leaves that agent stopped: the result says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from policy.gate.gate import new_trace_id
from policy.gate.stop import describe
from policy.store.board import ALL, Board, Stop
from policy.trace.sink import TraceSink
from policy.wire.names import imitated

MAX_REASON = 1000
__all__ = ["Resumed", "check_reason", "describe", "parse_scope", "resume", "stop", "to_json", "unknown_agent_note"]


def unknown_agent_note(scope: str, known: Iterable[str]) -> str | None:
    """A note when a per-agent stop names no agent that is `known` (configured, or on the board): it matches
    exact names only, so `Claude`, `claude\u200b` or a typo stop nothing while the operator reads "stopped".
    Names the known agent it imitates (same letters once case, spaces, invisible and compatibility characters
    are set aside), if any."""
    names = sorted({k for k in known if k})
    if scope == ALL or scope in names:
        return None
    meant = imitated(scope, names)
    if meant is not None:
        return (
            f"note: no agent called {scope!r} is configured or running; {meant!r} is, and a stop matches the exact "
            f"name: agent-mesh stop --agent {meant}"
        )
    listed = ", ".join(names[:10]) or "none"
    return (
        f"note: no agent called {scope!r} is configured or running (known: {listed}): the stop refuses only the "
        "calls of an agent calling itself exactly that"
    )


def parse_scope(agent: str | None, everyone: bool) -> str:
    """`--agent A` or `--all` (exactly one) -> the stop's scope. Raises ValueError."""
    if everyone == (agent is not None):
        raise ValueError("name one agent with --agent, or every agent with --all")
    if agent is not None:
        agent = agent.strip()
        if not agent or agent == ALL:
            raise ValueError("--agent needs an agent's name (use --all for every agent)")
        return agent
    return ALL


def check_reason(reason: str) -> str:
    """A stop says why: a non-empty reason of at most MAX_REASON characters. Raises ValueError."""
    reason = reason.strip()
    if not reason:
        raise ValueError("say why with --reason: agents and operators read it in every refusal")
    if len(reason) > MAX_REASON:
        raise ValueError(f"the reason is {len(reason)} characters long; at most {MAX_REASON}")
    return reason


@dataclass(frozen=True, slots=True)
class Resumed:
    lifted: list[Stop]
    still_stopped: Stop | None  # a stop of all agents that still refuses the resumed agent's calls


def stop(board: Board, sink: TraceSink | None, scope: str, reason: str, by: str, now: float | None = None) -> Stop:
    """Stop calls of `scope` (an agent or "*") in every process on this state dir, and trace it."""
    made = board.add_stop(scope, check_reason(reason), by, time.time() if now is None else now)
    _event(sink, "stop", made, made.at, by)
    return made


def resume(board: Board, sink: TraceSink | None, scope: str | None, by: str, now: float | None = None) -> Resumed:
    """Lift the stop of `scope` (an agent, or "*"), or every stop when None; trace each lifted one."""
    at = time.time() if now is None else now
    lifted = board.lift_stops(scope, by, at)
    for one in lifted:
        _event(sink, "resume", one, at, by)
    remaining = None
    if scope is not None and scope != ALL:
        remaining = next((s for s in board.active_stops() if s.everyone), None)
    return Resumed(lifted, remaining)


def _event(sink: TraceSink | None, event: str, about: Stop, at: float, by: str) -> None:
    """A trace `event` record (not a call), shaped like the pin events: `args` holds the detail."""
    if sink is None:
        return
    verb = "stopped" if event == "stop" else "resumed"
    record = {
        "kind": "event",
        "event": event,
        "ts": at,
        "trace_id": new_trace_id(),
        "agent": None if about.everyone else about.scope,
        "rule": "stop",
        "reason": f"{verb} by {by}: {describe(about)}",
        "args": {"stop_id": about.id, "scope": about.scope, "reason": about.reason, "by": by},
    }
    sink.emit(record)


def to_json(one: Stop) -> dict[str, Any]:
    return {
        "id": one.id,
        "scope": one.scope,
        "agent": None if one.everyone else one.scope,
        "reason": one.reason,
        "by": one.by,
        "at": one.at,
        "lifted_at": one.lifted_at,
        "lifted_by": one.lifted_by,
        "description": describe(one),
    }
