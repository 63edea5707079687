"""MemoryStore: the Store in one process's memory, with the same rules as SqliteStore (tests, recipes)."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence

from policy.core.pins import Pin, PinSeen, accepted, observed
from policy.store import rows
from policy.store.base import (
    ADMITTED,
    Admission,
    Approval,
    ApprovalState,
    Fact,
    Grant,
    Limits,
    StoreConflict,
    check_prefix,
    per_minute_refusal,
    window_start,
)

_SWEEP_EVERY = 1024


class MemoryStore:
    """An in-process Store; thread-safe, forgets everything when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._approvals: dict[str, Approval] = {}
        self._grants: dict[str, Grant] = {}
        self._facts: dict[str, Fact] = {}
        self._pins: dict[tuple[str, str], Pin] = {}
        self._loops: dict[tuple[str, str, str], deque[float]] = {}
        self._buckets: dict[tuple[str, str], dict[int, int]] = {}
        self._totals: dict[tuple[str, str], int] = {}
        self._admits = 0
        self._horizon = 0.0  # the longest loop window seen: older histories can go

    def admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission:
        if limits.empty:
            return ADMITTED
        key = (limits.scope, agent)
        with self._lock:
            self._admits += 1
            if self._admits % _SWEEP_EVERY == 0:
                self._sweep(now)
            loop: deque[float] = deque()
            if limits.loop_max is not None:
                self._horizon = max(self._horizon, limits.loop_window)
                loop = self._loops.setdefault((*key, call_hash), loop)
                while loop and loop[0] <= now - limits.loop_window:
                    loop.popleft()
                if len(loop) >= limits.loop_max:
                    edge = loop[-limits.loop_max]
                    return Admission(False, "loop", len(loop), max(0.0, edge + limits.loop_window - now))
            buckets = self._buckets.setdefault(key, {})
            start = window_start(now)
            for second in [s for s in buckets if s < start]:
                del buckets[second]
            if limits.per_minute is not None:
                refused = per_minute_refusal(sorted(buckets.items()), limits.per_minute, now)
                if refused is not None:
                    return refused
            if limits.total is not None and self._totals.get(key, 0) >= limits.total:
                return Admission(False, "total", self._totals[key], None)
            if limits.loop_max is not None:
                loop.append(now)
            if limits.per_minute is not None:
                buckets[math.floor(now)] = buckets.get(math.floor(now), 0) + 1
            if limits.total is not None:
                self._totals[key] = self._totals.get(key, 0) + 1
            return ADMITTED

    def try_admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission | None:
        return self.admit(agent, call_hash, limits, now)

    def peek_admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission:
        """What `admit` would answer now, counting and pruning nothing (Gate.preview)."""
        if limits.empty:
            return ADMITTED
        key = (limits.scope, agent)
        with self._lock:
            if limits.loop_max is not None:
                loop = [t for t in self._loops.get((*key, call_hash), ()) if t > now - limits.loop_window]
                if len(loop) >= limits.loop_max:
                    edge = loop[-limits.loop_max]
                    return Admission(False, "loop", len(loop), max(0.0, edge + limits.loop_window - now))
            start = window_start(now)
            buckets = sorted((s, n) for s, n in self._buckets.get(key, {}).items() if s >= start)
            if limits.per_minute is not None:
                refused = per_minute_refusal(buckets, limits.per_minute, now)
                if refused is not None:
                    return refused
            if limits.total is not None and self._totals.get(key, 0) >= limits.total:
                return Admission(False, "total", self._totals[key], None)
            return ADMITTED

    def _sweep(self, now: float) -> None:
        """Drop loop histories that only hold old calls, so memory follows the live calls, not all calls."""
        horizon = now - self._horizon
        for k in [k for k, q in self._loops.items() if not q or q[-1] < horizon]:
            del self._loops[k]

    def open_approval(self, approval: Approval) -> Approval:
        with self._lock:
            for a in sorted(self._approvals.values(), key=lambda a: a.created_at):
                live = a.effective_state(approval.created_at) is ApprovalState.PENDING
                if live and a.call_hash == approval.call_hash:
                    return a
            self._approvals[approval.id] = approval
            return approval

    def get_approval(self, approval_id: str) -> Approval | None:
        with self._lock:
            return self._approvals.get(approval_id)

    def find_approval(self, prefix: str) -> Approval:
        p = check_prefix(prefix)
        with self._lock:
            return self._approvals[_one(self._approvals, p, "approval")]

    def list_approvals(self, state: ApprovalState | None, now: float, limit: int = 100) -> list[Approval]:
        with self._lock:
            found = [a for a in self._approvals.values() if state is None or a.effective_state(now) is state]
        return sorted(found, key=lambda a: a.created_at, reverse=True)[:limit]

    def count_pending(self, agent: str, now: float) -> int:
        with self._lock:
            mine = [a for a in self._approvals.values() if a.agent == agent]
        return sum(1 for a in mine if a.effective_state(now) is ApprovalState.PENDING)

    def resolve_approval(
        self, approval_id: str, approve: bool, by: str, reason: str, now: float, usable_for: float
    ) -> Approval:
        with self._lock:
            current = self._approvals.get(approval_id)
            if current is None:
                raise StoreConflict(f"no approval {approval_id}")
            rows.check_resolvable(current, now)
            done = rows.resolved(current, approve, by, reason, now, usable_for)
            self._approvals[approval_id] = done
            fact = rows.fact_of(done)
            self._facts[fact.id] = fact
            return done

    def consume_approval(self, call_hash: str, used_by: str, now: float) -> Approval | None:
        with self._lock:
            usable = [a for a in self._approvals.values() if a.call_hash == call_hash and _usable(a, now)]
            if not usable:
                return None
            first = min(usable, key=lambda a: a.resolved_at or 0.0)
            return self._use(first, used_by, now)

    def consume_approval_id(self, approval_id: str, used_by: str, now: float) -> Approval | None:
        with self._lock:
            a = self._approvals.get(approval_id)
            return self._use(a, used_by, now) if a is not None and _usable(a, now) else None

    def _use(self, a: Approval, used_by: str, now: float) -> Approval:
        used = dataclasses.replace(a, used_at=now, used_by=used_by)
        self._approvals[a.id] = used
        return used

    def recent_denial(self, call_hash: str, since: float) -> Approval | None:
        with self._lock:
            denied = [
                a
                for a in self._approvals.values()
                if a.call_hash == call_hash and a.state is ApprovalState.DENIED and (a.resolved_at or 0) >= since
            ]
        return max(denied, key=lambda a: a.resolved_at or 0.0, default=None)

    def link_grant(self, approval_id: str, grant_id: str) -> None:
        with self._lock:
            if approval_id in self._approvals:
                self._approvals[approval_id] = dataclasses.replace(self._approvals[approval_id], grant_id=grant_id)

    def add_grant(self, grant: Grant) -> Grant:
        with self._lock:
            self._grants[grant.id] = grant
        return grant

    def list_grants(self, now: float, include_inactive: bool = False) -> list[Grant]:
        with self._lock:
            found = [g for g in self._grants.values() if include_inactive or g.active(now)]
        return sorted(found, key=lambda g: g.created_at)

    def use_grant(self, grant_id: str, now: float) -> bool:
        with self._lock:
            g = self._grants.get(grant_id)
            if g is None or not g.active(now):
                return False
            self._grants[grant_id] = dataclasses.replace(g, uses=g.uses + 1)
            return True

    def revoke_grant(self, prefix: str, by: str, now: float) -> Grant:
        p = check_prefix(prefix)
        with self._lock:
            g = self._grants[_one(self._grants, p, "grant")]
            if g.revoked_at is not None:
                raise StoreConflict(f"grant {g.id} is already revoked (by {g.revoked_by})")
            done = dataclasses.replace(g, revoked_at=now, revoked_by=by)
            self._grants[g.id] = done
            return done

    def add_fact(self, fact: Fact) -> Fact:
        with self._lock:
            self._facts[fact.id] = fact
        return fact

    def facts_for(self, agent: str, tool: str, memory_key: str, since: float) -> list[Fact]:
        with self._lock:
            found = [
                f
                for f in self._facts.values()
                if f.agent == agent and f.tool == tool and f.memory_key == memory_key and f.ts >= since
            ]
        return sorted(found, key=lambda f: f.ts)

    def list_facts(self, agent: str | None = None, tool: str | None = None, limit: int = 100) -> list[Fact]:
        with self._lock:
            found = [f for f in self._facts.values() if _fact_matches(f, agent, tool)]
        return sorted(found, key=lambda f: f.ts, reverse=True)[:limit]

    def forget_facts(self, ids: Sequence[str] = (), agent: str | None = None, tool: str | None = None) -> int:
        prefixes = [check_prefix(i) for i in ids]
        if not prefixes and agent is None and tool is None:
            raise StoreConflict("name what to forget: fact ids, an agent or a tool")
        with self._lock:
            doomed = [
                f.id
                for f in self._facts.values()
                if any(f.id.startswith(p) for p in prefixes)
                or ((agent is not None or tool is not None) and _fact_matches(f, agent, tool))
            ]
            for i in doomed:
                del self._facts[i]
        return len(doomed)

    def get_pin(self, server: str, tool: str) -> Pin | None:
        with self._lock:
            return self._pins.get((server, tool))

    def list_pins(self, server: str | None = None) -> list[Pin]:
        with self._lock:
            return [p for _, p in sorted(self._pins.items()) if server is None or p.server == server]

    def observe_pin(self, server: str, tool: str, fingerprint: str, now: float) -> PinSeen:
        with self._lock:
            seen = observed(self._pins.get((server, tool)), server, tool, fingerprint, now)
            self._pins[(server, tool)] = seen.pin
            return seen

    def accept_pin(self, server: str, tool: str, fingerprint: str, now: float) -> Pin:
        with self._lock:
            pin = self._pins[(server, tool)] = accepted(self._pins.get((server, tool)), server, tool, fingerprint, now)
            return pin

    def close(self) -> None:
        """Nothing to release: the state lives as long as the object."""


def _usable(a: Approval, now: float) -> bool:
    return a.state is ApprovalState.APPROVED and a.used_at is None and a.expires_at > now


def _fact_matches(f: Fact, agent: str | None, tool: str | None) -> bool:
    return (agent is None or f.agent == agent) and (tool is None or f.tool == tool)


def _one(table: Mapping[str, object], prefix: str, what: str) -> str:
    found = [i for i in table if i.startswith(prefix)][:2]
    if not found:
        raise StoreConflict(f"no {what} id starts with {prefix!r}")
    if len(found) > 1:
        raise StoreConflict(f"{prefix!r} matches several {what}s: give more characters")
    return found[0]
