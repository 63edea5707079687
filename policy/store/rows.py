"""Records ↔ SQL rows for the SQL stores, and the state rules both store twins share."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol

from policy.core.model import canonical_json
from policy.core.pins import Pin, PinState
from policy.store.base import Approval, ApprovalState, Fact, Grant, StoreConflict, new_id


class RowLike(Protocol):
    """A result row addressable by column name (sqlite3.Row, a psycopg dict row)."""

    def __getitem__(self, key: str) -> Any: ...


INSERT_APPROVAL = (
    "INSERT INTO approvals (id, state, call_hash, agent, surface, server, tool, arguments, memory_key, rule, "
    "reason, trace_id, session_id, created_at, expires_at, resolved_at, resolved_by, resolution, used_at, "
    "used_by, grant_id, http) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_GRANT = (
    "INSERT INTO grants (id, agent, tool, conditions, created_at, expires_at, created_by, max_uses, uses, "
    "reason, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_FACT = (
    "INSERT INTO facts (id, agent, tool, memory_key, decision, decided_by, reason, ts, approval_id, call_hash, "
    "arguments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def approval_params(a: Approval) -> tuple[Any, ...]:
    return (
        a.id, a.state.value, a.call_hash, a.agent, a.surface, a.server, a.tool, canonical_json(a.arguments),
        a.memory_key, a.rule, a.reason, a.trace_id, a.session_id, a.created_at, a.expires_at, a.resolved_at,
        a.resolved_by, a.resolution, a.used_at, a.used_by, a.grant_id,
        None if a.http is None else canonical_json(a.http),
    )  # fmt: skip


def approval(row: RowLike) -> Approval:
    return Approval(
        id=row["id"],
        state=ApprovalState(row["state"]),
        call_hash=row["call_hash"],
        agent=row["agent"],
        surface=row["surface"],
        server=row["server"],
        tool=row["tool"],
        arguments=json.loads(row["arguments"]),
        memory_key=row["memory_key"],
        rule=row["rule"],
        reason=row["reason"],
        trace_id=row["trace_id"],
        session_id=row["session_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        resolution=row["resolution"],
        used_at=row["used_at"],
        used_by=row["used_by"],
        grant_id=row["grant_id"],
        http=json.loads(row["http"]) if row["http"] else None,
    )


def grant_params(g: Grant) -> tuple[Any, ...]:
    conditions = None if g.when is None else canonical_json(g.when)
    return (
        g.id, g.agent, g.tool, conditions, g.created_at, g.expires_at, g.created_by, g.max_uses, g.uses,
        g.reason, g.revoked_at, g.revoked_by,
    )  # fmt: skip


def grant(row: RowLike) -> Grant:
    return Grant(
        id=row["id"],
        agent=row["agent"],
        tool=row["tool"],
        when=None if row["conditions"] is None else json.loads(row["conditions"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        created_by=row["created_by"],
        max_uses=row["max_uses"],
        uses=row["uses"],
        reason=row["reason"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
    )


def fact_params(f: Fact) -> tuple[Any, ...]:
    return (
        f.id, f.agent, f.tool, f.memory_key, f.decision, f.by, f.reason, f.ts, f.approval_id, f.call_hash,
        canonical_json(f.arguments),
    )  # fmt: skip


def fact(row: RowLike) -> Fact:
    return Fact(
        id=row["id"],
        agent=row["agent"],
        tool=row["tool"],
        memory_key=row["memory_key"],
        decision=row["decision"],
        by=row["decided_by"],
        reason=row["reason"],
        ts=row["ts"],
        approval_id=row["approval_id"],
        call_hash=row["call_hash"],
        arguments=json.loads(row["arguments"]),
    )


def state_filter(state: ApprovalState | None, now: float) -> tuple[str, tuple[Any, ...]]:
    """WHERE clause selecting approvals by their effective state at `now` (pending past expiry = expired)."""
    if state is None:
        return "", ()
    if state is ApprovalState.PENDING:
        return "WHERE state = 'pending' AND expires_at > ?", (now,)
    if state is ApprovalState.EXPIRED:
        return "WHERE state = 'expired' OR (state = 'pending' AND expires_at <= ?)", (now,)
    return "WHERE state = ?", (state.value,)


def fact_filter(agent: str | None, tool: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses, args = [], []
    if agent is not None:
        clauses.append("agent = ?")
        args.append(agent)
    if tool is not None:
        clauses.append("tool = ?")
        args.append(tool)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def check_resolvable(current: Approval, now: float) -> None:
    """Raise StoreConflict unless the approval is still pending at `now`: resolving twice is an error."""
    state = current.effective_state(now)
    if state is ApprovalState.PENDING:
        return
    if state is ApprovalState.EXPIRED:
        raise StoreConflict(f"approval {current.id} has expired: the agent must retry the call to ask again")
    raise StoreConflict(f"approval {current.id} is already {state.value} by {current.resolved_by}")


def resolved(current: Approval, approve: bool, by: str, reason: str, now: float, usable_for: float) -> Approval:
    """The approval after a decision: approved ones stay usable for `usable_for` seconds from now."""
    return dataclasses.replace(
        current,
        state=ApprovalState.APPROVED if approve else ApprovalState.DENIED,
        resolved_at=now,
        resolved_by=by,
        resolution=reason,
        expires_at=now + usable_for if approve else current.expires_at,
    )


def fact_of(a: Approval) -> Fact:
    """The decision-memory fact a resolution records."""
    assert a.resolved_at is not None
    assert a.resolved_by is not None
    return Fact(
        id=new_id(),
        agent=a.agent,
        tool=a.full_name,
        memory_key=a.memory_key,
        decision="approve" if a.state is ApprovalState.APPROVED else "deny",
        by=a.resolved_by,
        reason=a.resolution or "",
        ts=a.resolved_at,
        approval_id=a.id,
        call_hash=a.call_hash,
        arguments=a.arguments,
    )


UPSERT_PIN = (
    "INSERT INTO pins (server, tool, pinned, seen, state, first_seen, changed_at, accepted_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (server, tool) DO UPDATE SET pinned = excluded.pinned, "
    "seen = excluded.seen, state = excluded.state, first_seen = excluded.first_seen, "
    "changed_at = excluded.changed_at, accepted_at = excluded.accepted_at"
)


def pin_params(p: Pin) -> tuple[Any, ...]:
    return (p.server, p.tool, p.pinned, p.seen, p.state.value, p.first_seen, p.changed_at, p.accepted_at)


def pin(row: RowLike) -> Pin:
    return Pin(
        server=row["server"],
        tool=row["tool"],
        pinned=row["pinned"],
        seen=row["seen"],
        state=PinState(row["state"]),
        first_seen=row["first_seen"],
        changed_at=row["changed_at"],
        accepted_at=row["accepted_at"],
    )
