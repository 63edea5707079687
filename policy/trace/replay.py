"""Replay: run recorded calls through a candidate policy set and list every call whose decision changes.

The policy CI check: a recorded call judged by a new config shows exactly what the change would do. The judge
is given: `agent-mesh replay` judges with the gate's own preview (policy.gate.dryrun), the state-dir guard
included. Recorded arguments are redacted; a decision that reads a redacted field is flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from policy.core.engine import PolicySet, decide
from policy.core.model import SURFACES, Decision, HttpInfo, Surface, ToolCall, canonical_json
from policy.core.redact import REDACTED
from policy.trace.record import is_call


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded call whose decision would differ under the candidate."""

    record: Mapping[str, Any]
    before: str
    after: Decision
    redacted: bool

    def as_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "trace_id": r.get("trace_id"),
            "ts": r.get("ts"),
            "agent": r.get("agent"),
            "tool": r.get("tool"),
            "args": r.get("args"),
            "before": {"decision": self.before, "rule": r.get("rule")},
            "after": {"decision": self.after.action.value, "rule": self.after.rule, "reason": self.after.reason},
            "redacted_args": self.redacted,
        }


@dataclass(slots=True)
class ReplayResult:
    """How many calls were replayed, how many records could not be, and what changed."""

    replayed: int = 0
    skipped: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def record_to_call(record: Mapping[str, Any]) -> ToolCall:
    """Rebuild the ToolCall a record was made from. Raises ValueError naming what is missing or wrong."""
    agent, server, full = record.get("agent"), record.get("server") or "", record.get("tool")
    surface = record.get("surface")
    if not isinstance(agent, str) or not isinstance(full, str) or not isinstance(server, str):
        raise ValueError("agent, server and tool must be strings")
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}")
    args = record.get("args") or {}
    if not isinstance(args, dict):
        raise ValueError("args is not a JSON object")
    tool = full[len(server) + 1 :] if server and full.startswith(server + ".") else full
    http = record.get("http")
    info = None
    if isinstance(http, dict):
        info = HttpInfo(str(http.get("method", "")), str(http.get("host", "")), str(http.get("path", "")))
    annotations = record.get("annotations")
    return ToolCall(
        agent,
        cast(Surface, surface),
        server,
        tool,
        args,
        session_id=record.get("session_id"),
        http=info,
        annotations=annotations if isinstance(annotations, dict) else {},
    )


# Judges a recorded call at the time it was made.
ReplayJudge = Callable[[ToolCall, float], Decision]


def replay(records: Iterable[Mapping[str, Any]], judge: PolicySet | ReplayJudge) -> ReplayResult:
    """Decide every recorded call again with `judge` (a PolicySet: by its rules alone, without the gate's
    guard); collect the ones whose decision changes."""
    if isinstance(judge, PolicySet):
        policy_set = judge

        def judge(call: ToolCall, ts: float) -> Decision:
            return decide(call, policy_set, ts)

    result = ReplayResult()
    for record in records:
        if not is_call(record):
            continue  # a pin change or a hidden list: nothing was called, nothing to judge again
        before = record.get("decision")
        try:
            if not isinstance(before, str):
                raise ValueError("no recorded decision")
            call = record_to_call(record)
        except ValueError as exc:
            result.skipped.append(f"{record.get('trace_id', '?')}: {exc}")
            continue
        ts = record.get("ts")
        after = judge(call, float(ts) if isinstance(ts, int | float) else 0.0)
        result.replayed += 1
        if after.action.value != before:
            redacted = REDACTED in canonical_json([record.get("args"), record.get("http")])
            result.changes.append(Change(record, before, after, redacted))
    return result
