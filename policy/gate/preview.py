"""Gate.preview: the verdict the live gate would give a call now, on the same state, changing nothing, and the
state behind it (the approval, grant, memory facts or pending approval that decide it, with ids and expiry).

`explain`, `test`, `replay` and the control plane's `/api/decide` answer through it, so a dry run cannot
disagree with the gate: the guard, limits and policy are the gate's own code (Gate.preview calls them), and the
rungs above `human_approval` are the Ladder's read-only methods. Nothing is written: no rate counted, no approval
opened or used, no grant use, no trace; the supervisor is not called (the preview says it would be).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from policy.core.config import McpSettings
from policy.core.errors import StoreUnavailable
from policy.core.guard import GUARD_RULE
from policy.core.model import Action, Decision, ToolCall, Verdict, VerdictKind
from policy.gate.ladder import Ladder, approved, by_policy, failed, granted, remembered, store_failed
from policy.gate.memory import explain
from policy.gate.pins import PinRung, action_for, pin_verdict
from policy.gate.ratelimit import refusal
from policy.gate.stop import stopped_verdict
from policy.store.base import Limits
from policy.store.board import Stop
from policy.store.memory import MemoryStore

log = logging.getLogger("agent_mesh.gate")

PREVIEW_TRACE_ID = "preview"  # no trace id is spent on a preview: nothing is recorded
EMPTY_STATE = "no state yet: previewed with no approvals, grants, decision memory or rate counts"


class EmptyStore(MemoryStore):
    """The state of a mesh that has none yet (no state.db): a preview on it says so."""


@dataclass(frozen=True, slots=True)
class Lift:
    """The state that decides a call where the policy alone would not: what it is, its ids and expiry."""

    kind: str  # "approval" | "grant" | "memory" | "denial" | "pending" | "pin"
    ids: tuple[str, ...]
    expires_at: float | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ids": list(self.ids), "expires_at": self.expires_at, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Preview:
    """The verdict `Gate.check` would give now (its trace id is PREVIEW_TRACE_ID), and why."""

    verdict: Verdict
    lifted_by: Lift | None = None
    asks_supervisor: bool = False  # a new approval would go to the supervisor first, which may decide it
    notes: tuple[str, ...] = ()

    @property
    def kind(self) -> VerdictKind:
        return self.verdict.kind

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    @property
    def decided_by(self) -> str:
        return self.verdict.decided_by

    def as_json(self) -> dict[str, Any]:
        v, d = self.verdict, self.verdict.decision
        return {
            "verdict": v.kind.value,
            "decided_by": v.decided_by,
            "reason": v.reason,
            "approval_id": v.approval_id,
            "retry_after": v.retry_after,
            "decision": {"action": d.action.value, "rule": d.rule, "policy": d.policy, "reason": d.reason},
            "lifted_by": None if self.lifted_by is None else self.lifted_by.as_json(),
            "asks_supervisor": self.asks_supervisor,
            "notes": list(self.notes),
        }


def preview_ladder(
    call: ToolCall,
    decision: Decision,
    limits: Limits,
    ladder: Ladder,
    now: float,
    *,
    pins: PinRung,
    mcp: McpSettings,
    empty_state: bool,
) -> Preview:
    """The rest of Gate.check after the guard and policy decided `decision`, read only. Errors fail closed as
    they do live: a store that cannot be read gives the gate's refusal."""
    notes = [EMPTY_STATE] if empty_state else []
    try:
        admission = ladder.store.peek_admit(call.agent, call.call_hash, limits, now)
        if not admission.admitted:
            verdict = refusal(admission, limits, call.agent, decision, PREVIEW_TRACE_ID)
            notes.append(f"refused before anything else is asked: {verdict.reason}")
            return Preview(verdict, notes=tuple(notes))
        pinned = _pin_rung(call, decision, pins, mcp, ladder, now, notes)
        if pinned is not None:
            return pinned
        if decision.action is Action.HUMAN_APPROVAL:
            return _climb(call, decision, ladder, now, notes)
        kind = VerdictKind.ALLOW if decision.action is Action.ALLOW else VerdictKind.DENY
        if decision.rule == GUARD_RULE:
            notes.append("the built-in state-dir guard refuses it whatever the policy says")
        elif kind is VerdictKind.DENY:
            notes.append("deny is final: no approval, grant, decision memory or supervisor can lift it")
        verdict = Verdict(kind, decision, by_policy(decision), decision.reason, PREVIEW_TRACE_ID)
        return Preview(verdict, notes=tuple(notes))
    except StoreUnavailable as exc:
        notes.append("the state store could not be read: the live gate refuses every call meanwhile")
        return Preview(store_failed(decision, PREVIEW_TRACE_ID, exc), notes=tuple(notes))
    except Exception as exc:
        log.exception("agent-mesh: the preview failed on %s", call.full_name)
        return Preview(failed(decision, PREVIEW_TRACE_ID, exc), notes=tuple(notes))


def stopped_preview(stop: Stop) -> Preview:
    """The preview of a call an emergency stop refuses (first on the ladder, before the guard)."""
    note = "an emergency stop refuses this agent's calls, held ones too, until an operator runs agent-mesh resume"
    return Preview(stopped_verdict(stop, PREVIEW_TRACE_ID), notes=(note,))


def _pin_rung(
    call: ToolCall, decision: Decision, pins: PinRung, mcp: McpSettings, ladder: Ladder, now: float, notes: list[str]
) -> Preview | None:
    """The pin rung (Gate._pinned, PinRung.judge) read only: a call to a tool whose listed form is not its pin.
    Only an approval of this exact call lifts it: no grant, memory or supervisor."""
    pin = pins.open_pin(call)
    if pin is None or decision.action is Action.DENY:
        return None
    action = action_for(mcp, pin.state)
    if action == "warn":
        return None
    tid = PREVIEW_TRACE_ID
    name = f"{pin.server}.{pin.tool}"
    detail = f"tool {name} is {pin.state.value} since its pin: mcp.pin_{pin.state.value} is {action}"
    if action == "deny":
        verdict = pin_verdict(action, call, decision, pin, tid)
        return Preview(verdict, Lift("pin", (name,), None, detail), notes=tuple(notes))
    used = ladder.usable_approval(call, now)
    if used is not None:
        why = f"approved by {used.resolved_by}; the tool's form becomes its pin"
        lift = Lift("approval", (used.id,), used.expires_at, why)
        return Preview(pin_verdict(action, call, decision, pin, tid, used=used), lift, notes=tuple(notes))
    waiting = ladder.pending_for(call, now)
    verdict = pin_verdict(action, call, decision, pin, tid, approval_id=None if waiting is None else waiting.id)
    notes.append("only an approval of this exact call lets it through: grants and decision memory do not")
    return Preview(verdict, Lift("pin", (name,), None, detail), notes=tuple(notes))


def _climb(call: ToolCall, decision: Decision, ladder: Ladder, now: float, notes: list[str]) -> Preview:
    """Ladder.climb's rungs in its order, finding what it would spend and spending nothing."""
    tid = PREVIEW_TRACE_ID
    used = ladder.usable_approval(call, now)
    if used is not None:
        lift = Lift("approval", (used.id,), used.expires_at, f"approved by {used.resolved_by}; used once, then gone")
        return Preview(approved(used, decision, tid), lift, notes=tuple(notes))
    grant = next(ladder.grants_for(call, now), None)
    if grant is not None:
        left = "" if grant.max_uses is None else f", {grant.max_uses - grant.uses} use(s) left"
        lift = Lift("grant", (grant.id,), grant.expires_at, f"grant by {grant.created_by}{left}")
        return Preview(granted(grant, decision, tid), lift, notes=tuple(notes))
    key = ladder.memory_key(call)
    found = ladder.remembered(call, key, now)
    if found is not None:
        lift = Lift("memory", tuple(f.id for f in found), None, explain(found))
        return Preview(remembered(found, decision, tid), lift, notes=tuple(notes))
    notes.extend(_memory_progress(call, key, ladder, now))
    cooled = ladder.cooled_down(call, decision, tid, now)
    if cooled is not None:
        ids = () if cooled.approval_id is None else (cooled.approval_id,)
        return Preview(cooled, Lift("denial", ids, None, cooled.reason), notes=tuple(notes))
    capped = ladder.over_cap(call, decision, tid, now)
    if capped is not None:
        return Preview(capped, notes=tuple(notes))
    waiting = ladder.pending_for(call, now)
    verdict = ladder.pending(decision, tid, None if waiting is None else waiting.id)
    if waiting is not None:
        detail = f"an identical call already waits for a human on approval {waiting.id}"
        return Preview(verdict, Lift("pending", (waiting.id,), waiting.expires_at, detail), notes=tuple(notes))
    supervisor = _supervisor(ladder)
    if supervisor is not None:
        notes.append(f"would ask the supervisor ({supervisor}) first: it may approve, deny or escalate")
        return Preview(verdict, asks_supervisor=True, notes=tuple(notes))
    notes.append("would queue a new approval for a human (agent-mesh approvals approve ID, or a grant lifts it)")
    return Preview(verdict, notes=tuple(notes))


def _supervisor(ladder: Ladder) -> str | None:
    """The supervisor a new approval goes to, by name: the gate's, or the config's when a dry-run gate has none
    (its URL may be a secret that only the deciding process reads)."""
    if ladder.supervisor is not None:
        return ladder.supervisor.name
    url = ladder.config.supervisor.url
    if not url:
        return None
    return (urlsplit(url).netloc or url) if isinstance(url, str) else "configured in supervisor.url"


def _memory_progress(call: ToolCall, key: str, ladder: Ladder, now: float) -> list[str]:
    """How far decision memory is from approving this call on its own."""
    memory = ladder.config.memory
    if not memory.enabled or memory.auto_approve_after <= 0:
        return []
    facts = ladder.facts(call, key, now)
    rejected = [f for f in facts if f.decision != "approve"]
    if rejected:
        return [f"decision memory: rejected by {rejected[-1].by} (fact {rejected[-1].id}): never auto-approved"]
    need = memory.auto_approve_after
    return [f"decision memory: {len(facts)} of {need} approvals of this call so far (auto-approved at {need})"]
