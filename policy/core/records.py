"""The records of governance state: approvals, grants, decision-memory facts, rate limits and admissions.

Plain, pure data shared by the store (which keeps them), the gate (which reads them) and the operator
surfaces (which show them). No I/O.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
