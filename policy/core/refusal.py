"""What an agent reads when the mesh refuses or holds its call: the same fields on every surface."""

from __future__ import annotations

import math
from typing import Any

from policy.core.model import Verdict, VerdictKind


def refusal_payload(verdict: Verdict) -> dict[str, Any]:
    """Machine-readable refusal: a stable `code`, the reason, the rule, and what to wait for."""
    code = _STOPPED if _is_stop(verdict) else verdict.code
    out: dict[str, Any] = {
        "status": code,
        "code": code,
        "reason": verdict.reason,
        "rule": verdict.decision.rule,
        "decided_by": verdict.decided_by,
        "trace_id": verdict.trace_id,
    }
    if verdict.approval_id is not None:
        out["approval_id"] = verdict.approval_id
    if verdict.retry_after is not None:
        out["retry_after"] = max(1, math.ceil(verdict.retry_after))
    return out


_STOPPED = "stopped"


def _is_stop(verdict: Verdict) -> bool:
    """A refusal by an emergency stop (policy.gate.stop: rule `stop`, decided by `stop:<who>`)."""
    return verdict.decision.rule == "stop" and verdict.decided_by.startswith("stop:")


def refusal_text(verdict: Verdict) -> str:
    """One paragraph for the agent (and the human reading its transcript): what happened, what to do."""
    kind = verdict.kind
    if kind is VerdictKind.PENDING:
        wait = f" in about {math.ceil(verdict.retry_after)} s" if verdict.retry_after else ""
        return (
            f"agent-mesh: this call is waiting for a human approval (id {verdict.approval_id}). "
            f"Reason: {verdict.reason}. A human can run `agent-mesh approvals approve {verdict.approval_id}`; "
            f"retry the identical call{wait} once it is approved. Do not change the arguments."
        )
    if kind is VerdictKind.RATE_LIMITED:
        return (
            f"agent-mesh: rate limit reached ({verdict.reason}). Retry after {math.ceil(verdict.retry_after or 1)} s."
        )
    if kind is VerdictKind.LOOP_DETECTED:
        return (
            f"agent-mesh: the same call was repeated too often ({verdict.reason}). "
            "Change approach instead of retrying the identical call."
        )
    if _is_stop(verdict):
        return (
            f"agent-mesh refused this call: {verdict.reason} (trace {verdict.trace_id}). "
            "Do not retry it until the operator resumes; tell the user."
        )
    return (
        f"agent-mesh denied this call: {verdict.reason} (rule {verdict.decision.rule}, "
        f"trace {verdict.trace_id}). Do not retry it; choose another action or ask the user."
    )
