"""Step 5 of the decision ladder: what may lift a `human_approval`, in order — an approval for this exact
call, a grant, decision memory, the supervisor — and otherwise a pending approval for a human.

Each rung is one method that reads the store (`usable_approval`, `grants_for`, `remembered`, `cooled_down`,
`over_cap`, `pending_for`) plus one function that builds its verdict: `climb` uses them and then spends what it
found (an approval, a grant use); Gate.preview (preview.py) uses the same ones and spends nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from policy.core.config import Config
from policy.core.errors import StoreUnavailable
from policy.core.model import Decision, HttpInfo, ToolCall, Verdict, VerdictKind
from policy.core.redact import redact, redact_text, redaction_keys
from policy.gate.grants import GrantMatcher
from policy.gate.memory import MemoryKey, explain, precedents
from policy.gate.supervisor import Supervisor
from policy.store.base import Approval, ApprovalState, Fact, Grant, Store, StoreConflict, new_id

SUPERVISOR_PREFIX = "supervisor:"


def actor(resolved_by: str) -> str:
    """`decided_by` for a resolution: supervisors record themselves as `supervisor:<name>`, humans by name."""
    return resolved_by if resolved_by.startswith(SUPERVISOR_PREFIX) else f"human:{resolved_by}"


class Ladder:
    """Climbs the rungs above a `human_approval` decision for one call."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], float], supervisor: Supervisor | None) -> None:
        self.config = config
        self.store = store
        self.supervisor = supervisor
        self.memory_key = MemoryKey(config.memory.key)
        self._clock = clock
        self._grants = GrantMatcher()
        self._keys = redaction_keys(config.traces.redact)
        self._usable_for = config.approval.expire_after

    async def climb(self, call: ToolCall, decision: Decision, trace_id: str, now: float) -> Verdict:
        used = self.store.consume_approval(call.call_hash, trace_id, now)
        if used is not None:
            return approved(used, decision, trace_id)
        for grant in self.grants_for(call, now):
            if self.store.use_grant(grant.id, now):
                return granted(grant, decision, trace_id)
        key = self.memory_key(call)
        found = self.remembered(call, key, now)
        if found is not None:
            return remembered(found, decision, trace_id)
        refused = self.cooled_down(call, decision, trace_id, now)
        if refused is not None:
            return refused
        return await self._ask(call, decision, trace_id, key, now)

    # -- the rungs, read only: `climb` spends what they find, Gate.preview only reports it ----------------

    def usable_approval(self, call: ToolCall, now: float) -> Approval | None:
        """The approval `consume_approval` would use for this exact call (approved, unused, unexpired; the
        first resolved), without using it."""
        approved_ = self.store.list_approvals(ApprovalState.APPROVED, now, limit=1_000_000)
        usable = [a for a in approved_ if a.call_hash == call.call_hash and a.used_at is None and a.expires_at > now]
        return min(usable, key=lambda a: a.resolved_at or 0.0, default=None)

    def grants_for(self, call: ToolCall, now: float) -> Iterator[Grant]:
        """The active grants that cover the call, oldest first (the order `climb` tries them in)."""
        return (g for g in self.store.list_grants(now) if self._grants.matches(g, call))

    def remembered(self, call: ToolCall, key: str, now: float) -> tuple[Fact, ...] | None:
        """The precedents that auto-approve the call, or None (memory off, too few, or a rejection)."""
        memory = self.config.memory
        if not memory.enabled or memory.auto_approve_after <= 0:
            return None
        return precedents(self.facts(call, key, now), memory)

    def facts(self, call: ToolCall, key: str, now: float) -> list[Fact]:
        """Decision memory's facts for the call's agent, tool and argument key inside `memory.window`."""
        return self.store.facts_for(call.agent, call.full_name, key, now - self.config.memory.window)

    def cooled_down(self, call: ToolCall, decision: Decision, trace_id: str, now: float) -> Verdict | None:
        """The refusal of an exact call a human denied within `approval.deny_cooldown`, else None."""
        cooldown = self.config.approval.deny_cooldown
        if cooldown <= 0:
            return None
        denial = self.store.recent_denial(call.call_hash, now - cooldown)
        if denial is None:
            return None
        reason = (
            f"{denial.resolved_by} denied this exact call ({denial.resolution or 'no reason given'}); "
            f"it is refused without asking again for {cooldown:g} s after a denial"
        )
        return Verdict(VerdictKind.DENY, decision, actor(denial.resolved_by or ""), reason, trace_id, denial.id)

    def pending_for(self, call: ToolCall, now: float) -> Approval | None:
        """The live pending approval of this exact call, which an identical retry joins."""
        pending = self.store.list_approvals(ApprovalState.PENDING, now, limit=1_000_000)
        mine = [a for a in pending if a.call_hash == call.call_hash]
        return min(mine, key=lambda a: a.created_at, default=None)  # the one `open_approval` returns

    def over_cap(self, call: ToolCall, decision: Decision, trace_id: str, now: float) -> Verdict | None:
        """The refusal of a new approval past `approval.max_pending_per_agent`, else None. An identical retry
        joins its own pending approval: the cap counts new approvals, not retries (read only past the cap, so
        the common path costs nothing)."""
        cap = self.config.approval.max_pending_per_agent
        if self.store.count_pending(call.agent, now) < cap or self.pending_for(call, now) is not None:
            return None
        # An agent that floods the queue cannot bury the approvals humans are looking for (nor hold the
        # proxy's resources): past the cap, a new approval is refused until some are decided or expire.
        reason = f"{call.agent} already has {cap} approvals pending (approval.max_pending_per_agent)"
        hold = self.config.approval.hold_seconds
        return Verdict(VerdictKind.RATE_LIMITED, decision, "limit:max_pending", reason, trace_id, retry_after=hold)

    def pending(self, decision: Decision, trace_id: str, approval_id: str | None) -> Verdict:
        """The verdict of a call that waits for a human on `approval_id`."""
        hold = self.config.approval.hold_seconds
        return Verdict(
            VerdictKind.PENDING, decision, f"policy:{decision.rule}", decision.reason, trace_id, approval_id, hold
        )

    async def _ask(self, call: ToolCall, decision: Decision, trace_id: str, key: str, now: float) -> Verdict:
        """Queue the pending approval; a new one goes to the supervisor first, if there is one."""
        refused = self.over_cap(call, decision, trace_id, now)
        if refused is not None:
            return refused
        wanted = Approval(
            id=new_id(),
            call_hash=call.call_hash,
            agent=call.agent,
            surface=call.surface,
            server=call.server,
            tool=call.tool,
            arguments=redact(call.arguments, self._keys),
            memory_key=key,
            rule=decision.rule,
            reason=decision.reason,
            created_at=now,
            expires_at=now + self.config.approval.expire_after,
            trace_id=trace_id,
            session_id=call.session_id,
            http=_shown(call.http, self._keys),
        )
        approval = self.store.open_approval(wanted)
        pending = self.pending(decision, trace_id, approval.id)
        if self.supervisor is None or approval.id != wanted.id:
            return pending
        reply = await self.supervisor.review(call, decision, trace_id)
        if reply.decision == "escalate":
            return Verdict(
                VerdictKind.PENDING,
                decision,
                pending.decided_by,
                f"{decision.reason}; {reply.reasoning or 'the supervisor escalated to a human'}",
                trace_id,
                approval.id,
                retry_after=pending.retry_after,
            )
        by = f"{SUPERVISOR_PREFIX}{reply.by}"
        reasoning = reply.reasoning or f"{reply.decision} (no reasoning given)"
        if reply.confidence is not None:
            reasoning += f" (confidence {reply.confidence:g})"
        approve = reply.decision == "approve"
        # A human may have decided while the supervisor thought: then their decision stands.
        with contextlib.suppress(StoreConflict):
            self.store.resolve_approval(approval.id, approve, by, reasoning, self._clock(), self._usable_for)
        return self.settle(pending) or pending

    def settle(self, pending: Verdict) -> Verdict | None:
        """The verdict once a pending approval is decided (using an approval up for this call), else None."""
        assert pending.approval_id is not None
        decision, trace_id, approval_id = pending.decision, pending.trace_id, pending.approval_id
        approval = self.store.get_approval(approval_id)
        now = self._clock()
        if approval is None:
            reason = f"fail closed: approval {approval_id} no longer exists"
            return Verdict(VerdictKind.DENY, decision, "error", reason, trace_id, approval_id)
        state = approval.effective_state(now)
        if state is ApprovalState.PENDING:
            return None
        who = actor(approval.resolved_by or "")
        if state is ApprovalState.APPROVED:
            used = self.store.consume_approval_id(approval_id, trace_id, now)
            if used is not None:
                return approved(used, decision, trace_id)
            reason = f"approval {approval_id} was already used by another identical call: retry to ask again"
            return Verdict(VerdictKind.DENY, decision, who, reason, trace_id, approval_id)
        if state is ApprovalState.DENIED:
            reason = f"denied by {approval.resolved_by}: {approval.resolution or 'no reason given'}"
            return Verdict(VerdictKind.DENY, decision, who, reason, trace_id, approval_id)
        reason = f"approval {approval_id} expired before anyone decided"
        return Verdict(VerdictKind.DENY, decision, "timeout", reason, trace_id, approval_id)


def approved(used: Approval, decision: Decision, trace_id: str) -> Verdict:
    """The allow of a call a human (or the supervisor) approved."""
    reason = f"approved by {used.resolved_by}: {used.resolution or 'no reason given'}"
    return Verdict(VerdictKind.ALLOW, decision, actor(used.resolved_by or ""), reason, trace_id, used.id)


def granted(grant: Grant, decision: Decision, trace_id: str) -> Verdict:
    """The allow of a call a grant covers."""
    reason = f"grant {grant.id} by {grant.created_by}" + (f" ({grant.reason})" if grant.reason else "")
    return Verdict(VerdictKind.ALLOW, decision, f"grant:{grant.id}", reason, trace_id)


def remembered(found: Sequence[Fact], decision: Decision, trace_id: str) -> Verdict:
    """The allow of a call decision memory approves."""
    ids = tuple(f.id for f in found)
    return Verdict(VerdictKind.ALLOW, decision, f"memory:{len(found)}", explain(found), trace_id, precedents=ids)


def by_policy(decision: Decision) -> str:
    """`decided_by` of a verdict the policy gave alone."""
    return "default" if decision.rule == "default" else f"policy:{decision.rule}"


def store_failed(decision: Decision, trace_id: str, exc: StoreUnavailable, approval_id: str | None = None) -> Verdict:
    """Fail closed: the refusal of any call while the state store cannot be read or written."""
    reason = f"fail closed: the state store is unavailable, so no call may pass: {exc}"
    return Verdict(VerdictKind.DENY, decision, "error", reason, trace_id, approval_id)


def failed(decision: Decision, trace_id: str, exc: Exception, approval_id: str | None = None) -> Verdict:
    """Fail closed: the refusal of a call the gate failed on (a bug must never become an allow)."""
    reason = f"fail closed: internal error {type(exc).__name__}: {exc}"
    return Verdict(VerdictKind.DENY, decision, "error", reason, trace_id, approval_id)


def _shown(http: HttpInfo | None, keys: frozenset[tuple[str, ...]]) -> dict[str, Any] | None:
    """The request line an approver is shown (the call hash binds it, with the body digest); secrets in the
    path are marked as in traces."""
    if http is None:
        return None
    path = redact_text(http.path, keys)
    return {"method": http.method, "scheme": http.scheme, "host": http.host, "port": http.port, "path": path}
