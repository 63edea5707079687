"""The Store port: approvals, grants, decision-memory facts and rate events, as plain records.

Every method is one atomic unit of work, so a SQLite, in-memory or PostgreSQL implementation can keep the
same guarantees (a pending approval resolved once, an approval used once, one shared rate budget).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from policy.errors import StoreUnavailable


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


class StoreConflict(ValueError):
    """A request the store's state forbids: resolving twice, an unknown or ambiguous id prefix."""


def new_id() -> str:
    """A random 12-hex-digit id: short enough to type, shown in full, resolvable by a 6+ character prefix."""
    return secrets.token_hex(6)


MIN_PREFIX = 6


def check_prefix(prefix: str) -> str:
    """Validate an id prefix typed by a human. Raises StoreConflict with a precise message."""
    p = prefix.strip().lower()
    if len(p) < MIN_PREFIX:
        raise StoreConflict(f"id prefix {prefix!r} is too short: give at least {MIN_PREFIX} characters")
    if any(c not in "0123456789abcdef" for c in p):
        raise StoreConflict(f"{prefix!r} is not an id (ids are hexadecimal)")
    return p


@dataclass(frozen=True, slots=True)
class Approval:
    """A request for a human (or supervisor) to let one exact call through."""

    id: str
    call_hash: str
    agent: str
    surface: str
    server: str
    tool: str
    arguments: Mapping[str, Any]
    memory_key: str
    rule: str
    reason: str
    created_at: float
    expires_at: float
    state: ApprovalState = ApprovalState.PENDING
    trace_id: str | None = None
    session_id: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    used_at: float | None = None
    used_by: str | None = None
    grant_id: str | None = None
    # For a call that arrived over HTTP: {method, scheme, host, port, path}, what the approver is shown.
    http: Mapping[str, Any] | None = None

    @property
    def full_name(self) -> str:
        return f"{self.server}.{self.tool}" if self.server else self.tool

    @property
    def request_line(self) -> str | None:
        """`POST https://api.example.com:8443/v1/notes` for a call that arrived over HTTP, else None."""
        h = self.http
        if not h:
            return None
        scheme = h.get("scheme") or "http"
        port = h.get("port")
        default = {"http": 80, "https": 443}.get(str(scheme))
        where = f"{h.get('host')}" if port in (None, default) else f"{h.get('host')}:{port}"
        return f"{h.get('method')} {scheme}://{where}{h.get('path')}"

    def effective_state(self, now: float) -> ApprovalState:
        """The state at `now`: a pending approval past its expiry reads as expired."""
        if self.state is ApprovalState.PENDING and self.expires_at <= now:
            return ApprovalState.EXPIRED
        return self.state


@dataclass(frozen=True, slots=True)
class Grant:
    """A temporary permission that lifts `human_approval` (never `deny`) for matching calls."""

    id: str
    agent: str
    tool: str
    created_at: float
    expires_at: float
    created_by: str
    when: Mapping[str, Any] | None = None
    max_uses: int | None = None
    uses: int = 0
    reason: str = ""
    revoked_at: float | None = None
    revoked_by: str | None = None

    def active(self, now: float) -> bool:
        if self.revoked_at is not None or self.expires_at <= now:
            return False
        return self.max_uses is None or self.uses < self.max_uses


@dataclass(frozen=True, slots=True)
class Fact:
    """One human or supervisor decision: the precedent decision memory counts."""

    id: str
    agent: str
    tool: str
    memory_key: str
    decision: str  # "approve" | "deny"
    by: str
    reason: str
    ts: float
    approval_id: str | None = None
    call_hash: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one call is admitted under: a per-minute window, a total budget and loop detection."""

    scope: str
    per_minute: int | None = None
    total: int | None = None
    loop_max: int | None = None
    loop_window: float = 10.0

    @property
    def empty(self) -> bool:
        return self.per_minute is None and self.total is None and self.loop_max is None


@dataclass(frozen=True, slots=True)
class Admission:
    """The store's answer to `admit`: admitted, or refused with the limit hit and when to retry."""

    admitted: bool
    limit: str = ""  # "per_minute" | "total" | "loop"
    count: int = 0
    retry_after: float | None = None


ADMITTED = Admission(True)
WINDOW = 60


def window_start(now: float) -> int:
    """The oldest one-second bucket still inside the per-minute window at `now`."""
    return math.floor(now) - WINDOW + 1


def per_minute_refusal(buckets: Sequence[tuple[int, int]], limit: int, now: float) -> Admission | None:
    """Judge the per-minute window from its (second, count) buckets, oldest first; None when under the limit.

    retry_after is when enough of the oldest buckets leave the window for one more call to fit.
    """
    count = sum(c for _, c in buckets)
    if count < limit:
        return None
    excess, seen = count - limit, 0
    for second, c in buckets:
        seen += c
        if seen > excess:
            return Admission(False, "per_minute", count, max(0.0, second + WINDOW - now))
    raise AssertionError("unreachable: the buckets sum to more than the excess")


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
