"""Reading traces back: filters, time expressions, and the two sources (the `traces` table, JSONL files).

Used by `agent-mesh traces` and `agent-mesh replay`; readers never take the writers' lock.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from policy.core.conditions import compile_glob, is_glob
from policy.core.config import parse_duration
from policy.store.db import DB_NAME
from policy.trace.append import trace_files
from policy.trace.record import is_call

VERDICTS = ("allow", "deny", "pending", "rate_limited", "loop_detected")


def parse_when(text: str, now: float) -> float:
    """`10m` / `2h` / `7d` (that long ago) or an ISO time (`2026-05-01T12:00`, local unless it has a zone)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (10m, 2h, 7d) nor an ISO time (2026-05-01T12:00)") from None


@dataclass(frozen=True, slots=True)
class Filters:
    """Which records to show: globs on agent and tool, verdicts, a time range, one session; calls only, unless
    `events` (then event records too: pin changes, hidden tools; see policy.trace.record)."""

    agent: str | None = None
    tool: str | None = None
    verdicts: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    session: str | None = None
    events: bool = False

    _agent_rx: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _tool_rx: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once; a bad glob is a ValueError here rather than a silent no-match later.
        if self.agent is not None:
            object.__setattr__(self, "_agent_rx", compile_glob(self.agent))
        if self.tool is not None:
            object.__setattr__(self, "_tool_rx", compile_glob(self.tool))
        unknown = set(self.verdicts) - set(VERDICTS)
        if unknown:
            raise ValueError(f"unknown verdict {sorted(unknown)[0]!r} (one of {', '.join(VERDICTS)})")

    def matches(self, record: dict[str, Any]) -> bool:
        ts = record.get("ts")
        return (
            (self.events or is_call(record))
            and _glob_match(self._agent_rx, record.get("agent"))
            and _glob_match(self._tool_rx, record.get("tool"))
            and (not self.verdicts or record.get("verdict") in self.verdicts)
            and (self.since is None or (isinstance(ts, int | float) and ts >= self.since))
            and (self.until is None or (isinstance(ts, int | float) and ts <= self.until))
            and (self.session is None or record.get("session_id") == self.session)
        )

    def where(self) -> tuple[str, list[Any]]:
        """The exact parts as SQL, so the table's indexes narrow the scan; `matches` still checks all."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("agent", self.agent), ("tool", self.tool)):
            if value is not None and not is_glob(value):
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.verdicts:
            clauses.append(f"verdict IN ({', '.join('?' * len(self.verdicts))})")
            params += self.verdicts
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("ts <= ?")
            params.append(self.until)
        if self.session is not None:
            clauses.append("session_id = ?")
            params.append(self.session)
        return (" AND ".join(clauses) or "1"), params


def _glob_match(pattern: re.Pattern[str] | None, value: Any) -> bool:
    if pattern is None:
        return True
    return isinstance(value, str) and pattern.match(value) is not None


class TraceSource(Protocol):
    """Where records are read from; `position` and `after` let `tail -f` pick up only new records."""

    def records(self, filters: Filters, *, newest_first: bool = False) -> Iterator[dict[str, Any]]: ...

    def position(self) -> Any: ...

    def after(self, position: Any, filters: Filters) -> tuple[list[dict[str, Any]], Any]: ...


class TableSource:
    """The `traces` table of state.db, opened read-only."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)

    def records(self, filters: Filters, *, newest_first: bool = False) -> Iterator[dict[str, Any]]:
        where, params = filters.where()
        order = "DESC" if newest_first else "ASC"
        with closing(self._connect()) as conn:
            for (line,) in conn.execute(f"SELECT record FROM traces WHERE {where} ORDER BY seq {order}", params):
                record = _parse(line)
                if record is not None and filters.matches(record):
                    yield record

    def position(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM traces").fetchone()[0])

    def after(self, position: Any, filters: Filters) -> tuple[list[dict[str, Any]], int]:
        where, params = filters.where()
        query = f"SELECT seq, record FROM traces WHERE seq > ? AND {where} ORDER BY seq"
        with closing(self._connect()) as conn:
            rows = conn.execute(query, [position, *params]).fetchall()
            last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM traces").fetchone()[0])
        found = [r for _, line in rows if (r := _parse(line)) is not None and filters.matches(r)]
        return found, max(last, position)


class FileSource:
    """JSONL files: one file given with --traces, or every file of a state dir's chain."""

    def __init__(self, files: Sequence[Path] | None = None, state_dir: Path | None = None) -> None:
        self._files = list(files) if files is not None else None
        self.state_dir = state_dir

    def files(self) -> list[Path]:
        if self._files is not None:
            return self._files
        return trace_files(self.state_dir) if self.state_dir is not None else []

    def records(self, filters: Filters, *, newest_first: bool = False) -> Iterator[dict[str, Any]]:
        files = self.files()
        for path in reversed(files) if newest_first else files:
            if not newest_first:
                # Streamed line by line (`traces export` of a large file); binary lines end at b"\n" only.
                with path.open("rb") as f:
                    for raw in f:
                        record = _parse(raw.decode("utf-8", errors="replace"))
                        if record is not None and filters.matches(record):
                            yield record
                continue
            # Split on newlines only: a record may hold U+2028 or U+0085, which `splitlines` also cuts at.
            lines = path.read_text("utf-8", errors="replace").split("\n")
            for line in reversed(lines):
                record = _parse(line)
                if record is not None and filters.matches(record):
                    yield record

    def position(self) -> tuple[int, int]:
        """(inode, size) of the newest file: where following starts."""
        files = self.files()
        if not files:
            return (0, 0)
        st = files[-1].stat()
        return (st.st_ino, st.st_size)

    def after(self, position: Any, filters: Filters) -> tuple[list[dict[str, Any]], tuple[int, int]]:
        inode, offset = position
        found: list[dict[str, Any]] = []
        files = self.files()
        # The file we were reading may have been rotated to a numbered name since: finish it first.
        start = next((i for i, p in enumerate(files) if p.stat().st_ino == inode), None)
        if start is None:
            start, offset = max(len(files) - 1, 0), 0
        for i, path in enumerate(files[start:]):
            with path.open("rb") as f:
                f.seek(offset if i == 0 else 0)
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            for line in complete.decode("utf-8", errors="replace").split("\n"):
                record = _parse(line)
                if record is not None and filters.matches(record):
                    found.append(record)
            inode, offset = path.stat().st_ino, (offset if i == 0 else 0) + len(complete)
        return found, (inode, offset)


def open_source(state_dir: Path, traces_file: Path | None = None, *, table: bool = True) -> TraceSource:
    """--traces FILE, else the table when it exists and `table` is on, else the state dir's JSONL files."""
    if traces_file is not None:
        return FileSource([traces_file])
    db = state_dir / DB_NAME
    if table and db.exists() and _has_rows(db):
        return TableSource(db)
    return FileSource(state_dir=state_dir)


def _has_rows(db: Path) -> bool:
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT 1 FROM traces LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False


def _parse(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None
