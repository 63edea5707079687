"""Calls, verdicts and records for trace tests, with defaults a test only overrides where it matters."""

from __future__ import annotations

from typing import Any

from policy import Action, Decision, HttpInfo, Outcome, ToolCall, Verdict, VerdictKind
from policy.trace import build_record

REDACT = ["authorization", "token", "password", "api_key"]


def call(**over: Any) -> ToolCall:
    fields: dict[str, Any] = {
        "agent": "claude",
        "surface": "mcp_stdio",
        "server": "fs",
        "tool": "write_file",
        "arguments": {"path": "/tmp/a.txt", "content": "hi"},
        "session_id": "s1",
    }
    fields.update(over)
    return ToolCall(**fields)


def verdict(kind: VerdictKind = VerdictKind.ALLOW, action: Action = Action.ALLOW, **over: Any) -> Verdict:
    fields: dict[str, Any] = {
        "kind": kind,
        "decision": Decision(action, "dev/writes", "dev/writes allows fs.write_file", "dev"),
        "decided_by": "policy:dev/writes",
        "reason": "dev/writes allows fs.write_file",
        "trace_id": "t-1",
    }
    fields.update(over)
    return Verdict(**fields)


def record(i: int = 0, **over: Any) -> dict[str, Any]:
    """A realistic record with a unique trace id."""
    rec = build_record(
        call(arguments={"path": f"/tmp/{i}.txt", "content": "x" * 40}),
        verdict(trace_id=f"t-{i:06d}"),
        Outcome(forwarded=True, is_error=False, latency_ms=1.25),
        policy_hash="0123456789abcdef",
        redact_keys=REDACT,
        ts=1_700_000_000.0 + i,
    )
    rec.update(over)
    return rec


__all__ = ["REDACT", "HttpInfo", "call", "record", "verdict"]
