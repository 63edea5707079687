"""SqliteStore: the Store on one `state.db` (WAL) shared by every process of one machine.

Writes run in `BEGIN IMMEDIATE` transactions, so check-then-write steps (resolve once, use once, one rate
budget) hold across processes; any SQLite or OS failure surfaces as StoreUnavailable. Loop detection is
judged from memory and shared through a log synced in the background (loops.py).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from policy.store.db import BUSY_SECONDS, DB_NAME, Busy, Database, connect, tx
from policy.store.loops import LoopLedger

_PRUNE_SECONDS = 10.0
_PRUNED_AGENTS = 4096


class SqliteStore:
    """The Store on `<state_dir>/state.db`. Connects lazily, so a broken file refuses calls instead of
    crashing the adapter at start; a later call reconnects once the file is fixed."""

    def __init__(self, state_dir: str | Path, *, busy_seconds: float = BUSY_SECONDS, read_only: bool = False) -> None:
        """`read_only`: open an existing state.db for reading only (previews, read-only commands): nothing is
        created or migrated, and every write fails as StoreUnavailable."""
        self.path = Path(state_dir) / DB_NAME
        self._db = Database(self.path, busy_seconds, read_only=read_only)
        self._loops = LoopLedger(self.path, busy_seconds, read_only=read_only)
        self._next_prune: dict[tuple[str, str], float] = {}

    # -- rate limits and loop detection ---------------------------------------------------------------

    def admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission:
        return self._admit(agent, call_hash, limits, now, wait=True)

    def try_admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission | None:
        try:
            return self._admit(agent, call_hash, limits, now, wait=False)
        except Busy:
            return None

    def peek_admit(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission:
        """What `admit` would answer now, counting nothing (Gate.preview): plain reads, no transaction."""
        if limits.loop_max is not None:
            refused = self._loops.peek(agent, call_hash, limits, now)
            if refused is not None:
                return refused
        if limits.per_minute is None and limits.total is None:
            return ADMITTED
        return self._db.run(lambda conn: self._rate_refusal(conn, agent, limits, now)) or ADMITTED

    def _admit(self, agent: str, call_hash: str, limits: Limits, now: float, *, wait: bool) -> Admission:
        """Loops are judged from memory (see loops.py); rate budgets in one transaction, exact across
        processes."""
        if limits.per_minute is None and limits.total is None:
            return ADMITTED if limits.loop_max is None else self._loops.admit(agent, call_hash, limits, now)

        def count() -> Admission:
            return self._db.run(lambda conn: self._count(conn, agent, limits, now), wait=wait)

        admission = count() if limits.loop_max is None else self._loops.admit(agent, call_hash, limits, now, count)
        if admission.admitted:
            self._prune(agent, limits, now, wait)
        return admission

    @staticmethod
    def _count(conn: sqlite3.Connection, agent: str, limits: Limits, now: float) -> Admission:
        """Check the per-minute window and the total budget and, when both allow it, count the call."""
        scope = limits.scope
        with tx(conn):
            refused = SqliteStore._rate_refusal(conn, agent, limits, now)
            if refused is not None:
                return refused
            if limits.per_minute is not None:
                conn.execute(
                    "INSERT INTO rate_buckets (scope, agent, second, count) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (scope, agent, second) DO UPDATE SET count = count + 1",
                    (scope, agent, math.floor(now)),
                )
            if limits.total is not None:
                conn.execute(
                    "INSERT INTO rate_totals (scope, agent, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (scope, agent) DO UPDATE SET count = count + 1",
                    (scope, agent),
                )
            return ADMITTED

    @staticmethod
    def _rate_refusal(conn: sqlite3.Connection, agent: str, limits: Limits, now: float) -> Admission | None:
        """The per-minute or total refusal for one more call, else None; reads only."""
        scope = limits.scope
        if limits.per_minute is not None:
            where = "scope = ? AND agent = ? AND second >= ?"
            args = (scope, agent, window_start(now))
            total = conn.execute(f"SELECT COALESCE(SUM(count), 0) FROM rate_buckets WHERE {where}", args).fetchone()
            if total[0] >= limits.per_minute:
                buckets = conn.execute(f"SELECT second, count FROM rate_buckets WHERE {where} ORDER BY second", args)
                refused = per_minute_refusal([(r[0], r[1]) for r in buckets], limits.per_minute, now)
                if refused is not None:
                    return refused
        if limits.total is not None:
            row = conn.execute("SELECT count FROM rate_totals WHERE scope = ? AND agent = ?", (scope, agent)).fetchone()
            if row is not None and row[0] >= limits.total:
                return Admission(False, "total", row[0], None)
        return None

    def _prune(self, agent: str, limits: Limits, now: float, wait: bool) -> None:
        """Drop an agent's per-second buckets that left the window, every _PRUNE_SECONDS."""
        key = (limits.scope, agent)
        if now < self._next_prune.get(key, -math.inf):
            return
        sql = "DELETE FROM rate_buckets WHERE scope = ? AND agent = ? AND second < ?"
        try:
            self._db.run(lambda conn: conn.execute(sql, (limits.scope, agent, window_start(now))), wait=wait)
        except Busy:
            return  # the call is admitted and counted: prune on a later one
        if len(self._next_prune) >= _PRUNED_AGENTS:
            self._next_prune.clear()
        self._next_prune[key] = now + _PRUNE_SECONDS

    # -- approvals -------------------------------------------------------------------------------------

    def open_approval(self, approval: Approval) -> Approval:
        def op(conn: sqlite3.Connection) -> Approval:
            with tx(conn):
                conn.execute(
                    "UPDATE approvals SET state = 'expired' WHERE call_hash = ? AND state = 'pending' "
                    "AND expires_at <= ?",
                    (approval.call_hash, approval.created_at),
                )
                row = conn.execute(
                    "SELECT * FROM approvals WHERE call_hash = ? AND state = 'pending' ORDER BY created_at LIMIT 1",
                    (approval.call_hash,),
                ).fetchone()
                if row is not None:
                    return rows.approval(row)
                conn.execute(rows.INSERT_APPROVAL, rows.approval_params(approval))
                return approval

        return self._db.run(op)

    def get_approval(self, approval_id: str) -> Approval | None:
        def op(conn: sqlite3.Connection) -> Approval | None:
            row = conn.execute("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
            return None if row is None else rows.approval(row)

        return self._db.run(op)

    def find_approval(self, prefix: str) -> Approval:
        p = check_prefix(prefix)
        return rows.approval(self._db.run(lambda conn: _by_prefix(conn, "approvals", "approval", p)))

    def list_approvals(self, state: ApprovalState | None, now: float, limit: int = 100) -> list[Approval]:
        where, args = rows.state_filter(state, now)
        sql = f"SELECT * FROM approvals {where} ORDER BY created_at DESC LIMIT ?"
        found = self._db.run(lambda conn: conn.execute(sql, (*args, limit)).fetchall())
        return [rows.approval(r) for r in found]

    def count_pending(self, agent: str, now: float) -> int:
        sql = "SELECT count(*) FROM approvals WHERE state = 'pending' AND expires_at > ? AND agent = ?"
        return int(self._db.run(lambda conn: conn.execute(sql, (now, agent)).fetchone()[0]))

    def resolve_approval(
        self, approval_id: str, approve: bool, by: str, reason: str, now: float, usable_for: float
    ) -> Approval:
        def op(conn: sqlite3.Connection) -> Approval:
            with tx(conn):
                row = conn.execute("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
                if row is None:
                    raise StoreConflict(f"no approval {approval_id}")
                current = rows.approval(row)
                rows.check_resolvable(current, now)
                resolved = rows.resolved(current, approve, by, reason, now, usable_for)
                conn.execute(
                    "UPDATE approvals SET state = ?, resolved_at = ?, resolved_by = ?, resolution = ?, "
                    "expires_at = ? WHERE id = ? AND state = 'pending'",
                    (resolved.state.value, now, by, reason, resolved.expires_at, approval_id),
                )
                conn.execute(rows.INSERT_FACT, rows.fact_params(rows.fact_of(resolved)))
                return resolved

        return self._db.run(op)

    def consume_approval(self, call_hash: str, used_by: str, now: float) -> Approval | None:
        # A lock-free read first: most calls have no approval waiting, and they must not queue for the lock.
        sql = (
            "SELECT id FROM approvals WHERE call_hash = ? AND state = 'approved' AND used_at IS NULL "
            "AND expires_at > ? ORDER BY resolved_at LIMIT 1"
        )
        row = self._db.run(lambda conn: conn.execute(sql, (call_hash, now)).fetchone())
        if row is None:
            return None
        return self.consume_approval_id(row[0], used_by, now) or self.consume_approval(call_hash, used_by, now)

    def consume_approval_id(self, approval_id: str, used_by: str, now: float) -> Approval | None:
        def op(conn: sqlite3.Connection) -> Approval | None:
            row = conn.execute(
                "UPDATE approvals SET used_at = ?, used_by = ? WHERE id = ? AND state = 'approved' "
                "AND used_at IS NULL AND expires_at > ? RETURNING *",
                (now, used_by, approval_id, now),
            ).fetchone()
            return None if row is None else rows.approval(row)

        return self._db.run(op)

    def recent_denial(self, call_hash: str, since: float) -> Approval | None:
        sql = (
            "SELECT * FROM approvals WHERE call_hash = ? AND state = 'denied' AND resolved_at >= ? "
            "ORDER BY resolved_at DESC LIMIT 1"
        )
        row = self._db.run(lambda conn: conn.execute(sql, (call_hash, since)).fetchone())
        return None if row is None else rows.approval(row)

    def link_grant(self, approval_id: str, grant_id: str) -> None:
        sql = "UPDATE approvals SET grant_id = ? WHERE id = ?"
        self._db.run(lambda conn: conn.execute(sql, (grant_id, approval_id)))

    # -- grants ----------------------------------------------------------------------------------------

    def add_grant(self, grant: Grant) -> Grant:
        self._db.run(lambda conn: conn.execute(rows.INSERT_GRANT, rows.grant_params(grant)))
        return grant

    def list_grants(self, now: float, include_inactive: bool = False) -> list[Grant]:
        sql = "SELECT * FROM grants"
        args: tuple[Any, ...] = ()
        if not include_inactive:
            sql += " WHERE revoked_at IS NULL AND expires_at > ? AND (max_uses IS NULL OR uses < max_uses)"
            args = (now,)
        found = self._db.run(lambda conn: conn.execute(sql + " ORDER BY created_at", args).fetchall())
        return [rows.grant(r) for r in found]

    def use_grant(self, grant_id: str, now: float) -> bool:
        sql = (
            "UPDATE grants SET uses = uses + 1 WHERE id = ? AND revoked_at IS NULL AND expires_at > ? "
            "AND (max_uses IS NULL OR uses < max_uses)"
        )
        return self._db.run(lambda conn: conn.execute(sql, (grant_id, now)).rowcount == 1)

    def revoke_grant(self, prefix: str, by: str, now: float) -> Grant:
        p = check_prefix(prefix)

        def op(conn: sqlite3.Connection) -> Grant:
            with tx(conn):
                current = rows.grant(_by_prefix(conn, "grants", "grant", p))
                if current.revoked_at is not None:
                    raise StoreConflict(f"grant {current.id} is already revoked (by {current.revoked_by})")
                conn.execute("UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ?", (now, by, current.id))
                row = conn.execute("SELECT * FROM grants WHERE id = ?", (current.id,)).fetchone()
                return rows.grant(row)

        return self._db.run(op)

    # -- decision memory -------------------------------------------------------------------------------

    def add_fact(self, fact: Fact) -> Fact:
        self._db.run(lambda conn: conn.execute(rows.INSERT_FACT, rows.fact_params(fact)))
        return fact

    def facts_for(self, agent: str, tool: str, memory_key: str, since: float) -> list[Fact]:
        sql = "SELECT * FROM facts WHERE agent = ? AND tool = ? AND memory_key = ? AND ts >= ? ORDER BY ts"
        found = self._db.run(lambda conn: conn.execute(sql, (agent, tool, memory_key, since)).fetchall())
        return [rows.fact(r) for r in found]

    def list_facts(self, agent: str | None = None, tool: str | None = None, limit: int = 100) -> list[Fact]:
        where, args = rows.fact_filter(agent, tool)
        sql = f"SELECT * FROM facts {where} ORDER BY ts DESC LIMIT ?"
        found = self._db.run(lambda conn: conn.execute(sql, (*args, limit)).fetchall())
        return [rows.fact(r) for r in found]

    def forget_facts(self, ids: Sequence[str] = (), agent: str | None = None, tool: str | None = None) -> int:
        prefixes = [check_prefix(i) for i in ids]
        if not prefixes and agent is None and tool is None:
            raise StoreConflict("name what to forget: fact ids, an agent or a tool")

        def op(conn: sqlite3.Connection) -> int:
            with tx(conn):
                n = 0
                for p in prefixes:
                    n += conn.execute("DELETE FROM facts WHERE substr(id, 1, ?) = ?", (len(p), p)).rowcount
                if agent is not None or tool is not None:
                    where, args = rows.fact_filter(agent, tool)
                    n += conn.execute(f"DELETE FROM facts {where}", args).rowcount
                return n

        return self._db.run(op)

    # -- tool pins -------------------------------------------------------------------------------------

    def get_pin(self, server: str, tool: str) -> Pin | None:
        sql = "SELECT * FROM pins WHERE server = ? AND tool = ?"
        found = self._db.run(lambda conn: conn.execute(sql, (server, tool)).fetchone())
        return None if found is None else rows.pin(found)

    def list_pins(self, server: str | None = None) -> list[Pin]:
        where, args = ("WHERE server = ?", (server,)) if server is not None else ("", ())
        found = self._db.run(lambda conn: conn.execute(f"SELECT * FROM pins {where} ORDER BY server, tool", args))
        return [rows.pin(r) for r in found]

    def observe_pin(self, server: str, tool: str, fingerprint: str, now: float) -> PinSeen:
        def op(conn: sqlite3.Connection) -> PinSeen:
            with tx(conn):
                row = conn.execute("SELECT * FROM pins WHERE server = ? AND tool = ?", (server, tool)).fetchone()
                seen = observed(None if row is None else rows.pin(row), server, tool, fingerprint, now)
                if row is None or seen.fresh or rows.pin(row) != seen.pin:
                    conn.execute(rows.UPSERT_PIN, rows.pin_params(seen.pin))
                return seen

        return self._db.run(op)

    def accept_pin(self, server: str, tool: str, fingerprint: str, now: float) -> Pin:
        def op(conn: sqlite3.Connection) -> Pin:
            with tx(conn):
                row = conn.execute("SELECT * FROM pins WHERE server = ? AND tool = ?", (server, tool)).fetchone()
                pin = accepted(None if row is None else rows.pin(row), server, tool, fingerprint, now)
                conn.execute(rows.UPSERT_PIN, rows.pin_params(pin))
                return pin

        return self._db.run(op)

    def close(self) -> None:
        self._loops.close()
        self._db.close()


def _by_prefix(conn: sqlite3.Connection, table: str, what: str, prefix: str) -> sqlite3.Row:
    found = conn.execute(f"SELECT * FROM {table} WHERE substr(id, 1, ?) = ? LIMIT 2", (len(prefix), prefix)).fetchall()
    if not found:
        raise StoreConflict(f"no {what} id starts with {prefix!r}")
    if len(found) > 1:
        raise StoreConflict(f"{prefix!r} matches several {what}s: give more characters")
    row: sqlite3.Row = found[0]
    return row


__all__ = ["BUSY_SECONDS", "DB_NAME", "SqliteStore", "connect"]
