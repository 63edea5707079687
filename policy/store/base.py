"""The Store port: approvals, grants, decision-memory facts and rate events, as plain records.

Every method is one atomic unit of work, so a SQLite, in-memory or PostgreSQL implementation can keep the
same guarantees (a pending approval resolved once, an approval used once, one shared rate budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from policy.core.errors import StoreUnavailable
from policy.core.pins import Pin, PinSeen
from policy.core.records import (
    ADMITTED,
    MIN_PREFIX,
    WINDOW,
    Admission,
    Approval,
    ApprovalState,
    Fact,
    Grant,
    Limits,
    StoreConflict,
    check_prefix,
    new_id,
    per_minute_refusal,
    window_start,
)


@runtime_checkable
class Store(Protocol):
    """Durable governance state. Every method raises StoreUnavailable when the backend fails."""

    def admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission:
        """Check the limits and, when admitted, count the call. Rate budgets are one atomic step across
        processes; loop detection may see another process's calls a sync interval late (SqliteStore)."""
        ...

    def try_admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission | None:
        """`admit` without waiting: None (nothing counted) while another writer holds the store, so an event
        loop can serve other work and retry instead of blocking."""
        ...

    def peek_admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission:
        """What `admit` would answer now, counting nothing: for Gate.preview, which must never write."""
        ...

    def open_approval(self, approval: Approval) -> Approval:
        """Queue a pending approval, or return the live pending one for the same call hash."""
        ...

    def get_approval(self, approval_id: str) -> Approval | None: ...

    def find_approval(self, prefix: str) -> Approval:
        """The one approval whose id starts with `prefix` (≥ 6 characters). Raises StoreConflict."""
        ...

    def list_approvals(self, state: ApprovalState | None, now: float, limit: int = 100) -> list[Approval]: ...

    def count_pending(self, agent: str, now: float) -> int:
        """How many approvals of this agent are pending (and not past expiry) at `now`."""
        ...

    def resolve_approval(
        self, approval_id: str, approve: bool, by: str, reason: str, now: float, usable_for: float
    ) -> Approval:
        """pending → approved | denied, recording a memory fact; StoreConflict if not pending."""
        ...

    def consume_approval(self, call_hash: str, used_by: str, now: float) -> Approval | None:
        """Use an approved, unused, unexpired approval for this exact call, at most once ever."""
        ...

    def consume_approval_id(self, approval_id: str, used_by: str, now: float) -> Approval | None: ...

    def recent_denial(self, call_hash: str, since: float) -> Approval | None: ...

    def link_grant(self, approval_id: str, grant_id: str) -> None: ...

    def add_grant(self, grant: Grant) -> Grant: ...

    def list_grants(self, now: float, include_inactive: bool = False) -> list[Grant]: ...

    def use_grant(self, grant_id: str, now: float) -> bool:
        """Count one use if the grant is still active; False when it expired, was revoked or used up."""
        ...

    def revoke_grant(self, prefix: str, by: str, now: float) -> Grant: ...

    def add_fact(self, fact: Fact) -> Fact: ...

    def facts_for(self, agent: str, tool: str, memory_key: str, since: float) -> list[Fact]: ...

    def list_facts(self, agent: str | None = None, tool: str | None = None, limit: int = 100) -> list[Fact]: ...

    def forget_facts(self, ids: Sequence[str] = (), agent: str | None = None, tool: str | None = None) -> int:
        """Delete facts by id prefix or by agent/tool; returns how many were deleted."""
        ...

    def get_pin(self, server: str, tool: str) -> Pin | None:
        """The pin of one tool of one server, or None when it was never listed."""
        ...

    def list_pins(self, server: str | None = None) -> list[Pin]: ...

    def observe_pin(self, server: str, tool: str, fingerprint: str, now: float) -> PinSeen:
        """Compare a listed tool with its pin and record what was seen, in one step (policy.core.pins.observed)."""
        ...

    def accept_pin(self, server: str, tool: str, fingerprint: str, now: float) -> Pin:
        """Make `fingerprint` the tool's pin (a `warn` action, a human's approval, an imported pin file)."""
        ...

    def close(self) -> None: ...


__all__ = [
    "ADMITTED",
    "MIN_PREFIX",
    "WINDOW",
    "Admission",
    "Approval",
    "ApprovalState",
    "Fact",
    "Grant",
    "Limits",
    "Store",
    "StoreConflict",
    "StoreUnavailable",
    "check_prefix",
    "new_id",
    "per_minute_refusal",
    "window_start",
]
