"""Appends chained batches to `traces.jsonl` and the `traces` table, linear across processes.

Every batch runs under an exclusive `flock` on `traces.lock`: read the chain tip, rotate the file when it
is full, append the lines, insert the rows. A failed batch leaves neither file nor table changed.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from policy.store.db import DB_NAME, connect
from policy.store.statedir import make_private_dir
from policy.trace.mend import mend_table
from policy.trace.record import COLUMNS, GENESIS, Prepared, chain_hash, parse_line, prepare
from policy.trace.signer import DEFAULT_EVERY, Checkpointer

JSONL_NAME = "traces.jsonl"
LOCK_NAME = "traces.lock"
_ROTATED = re.compile(r"^traces\.(\d+)\.jsonl$")
_INSERT = f"INSERT INTO traces ({', '.join(COLUMNS)}, record) VALUES "
_ROW = f"({','.join('?' * (len(COLUMNS) + 1))})"
ROWS_PER_STATEMENT = 256  # 5,632 parameters (SQLite allows 32,766), about a megabyte of prepared statement
_TAIL_CHUNK = 8192
CHECKPOINT_EVERY = 1024  # records: keeps the WAL under SQLite's 1000-page auto-checkpoint of other connections


def _insert_sql(rows: int) -> str:
    return _INSERT + ",".join([_ROW] * rows)


def trace_files(state_dir: str | Path) -> list[Path]:
    """Every JSONL file of the chain, oldest first: traces.1.jsonl, traces.2.jsonl, ..., traces.jsonl."""
    folder = Path(state_dir)
    numbered: list[tuple[int, Path]] = []
    if folder.is_dir():
        for entry in folder.iterdir():
            m = _ROTATED.match(entry.name)
            if m:
                numbered.append((int(m.group(1)), entry))
    files = [p for _, p in sorted(numbered)]
    current = folder / JSONL_NAME
    if current.exists():
        files.append(current)
    return files


@contextmanager
def chain_lock(state_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """The cross-process lock that serialises chain appends (shared: a consistent read snapshot)."""
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def last_line(path: Path) -> tuple[str | None, int]:
    """(last complete line, byte offset just after it) of a file; (None, 0) when it holds none."""
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos, buf = end, b""
        while pos > 0:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            complete = buf[: buf.rfind(b"\n") + 1]
            start = complete.rfind(b"\n", 0, len(complete) - 1) if complete else -1
            if start >= 0 or (pos == 0 and complete):
                # A damaged (or tampered) tail must not stop every later append: `verify` names that line.
                return complete[start + 1 : -1].decode("utf-8", errors="replace"), pos + len(complete)
    return None, 0


class ChainAppender:
    """Writes batches for one process; connects lazily so a broken disk surfaces per batch, not at start."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        jsonl: bool = True,
        sqlite: bool = True,
        max_bytes: int,
        checkpoint_every: int = DEFAULT_EVERY,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.jsonl = jsonl
        self.sqlite = sqlite
        self.max_bytes = max_bytes
        # Signs checkpoints (policy.trace.signer): after_append under the chain lock, final() at shutdown.
        self.checkpoints = Checkpointer(self.state_dir, every=checkpoint_every, jsonl=jsonl, table=sqlite)
        self._conn: sqlite3.Connection | None = None
        self._made = False
        self._since_checkpoint = 0
        # (hash, (inode, size)) of traces.jsonl after this appender's last batch: while the file is still so,
        # no other process appended and the tip is that hash, without reading the file back.
        self._last: tuple[str, tuple[int, int]] | None = None

    def append(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Chain and write `records`; returns how many were handled: all, less duplicate trace ids and records
        that cannot be serialised (all of them when both outputs are off: spans may be the only output)."""
        if not records or not (self.jsonl or self.sqlite):
            return len(records)
        # Serialise outside the lock: other processes wait only for the concat, hash and write.
        good: list[Mapping[str, Any]] = []
        prepared: list[Prepared] = []
        for record in records:
            try:
                prepared.append(prepare(record, row=self.sqlite))
            except (TypeError, ValueError) as exc:  # one bad record must not cost the whole batch
                _report(f"left out trace record {record.get('trace_id')!r}: it is not JSON ({exc})")
                continue
            good.append(record)
        written = len(good)
        if not self._made:  # once, not a syscall and an exception per batch; again if the folder went away
            make_private_dir(self.state_dir)
            self._made = True
        try:
            with chain_lock(self.state_dir):
                try:
                    self._append_locked(prepared)
                except sqlite3.IntegrityError:
                    kept = self._without_duplicates(good)
                    if len(kept) < len(good):
                        _report(f"left out {len(good) - len(kept)} trace record(s) whose trace_id was already written")
                    if kept:  # none left: all were written already (an adopted log, a batch retried after a kill)
                        self._append_locked([prepared[i] for i in kept])
                    written = len(kept)
                self.checkpoints.after_append()
        except FileNotFoundError:
            self._made = False
            raise
        if self.sqlite:
            self._checkpoint(written)
        return written

    def _checkpoint(self, written: int) -> None:
        """Copy the WAL into state.db now and then, outside the chain lock and on this background thread.

        Traces are most of what is written to state.db: left to SQLite's auto-checkpoint, that copy (and its
        fsyncs) would land on whichever connection commits next, often a gate's store on an agent's call.
        """
        self._since_checkpoint += written
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            try:
                self._db().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the batch is committed: a failed copy must not make it retry
                _report(f"WAL checkpoint of {DB_NAME} failed (SQLite will retry later): {exc}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            # A small statement cache: the inserts differ in row count, and a cached one can hold a megabyte.
            self._conn = connect(self.state_dir / DB_NAME, cached_statements=8)
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint
        return self._conn

    def _append_locked(self, prepared: Sequence[Prepared]) -> None:
        tip = self._tip()
        lines: list[str] = []
        rows: list[tuple[Any, ...]] = []
        for item in prepared:
            digest, line = item.seal(tip)
            lines.append(line)
            if self.sqlite:
                rows.append((*item.row, tip, digest, line))
            tip = digest
        opened: list[tuple[int, int]] = []  # (fd, size before this batch), to undo a failed batch
        written: tuple[int, int] | None = None
        conn: sqlite3.Connection | None = None
        try:
            if self.jsonl:
                for chunk in self._chunks(lines):
                    fd = self._open_jsonl(len(chunk))
                    opened.append((fd, -1))  # registered before fstat, so it is closed whatever happens
                    opened[-1] = (fd, os.fstat(fd).st_size)
                    _write_all(fd, chunk)
                if opened:
                    stat = os.fstat(opened[-1][0])
                    written = (stat.st_ino, stat.st_size)
            if self.sqlite:
                # Last, so a failed insert undoes the file writes and no table write waits on the disk.
                conn = self._db()
                self._insert(conn, rows)
        except BaseException as exc:
            if conn is not None:
                self._abort(conn, drop=not isinstance(exc, sqlite3.IntegrityError))
            for fd, start in opened:
                if start >= 0:
                    with suppress(OSError):
                        os.ftruncate(fd, start)
            raise
        finally:
            for fd, _ in opened:
                with suppress(OSError):
                    os.close(fd)
        self._last = (tip, written) if written is not None else None

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert the rows as one multi-row statement: in autocommit mode SQLite takes the write lock, writes
        and commits inside a single call that runs without the GIL. A transaction spanning several calls
        would hold the lock whenever this thread waits for the GIL — up to the 5 ms switch interval each time
        while an adapter's event loop keeps the GIL busy — and every call of every gate would queue behind it.
        """
        if len(rows) <= ROWS_PER_STATEMENT:
            conn.execute(_insert_sql(len(rows)), [v for row in rows for v in row])
            return
        conn.execute("BEGIN IMMEDIATE")  # a backlog bigger than one statement: several, in one transaction
        for i in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[i : i + ROWS_PER_STATEMENT]
            conn.execute(_insert_sql(len(part)), [v for row in part for v in row])
        conn.execute("COMMIT")

    def _chunks(self, lines: list[str]) -> list[bytes]:
        """The batch cut so no file grows past max_bytes: the first chunk fills the current file."""
        try:
            room = self.max_bytes - (self.state_dir / JSONL_NAME).stat().st_size
        except FileNotFoundError:
            room = self.max_bytes
        chunks: list[bytes] = []
        current: list[bytes] = []
        size = 0
        for line in lines:
            data = (line + "\n").encode("utf-8")
            if size + len(data) > room and (current or room < self.max_bytes):
                chunks.append(b"".join(current))
                current, size, room = [], 0, self.max_bytes
            current.append(data)
            size += len(data)
        chunks.append(b"".join(current))
        return [c for c in chunks if c]

    def _abort(self, conn: sqlite3.Connection, *, drop: bool) -> None:
        with suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        if drop:
            # Reconnect on the next batch: the file may have been fixed or replaced meanwhile.
            self.close()

    def _tip(self) -> str:
        if self.jsonl:
            if self._last is not None:
                try:
                    stat = (self.state_dir / JSONL_NAME).stat()
                except FileNotFoundError:
                    stat = None
                if stat is not None and (stat.st_ino, stat.st_size) == self._last[1]:
                    return self._last[0]
            for path in self._newest_first():
                line, end = last_line(path)
                if path.name == JSONL_NAME and end != path.stat().st_size:
                    # A writer died mid-line: that fragment was never a record; cut it off.
                    _report(f"{path}: removed an incomplete last line ({path.stat().st_size - end} bytes)")
                    os.truncate(path, end)
                if line is not None:
                    tip = _line_hash(path, line)
                    if self.sqlite:  # a writer killed after its file write left the table behind: mend it
                        tip = mend_table(self._db(), list(self._newest_first()), tip)
                    return tip
        if self.sqlite:
            row = self._db().execute("SELECT hash FROM traces ORDER BY seq DESC LIMIT 1").fetchone()
            if row is not None:
                return str(row[0])
        return GENESIS

    def _newest_first(self) -> Iterator[Path]:
        # The current file nearly always holds the tip: list the rotated ones only when it is empty.
        current = self.state_dir / JSONL_NAME
        if current.exists():
            yield current
        yield from (p for p in reversed(trace_files(self.state_dir)) if p != current)

    def _open_jsonl(self, incoming: int) -> int:
        current = self.state_dir / JSONL_NAME
        try:
            size = current.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + incoming > self.max_bytes:
            numbers = [int(m.group(1)) for p in trace_files(self.state_dir) if (m := _ROTATED.match(p.name))]
            current.rename(self.state_dir / f"traces.{max(numbers, default=0) + 1}.jsonl")
        return os.open(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _without_duplicates(self, records: Sequence[Mapping[str, Any]]) -> list[int]:
        """Indexes of the records whose trace_id is neither in the table nor earlier in the batch."""
        ids = [str(r.get("trace_id")) for r in records]
        marks = ",".join("?" * len(ids))
        seen = {row[0] for row in self._db().execute(f"SELECT trace_id FROM traces WHERE trace_id IN ({marks})", ids)}
        kept: list[int] = []
        for i, trace_id in enumerate(ids):
            if trace_id not in seen:
                seen.add(trace_id)
                kept.append(i)
        return kept


def _line_hash(path: Path, line: str) -> str:
    try:
        return str(parse_line(line)["hash"])
    except ValueError as exc:
        # Never stop recording over a damaged tail: chain from its raw bytes; `verify` names the line.
        _report(f"{path}: the last line is not a trace record ({exc}); chaining from its sha256")
        return chain_hash(GENESIS, line)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _report(message: str) -> None:
    print(f"agent-mesh trace: {message}", file=sys.stderr, flush=True)
