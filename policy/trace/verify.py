"""`verify`: walk the chain through every JSONL file (rotated ones first) and the `traces` table, and name
the first record that does not hold: bad JSON, a hash that does not match, or a broken link."""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from policy.model import canonical_json
from policy.store.db import DB_NAME
from policy.trace.append import chain_lock, trace_files
from policy.trace.record import COLUMNS, GENESIS, expected_hash, parse_line


@dataclass(frozen=True, slots=True)
class Break:
    """The first record where a chain does not hold."""

    where: str
    problem: str
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        text = f"{self.where}: {self.problem}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}, found {self.found})"
        return text


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What one walk saw: how many records, the last hash, and the first break if any."""

    records: int = 0
    tip: str = GENESIS
    broken: Break | None = None


@dataclass(slots=True)
class VerifyReport:
    """The result of `verify_state`: one ChainCheck for the files, one for the table, and cross-checks."""

    files: list[tuple[str, int]] = field(default_factory=list)
    jsonl: ChainCheck | None = None
    table: ChainCheck | None = None
    mismatch: str | None = None

    @property
    def ok(self) -> bool:
        checks = [c for c in (self.jsonl, self.table) if c is not None]
        return self.mismatch is None and all(c.broken is None for c in checks)

    @property
    def problems(self) -> list[str]:
        out = [str(c.broken) for c in (self.jsonl, self.table) if c is not None and c.broken is not None]
        return [*out, self.mismatch] if self.mismatch else out


Entry = tuple[str, str, str | None]  # where, JSONL line, a problem already found (a table column edited)


def check_chain(entries: Iterable[Entry], prev: str = GENESIS) -> ChainCheck:
    """Walk (where, JSONL line, problem) entries in order; stops at the first record that breaks the chain."""
    count, tip = 0, prev
    for where, line, problem in entries:
        try:
            record = parse_line(line)
        except ValueError as exc:
            return ChainCheck(count, tip, Break(where, f"not a trace record: {exc}"))
        if record["prev_hash"] != tip:
            hint = "; the first record must start from the genesis hash: were older files removed?" if not count else ""
            broken = Break(where, f"prev_hash does not link to the record before{hint}", tip, record["prev_hash"])
            return ChainCheck(count, tip, broken)
        want = expected_hash(record)
        if record["hash"] != want:
            broken = Break(where, "hash does not match the record's content", want, record["hash"])
            return ChainCheck(count, tip, broken)
        if problem is not None:
            return ChainCheck(count, tip, Break(where, problem))
        count, tip = count + 1, want
    return ChainCheck(count, tip)


def _file_lines(name: str, handle: IO[bytes], size: int) -> Iterator[Entry]:
    for number, raw in enumerate(_bounded(handle, size), start=1):
        yield f"{name}:{number}", raw.decode("utf-8", errors="replace").rstrip("\n"), None


def _bounded(handle: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    for raw in handle:
        if left <= 0:
            return
        yield raw[:left]
        left -= len(raw)


def _table_rows(conn: sqlite3.Connection, last_seq: int) -> Iterator[Entry]:
    query = f"SELECT seq, {', '.join(COLUMNS)}, record FROM traces WHERE seq <= ? ORDER BY seq"
    for row in conn.execute(query, (last_seq,)):
        line = row[-1] or ""
        column = _column_disagreement(row[1:-1], line)
        problem = f"column {column} differs from the row's sealed record" if column else None
        yield f"{DB_NAME} traces seq {row[0]}", line, problem


def _column_disagreement(values: tuple[Any, ...], line: str) -> str | None:
    try:
        record = parse_line(line)
    except ValueError:
        return None
    for name, value in zip(COLUMNS, values, strict=True):
        want = canonical_json(record.get(name)) if name == "args" else record.get(name)
        # SQLite stores NaN as NULL; every other value round-trips exactly (REAL is an IEEE double).
        if value != want and not (value is None and isinstance(want, float) and math.isnan(want)):
            return name
    return None


def verify_state(state_dir: str | Path) -> VerifyReport:
    """Verify every trace file and the table of a state dir, as of one consistent snapshot."""
    folder = Path(state_dir)
    report = VerifyReport()
    db = folder / DB_NAME
    with ExitStack() as stack:
        handles: list[tuple[str, IO[bytes], int]] = []
        last_seq: int | None = None
        conn: sqlite3.Connection | None = None
        lock_ok = folder.is_dir() and os.access(folder, os.W_OK)
        with chain_lock(folder, shared=True) if lock_ok else nullcontext():
            for path in trace_files(folder):
                handle = stack.enter_context(path.open("rb"))
                handles.append((path.name, handle, os.fstat(handle.fileno()).st_size))
            if db.exists():
                conn = stack.enter_context(closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)))
                last_seq = _last_seq(conn)
        if handles:
            chain = (entry for name, handle, size in handles for entry in _file_lines(name, handle, size))
            report.jsonl = check_chain(chain)
            report.files = [(name, size) for name, _, size in handles]
        if conn is not None and last_seq is not None:
            report.table = check_chain(_table_rows(conn, last_seq))
    report.mismatch = _cross_check(report)
    return report


def _last_seq(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT max(seq) FROM traces").fetchone()
    except sqlite3.OperationalError:
        return None  # no traces table yet
    return int(row[0]) if row and row[0] is not None else 0


def _cross_check(report: VerifyReport) -> str | None:
    files, table = report.jsonl, report.table
    if files is None or table is None or files.broken or table.broken or not table.records:
        return None
    if (files.records, files.tip) != (table.records, table.tip):
        return (
            f"the files and the table disagree: {files.records} records ending in {files.tip[:16]}… "
            f"in the files, {table.records} rows ending in {table.tip[:16]}… in the table"
        )
    return None
