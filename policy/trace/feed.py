"""Reads the shared `traces` table of state.db: new rows after a `seq` cursor (for /metrics and the live
view) and filtered queries, so calls recorded by any process on the machine (mcpwrap too) are seen.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy.core.conditions import compile_glob
from policy.core.errors import StoreUnavailable
from policy.store.sqlite import DB_NAME, connect
from policy.store.statedir import make_private_dir
from policy.trace.record import CALL, EVENT, is_call

MAX_ROWS = 1000


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Which trace records to return; every field optional. `tool` is a glob over the full name."""

    agent: str | None = None
    tool: str | None = None
    verdict: str | None = None
    session_id: str | None = None
    decided_by: str | None = None
    since: float | None = None
    until: float | None = None
    after_seq: int | None = None
    kind: str | None = None  # "call" or "event"; None: both (the page shows events as "tool changed" rows)

    def matches(self, record: Mapping[str, Any]) -> bool:
        """The same filter applied to one record in memory (for the live stream)."""
        if self.agent is not None and record.get("agent") != self.agent:
            return False
        if self.tool is not None and not _glob_match(self.tool, record.get("tool")):
            return False
        if self.verdict is not None and record.get("verdict") != self.verdict:
            return False
        if self.session_id is not None and record.get("session_id") != self.session_id:
            return False
        if self.kind is not None and (CALL if is_call(record) else EVENT) != self.kind:
            return False
        if self.decided_by is not None and not str(record.get("decided_by", "")).startswith(self.decided_by):
            return False
        ts = record.get("ts")
        if self.since is not None and (not isinstance(ts, int | float) or ts < self.since):
            return False
        return not (self.until is not None and (not isinstance(ts, int | float) or ts > self.until))


def parse_filter(params: Mapping[str, str]) -> TraceFilter:
    """Query parameters -> TraceFilter. Raises ValueError naming the bad parameter."""
    numbers: dict[str, float] = {}
    for key in ("since", "until", "after_seq"):
        raw = params.get(key)
        if raw:
            try:
                numbers[key] = float(raw)
            except ValueError:
                raise ValueError(f"{key}: {raw!r} is not a number") from None
    tool = params.get("tool") or None
    if tool is not None:
        try:
            compile_glob(tool)
        except ValueError as exc:
            raise ValueError(f"tool: {exc}") from None
    after = numbers.get("after_seq")
    kind = params.get("kind") or None
    if kind not in (None, CALL, EVENT):
        raise ValueError(f"kind: {kind!r} is neither {CALL!r} nor {EVENT!r}")
    return TraceFilter(
        agent=params.get("agent") or None,
        tool=tool,
        verdict=params.get("verdict") or None,
        session_id=params.get("session") or params.get("session_id") or None,
        decided_by=params.get("decided_by") or None,
        since=numbers.get("since"),
        until=numbers.get("until"),
        after_seq=None if after is None else int(after),
        kind=kind,
    )


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return compile_glob(pattern)


def _glob_match(pattern: str, value: str | None) -> bool:
    """The policy language's glob semantics inside SQL, so the query and the live filter agree."""
    return value is not None and _glob(pattern).match(value) is not None


def _record(row: sqlite3.Row) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(row["record"]) if row["record"] else {}
    record["seq"] = row["seq"]
    return record


class TraceFeed:
    """A read connection to `<state_dir>/state.db`, opened lazily; failures raise StoreUnavailable."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _run[T](self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                if self._conn is None:
                    make_private_dir(self.path.parent)
                    self._conn = connect(self.path)
                    self._conn.create_function("mesh_glob", 2, _glob_match, deterministic=True)
                return fn(self._conn)
            except (sqlite3.Error, OSError) as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise StoreUnavailable(f"trace table in {self.path}: {exc}") from exc

    def last_seq(self) -> int:
        return int(self._run(lambda c: c.execute("SELECT COALESCE(MAX(seq), 0) FROM traces").fetchone()[0]))

    def after(self, seq: int, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
        """Records with seq > `seq`, oldest first (each with its `seq`)."""
        sql = "SELECT seq, record FROM traces WHERE seq > ? ORDER BY seq LIMIT ?"
        return [_record(r) for r in self._run(lambda c: c.execute(sql, (seq, limit)).fetchall())]

    def totals(self, upto: int) -> list[tuple[str, str, str, int]]:
        """(agent, tool, verdict, count) over every call with seq <= `upto` (events are no calls): the counters
        at start."""
        sql = (
            "SELECT agent, tool, verdict, COUNT(*) FROM traces WHERE seq <= ? AND kind IS NOT 'event' "
            "GROUP BY agent, tool, verdict"
        )
        found = self._run(lambda c: c.execute(sql, (upto,)).fetchall())
        return [(str(a), str(t), str(v), int(n)) for a, t, v, n in found]

    def query(self, flt: TraceFilter, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` records matching `flt`, newest first."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (("agent", flt.agent), ("verdict", flt.verdict), ("session_id", flt.session_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if flt.tool is not None:
            clauses.append("mesh_glob(?, tool)")
            args.append(flt.tool)
        if flt.kind is not None:
            clauses.append("kind IS 'event'" if flt.kind == EVENT else "kind IS NOT 'event'")
        if flt.decided_by is not None:
            clauses.append("substr(decided_by, 1, ?) = ?")
            args += [len(flt.decided_by), flt.decided_by]
        bounds: tuple[tuple[str, float | None], ...] = (
            ("ts >= ?", flt.since),
            ("ts <= ?", flt.until),
            ("seq > ?", flt.after_seq),
        )
        for clause, bound in bounds:
            if bound is not None:
                clauses.append(clause)
                args.append(bound)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT seq, record FROM traces {where} ORDER BY seq DESC LIMIT ?"
        rows = self._run(lambda c: c.execute(sql, (*args, min(limit, MAX_ROWS))).fetchall())
        return [_record(r) for r in rows]

    def sessions(self, limit: int = 100) -> list[dict[str, Any]]:
        """Sessions seen in the trace, most recent first: agent, calls, first and last activity, verdicts, and
        how many event records (pin changes, hidden tools) it has besides its calls."""
        sql = (
            "SELECT session_id, agent, SUM(kind IS NOT 'event') AS calls, MIN(ts) AS first_ts, MAX(ts) AS last_ts, "
            "SUM(kind IS NOT 'event' AND verdict = 'allow') AS allowed, "
            "SUM(kind IS NOT 'event' AND verdict IS NOT 'allow') AS refused, SUM(kind IS 'event') AS events, "
            "GROUP_CONCAT(DISTINCT surface) AS surfaces "
            "FROM traces WHERE session_id IS NOT NULL GROUP BY session_id, agent ORDER BY last_ts DESC LIMIT ?"
        )
        rows = self._run(lambda c: c.execute(sql, (limit,)).fetchall())
        return [
            {
                "session_id": r["session_id"],
                "agent": r["agent"],
                "calls": r["calls"],
                "allowed": r["allowed"],
                "refused": r["refused"],
                "events": r["events"],
                "surfaces": sorted(str(r["surfaces"] or "").split(",")),
                "first_ts": r["first_ts"],
                "last_ts": r["last_ts"],
            }
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
