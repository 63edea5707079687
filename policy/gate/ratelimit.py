"""Rate limits and loop detection (ARCHITECTURE §4 step 2): which limits a call is counted under, and the
verdict when the store refuses it. Counting itself is the store's `admit`, so every process shares it."""

from __future__ import annotations

from policy.core.config import LoopDetection
from policy.core.engine import CompiledPolicy
from policy.core.model import Decision, Verdict, VerdictKind
from policy.store.base import Admission, Limits

DEFAULT_LOOP = LoopDetection()
NO_POLICY_SCOPE = "*"


def limits_for(policy: CompiledPolicy | None) -> Limits:
    """The limits of a policy: its rate_limit, and loop detection (on by default: the 4th identical call
    within 10 s is refused). Calls no policy covers are only loop-checked, under the scope `*`."""
    loop = DEFAULT_LOOP if policy is None or policy.loop_detection is None else policy.loop_detection
    rate = None if policy is None else policy.rate_limit
    return Limits(
        scope=NO_POLICY_SCOPE if policy is None else policy.name,
        per_minute=None if rate is None else rate.max_per_minute,
        total=None if rate is None else rate.max_total,
        loop_max=loop.max_repeats if loop.enabled else None,
        loop_window=loop.window,
    )


def refusal(admission: Admission, limits: Limits, agent: str, decision: Decision, trace_id: str) -> Verdict:
    """The rate_limited / loop_detected verdict for a refused admission, with retry_after."""
    if admission.limit == "loop":
        return Verdict(
            VerdictKind.LOOP_DETECTED,
            decision,
            f"loop_detection:{limits.scope}",
            f"the identical call was already made {admission.count} times in the last {limits.loop_window:g} s "
            f"(limit {limits.loop_max} under policy {limits.scope})",
            trace_id,
            retry_after=admission.retry_after,
        )
    if admission.limit == "per_minute":
        reason = (
            f"{agent} made {admission.count} calls in the last minute "
            f"(limit {limits.per_minute} per minute under policy {limits.scope})"
        )
    else:
        reason = f"{agent} has used its total budget of {limits.total} calls under policy {limits.scope}"
    return Verdict(
        VerdictKind.RATE_LIMITED,
        decision,
        f"rate_limit:{limits.scope}",
        reason,
        trace_id,
        retry_after=admission.retry_after,
    )
