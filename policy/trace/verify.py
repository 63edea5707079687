"""`verify`: walk the chain through every JSONL file (rotated ones first) and the `traces` table, and name
the first record that does not hold: bad JSON, a hash that does not match, or a broken link."""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack, closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from policy.core.model import canonical_json
from policy.store.db import DB_NAME
from policy.trace.anchors import Anchoring, against_store, check_sequence
from policy.trace.append import chain_lock, trace_files
from policy.trace.checkpoint import CHECKPOINTS_NAME, read_checkpoints, read_public
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
    at: dict[int, str] = field(default_factory=dict)  # hash of the record at each position asked for


@dataclass(slots=True)
class VerifyReport:
    """The result of `verify_state`: one ChainCheck for the files, one for the table, and cross-checks."""

    files: list[tuple[str, int]] = field(default_factory=list)
    jsonl: ChainCheck | None = None
    table: ChainCheck | None = None
    mismatch: str | None = None
    anchoring: Anchoring = field(default_factory=Anchoring)
    anchor_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        checks = [c for c in (self.jsonl, self.table) if c is not None]
        return self.mismatch is None and all(c.broken is None for c in checks) and not self.anchor_problems

    @property
    def problems(self) -> list[str]:
        out = [str(c.broken) for c in (self.jsonl, self.table) if c is not None and c.broken is not None]
        return [*out, self.mismatch, *self.anchor_problems] if self.mismatch else [*out, *self.anchor_problems]


Entry = tuple[str, str, str | None]  # where, JSONL line, a problem already found (a table column edited)


def check_chain(entries: Iterable[Entry], prev: str = GENESIS, positions: Collection[int] = ()) -> ChainCheck:
    """Walk (where, JSONL line, problem) entries in order; stops at the first record that breaks the chain.

    `positions` (1-based, as checkpoints count): the hashes of the records there are kept in `at`."""
    count, tip = 0, prev
    at: dict[int, str] = {}
    for where, line, problem in entries:
        try:
            record = parse_line(line)
        except ValueError as exc:
            return ChainCheck(count, tip, Break(where, f"not a trace record: {exc}"), at)
        if record["prev_hash"] != tip:
            hint = "; the first record must start from the genesis hash: were older files removed?" if not count else ""
            broken = Break(where, f"prev_hash does not link to the record before{hint}", tip, record["prev_hash"])
            return ChainCheck(count, tip, broken, at)
        want = expected_hash(record)
        if record["hash"] != want:
            broken = Break(where, "hash does not match the record's content", want, record["hash"])
            return ChainCheck(count, tip, broken, at)
        if problem is not None:
            return ChainCheck(count, tip, Break(where, problem), at)
        count, tip = count + 1, want
        if count in positions:
            at[count] = want
    return ChainCheck(count, tip, None, at)


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
    # A table of an older schema (read-only here: never migrated) lacks newer columns, such as `kind`: the
    # columns it has are checked against the sealed records, the chain itself as always.
    have = {row[1] for row in conn.execute("PRAGMA table_info(traces)")}
    names = tuple(c for c in COLUMNS if c in have)
    query = f"SELECT seq, {', '.join(names)}, record FROM traces WHERE seq <= ? ORDER BY seq"
    for row in conn.execute(query, (last_seq,)):
        line = row[-1] or ""
        column = _column_disagreement(row[1:-1], line, names)
        problem = f"column {column} differs from the row's sealed record" if column else None
        yield f"{DB_NAME} traces seq {row[0]}", line, problem


def _column_disagreement(values: tuple[Any, ...], line: str, names: tuple[str, ...] = COLUMNS) -> str | None:
    try:
        record = parse_line(line)
    except ValueError:
        return None
    for name, value in zip(names, values, strict=True):
        want = canonical_json(record.get(name)) if name == "args" else record.get(name)
        # SQLite stores NaN as NULL; every other value round-trips exactly (REAL is an IEEE double).
        if value != want and not (value is None and isinstance(want, float) and math.isnan(want)):
            return name
    return None


def verify_state(state_dir: str | Path, *, key: str | None = None) -> VerifyReport:
    """Verify every trace file and the table of a state dir, as of one consistent snapshot, against its signed
    checkpoints. `key`: the public key (64 hex digits) the operator expects, kept outside the state dir."""
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
            entries, unreadable = read_checkpoints(folder / CHECKPOINTS_NAME)
        report.anchoring = check_sequence(entries, read_public(folder), key)
        positions = {c.count for c in report.anchoring.checkpoints}
        if handles:
            chain = (entry for name, handle, size in handles for entry in _file_lines(name, handle, size))
            report.jsonl = check_chain(chain, positions=positions)
            report.files = [(name, size) for name, _, size in handles]
        if conn is not None and last_seq is not None:
            report.table = check_chain(_table_rows(conn, last_seq), positions=positions)
    report.mismatch = _cross_check(report)
    report.anchor_problems = [*unreadable, *report.anchoring.problems, *_against(report)]
    return report


def _against(report: VerifyReport) -> list[str]:
    problems: list[str] = []
    last = report.anchoring.last
    stores = (("jsonl", "the trace files", report.jsonl), ("table", "the traces table", report.table))
    for store, label, check in stores:
        if check is None:
            problems += against_store(store, label, False, 0, {}, report.anchoring)
            continue
        records = check.records
        if check.broken is not None and last is not None:
            # The walk stopped at the break, already named: its count says nothing about removals.
            records = max(records, last.count)
        problems += against_store(store, label, True, records, check.at, report.anchoring)
    return problems


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
