"""Checkpointer: signs a checkpoint of the chain every `every` records and at shutdown, from any process.

Every process that writes the trace (the proxy's worker, each mcpwrap, serve) holds one, inside its
ChainAppender. The chain lock (`traces.lock`) serialises appends, so under it the chain has one head that
every process agrees on; whichever process holds the lock when the chain has grown `every` records past the
last checkpoint signs the next one, with the state dir's one key. The count is never kept apart from the
chain: it is the last checkpoint's count (or the cached count of this process's own last look) plus the
lines after that anchor's hash in the files, so a process killed between its append and its signature leaves
nothing to repair: the next append by anyone signs. A chain that no longer holds the last checkpoint's head
is never signed (that would endorse a trimmed trace); `traces verify` names what happened.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from policy.trace.checkpoint import CHECKPOINTS_NAME, GENESIS, Checkpoint, line_digest, load_key, parse_checkpoint, sign
from policy.trace.mend import mend_table

DEFAULT_EVERY = 1000
_CHUNK = 65536
_TABLE_TIP = "SELECT count(*), (SELECT hash FROM traces ORDER BY seq DESC LIMIT 1) FROM traces"


class Checkpointer:
    """Signs checkpoints of one state dir's chain; `after_append` runs under the chain lock, `final` takes it."""

    def __init__(
        self, state_dir: str | Path, *, every: int = DEFAULT_EVERY, jsonl: bool = True, table: bool = True
    ) -> None:
        self.state_dir = Path(state_dir)
        self.every = every
        self.jsonl = jsonl
        self.table = table
        self.stores = tuple(s for s, on in (("jsonl", jsonl), ("table", table)) if on)
        self._seen: tuple[int, int] | None = None  # (inode, size) of traces.jsonl at the last look
        self._cache: tuple[str, int] | None = None  # (hash, count) of the chain's tip at the last look
        self._complained = ""
        self._checkpoint: tuple[tuple[int, int], tuple[Checkpoint, str] | None] | None = None

    def after_append(self) -> None:
        """Sign when the chain grew `every` records past the last checkpoint. The caller holds the chain lock.

        Never raises: a checkpoint that cannot be written weakens the evidence, it must not lose records.
        """
        try:
            self._maybe_sign(force=False)
        except Exception as exc:
            self._complain(f"no checkpoint signed: {type(exc).__name__}: {exc}")

    def final(self) -> None:
        """At shutdown: sign the current head if any record is past the last checkpoint (takes the lock)."""
        from policy.trace.append import chain_lock  # append builds on this module

        if not self.stores or not self.state_dir.is_dir():
            return
        try:
            with chain_lock(self.state_dir):
                self.sign_now()
        except Exception as exc:
            self._complain(f"no checkpoint signed at shutdown: {type(exc).__name__}: {exc}")

    def sign_now(self) -> None:
        """Sign the current head if any record is past the last checkpoint. The caller holds the chain lock;
        errors reach it (an export must know whether its bundle ends on a checkpoint)."""
        if self.jsonl and self.table:
            self._mend()
        self._maybe_sign(force=True)

    def _mend(self) -> None:
        """Before the last signature of a writer: the table catches up with a file a killed writer left ahead."""
        from policy.store.db import DB_NAME
        from policy.trace.append import trace_files

        files = list(reversed(trace_files(self.state_dir)))
        db = self.state_dir / DB_NAME
        tip = _last_hash(files)
        if tip is None or not db.exists():
            return
        conn = sqlite3.connect(db, timeout=30)
        try:
            mend_table(conn, files, tip)
        finally:
            conn.close()

    def _maybe_sign(self, *, force: bool) -> None:
        if not self.stores:
            return
        path = self.state_dir / CHECKPOINTS_NAME
        last = self._last_checkpoint(path)
        tip = self._tip(last[0] if last else None)
        if tip is None:
            return
        head, count = tip
        signed = last[0].count if last else 0
        # The first record is signed at once: from then on, a chain without checkpoints was trimmed of them.
        if count <= signed or (not force and last is not None and count - signed < self.every):
            return
        key = load_key(self.state_dir)
        assert key is not None
        prev = line_digest(last[1]) if last else GENESIS
        checkpoint = sign(key, count=count, head=head, ts=time.time(), every=self.every, prev=prev, stores=self.stores)
        _append_line(path, checkpoint)

    def _last_checkpoint(self, path: Path) -> tuple[Checkpoint, str] | None:
        """The file's last checkpoint and its line: its tail is read only when the file changed."""
        from policy.trace.append import last_line

        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if self._checkpoint is not None and self._checkpoint[0] == (st.st_ino, st.st_size):
            return self._checkpoint[1]
        line, _ = last_line(path)
        found = (parse_checkpoint(line), line) if line is not None else None
        self._checkpoint = ((st.st_ino, st.st_size), found)
        return found

    def _tip(self, last: Checkpoint | None) -> tuple[str, int] | None:
        """(hash, count) of the chain's last record, or None when it is empty or lost its anchor."""
        if not self.jsonl:
            return self._table_tip()
        from policy.trace.append import trace_files

        current = self.state_dir / "traces.jsonl"
        try:
            st = current.stat()
            seen: tuple[int, int] | None = (st.st_ino, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen is not None and seen == self._seen and self._cache is not None:
            return self._cache
        if seen is not None and self._cache is not None:
            quick = _since(current, self._cache[0])  # the usual case: a batch or a few past this process's look
            if quick is not None:
                self._cache, self._seen = (quick[0], self._cache[1] + quick[1]), seen
                return self._cache
        files = list(reversed(trace_files(self.state_dir)))
        tip = _last_hash(files)
        if tip is None:
            return None
        anchors = [a for a in (self._cache, (last.head, last.count) if last else None) if a is not None]
        for anchor_hash, anchor_count in anchors:
            after = _lines_after(files, anchor_hash)
            if after is not None:
                self._cache, self._seen = (tip, anchor_count + after), seen
                return self._cache
        if last is not None:
            self._complain(
                f"the trace no longer holds record {last.count} ({last.head[:16]}…) of the last checkpoint: "
                "not signing; run `agent-mesh traces verify`"
            )
            return None
        self._cache, self._seen = (tip, sum(_count_lines(p) for p in files)), seen
        return self._cache

    def _table_tip(self) -> tuple[str, int] | None:
        from policy.store.db import DB_NAME

        db = self.state_dir / DB_NAME
        if not db.exists():
            return None
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute(_TABLE_TIP).fetchone()
        finally:
            conn.close()
        return (str(row[1]), int(row[0])) if row and row[0] else None

    def _complain(self, message: str) -> None:
        if message != self._complained:  # once per problem, not once per batch
            self._complained = message
            print(f"agent-mesh trace: {message}", file=sys.stderr, flush=True)


def _append_line(path: Path, checkpoint: Checkpoint) -> None:
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # A signer killed mid-line: that fragment was never a checkpoint; cut it off.
            data = os.pread(fd, size, 0)
            os.ftruncate(fd, data.rfind(b"\n") + 1)
        data = (checkpoint.line() + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _last_hash(files: list[Path]) -> str | None:
    """The hash of the newest complete record in the files (newest first)."""
    from policy.trace.append import last_line

    for path in files:
        line, _ = last_line(path)
        if line is not None:
            value = json.loads(line).get("hash")
            if not isinstance(value, str):
                raise ValueError(f"{path.name}: the last line has no hash")
            return value
    return None


def _since(path: Path, anchor: str) -> tuple[str, int] | None:
    """(hash of the last record, lines after the anchor's) when both are in the last _CHUNK bytes of `path`,
    read in growing steps from the end; None otherwise (the caller then walks every file)."""
    marker = f'"hash":"{anchor}"}}\n'.encode()
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        step = 4096
        while True:
            start = max(0, end - step)
            f.seek(start)
            data = f.read(end - start)
            i = data.rfind(marker)
            if i >= 0:
                break
            if start == 0 or step >= _CHUNK:
                return None
            step *= 4
    data = data[: data.rfind(b"\n") + 1]  # a torn last line is not a record
    tail = data[-68:]  # `"<64 hex digits>"}` and the newline
    if not (tail.startswith(b'"') and tail.endswith(b'"}\n')):
        return None
    tip = tail[1:65].decode("ascii", errors="replace")
    return tip, data.count(b"\n", i + len(marker))


def _lines_after(files: list[Path], anchor: str) -> int | None:
    """How many complete lines follow the record whose hash is `anchor` (files newest first); None if absent.

    Reads backwards from the end, so the cost is the bytes written since the anchor. The marker cannot occur
    inside a record: JSON escapes quotes and newlines in strings.
    """
    marker = f'"hash":"{anchor}"}}\n'.encode()
    newer = 0
    for path in files:
        with path.open("rb") as f:
            pos = f.seek(0, os.SEEK_END)
            seen, lines = b"", 0
            while pos > 0:
                step = min(_CHUNK, pos)
                pos -= step
                f.seek(pos)
                block = f.read(step)
                window = block + seen
                i = window.rfind(marker)
                if i >= 0:
                    return newer + lines - seen.count(b"\n") + window.count(b"\n", i + len(marker))
                lines += block.count(b"\n")
                seen = window[: len(marker) - 1]
            newer += lines
    return None


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
    return count
