"""The write-ahead log: an allowed call's decision record is on disk before the call is forwarded.

`Gate.check` (and `Gate.hold`, for a call a human approved) hands an allowed call's decision record to
`AheadLog.write` before the adapter forwards it: one `O_APPEND` write of one line to a file of this process's
own, `<state_dir>/trace-ahead/<id>.<n>.jsonl`, so no lock is shared with any other process on the hot path.
The page cache outlives the process, so the record survives a SIGKILL of the deciding process without an
fsync (`traces.fsync: true` adds one per record, for power loss). The call's full record (decision and
outcome) follows through the batched trace writer as before; once that record is in the chain, its entry
is settled, and a segment whose entries are all settled is emptied or removed.

Each log is tied to its process by a `flock` on `<id>.lock`, held for the process's life (and by its trace
worker process, which writes the batches it was given after its parent dies). A log whose lock nobody holds
belongs to a process that is gone: `adopt_orphans` (run by every trace writer at start and every few seconds)
chains each entry not already in the trace as the call's record, with outcome `unknown`, and removes the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import json.encoder as json_encoder
import os
import re
import secrets
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

try:
    import _json as json_c
except ImportError:  # an interpreter without the C accelerator
    json_c = None  # type: ignore[assignment]

from policy.store.statedir import make_private_dir
from policy.trace.append import ChainAppender, trace_files
from policy.trace.record import placeholder

AHEAD_DIR = "trace-ahead"
SEGMENT_BYTES = 4 * 1024 * 1024  # a busy process rarely has nothing in flight: start a new file past this size
UNKNOWN = "unknown"
RECOVERED = (
    "recovered from the write-ahead log: the call's outcome was never recorded (the process that let it through "
    "stopped first, or its record was lost while the trace could not be written)"
)
_TRACE_ID = re.compile(r'"trace_id":"([^"\\]*)"')
# ASCII-only JSON: a lone surrogate is written as its escape, so encoding the line cannot fail. The C encoder
# is built once (`JSONEncoder.encode` builds one per call, most of the cost of a small record); without a
# circular-reference check, a cycle ends in RecursionError, and then the placeholder is written.
_checked = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode
_fast = (
    json_c.make_encoder(None, str, json_encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    if json_c is not None
    else None
)


def _encode(record: Mapping[str, Any]) -> str:
    return "".join(_fast(record, 0)) if _fast is not None else _checked(record)


class TraceUnavailable(Exception):
    """A call's decision record cannot be made durable: the gate refuses the call (traces.on_failure)."""


def encode_entry(record: Mapping[str, Any]) -> bytes:
    """One log line; never raises (a record that cannot be serialised becomes its placeholder)."""
    try:
        return (_encode(record) + "\n").encode("ascii")
    except (ValueError, TypeError, RecursionError) as exc:
        return (_checked(placeholder(record, exc)) + "\n").encode("ascii")


class AheadLog:
    """This process's write-ahead log. `write` is called on the adapter's thread, `settle` on the writer's."""

    def __init__(self, state_dir: str | Path, *, fsync: bool = False) -> None:
        self.folder = Path(state_dir) / AHEAD_DIR
        self.fsync = fsync
        self.ident = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment = 0
        self._size = 0
        self._where: dict[str, int] = {}  # trace id -> segment of its unsettled entry
        self._counts: dict[int, int] = {}  # segment -> unsettled entries

    @property
    def lock_path(self) -> Path:
        return self.folder / f"{self.ident}.lock"

    def open(self) -> None:
        """Create the lock (held from now on) and the first segment; raises OSError when it cannot."""
        with self._lock:
            self._open()

    def _open(self) -> None:
        if self._fd is not None:
            return
        make_private_dir(self.folder.parent)  # the state dir: mkdir(parents=True) would make it 0755
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._lock_fd is None:
            # Locked before it gets its name: an adopter never sees this log unlocked while its owner lives.
            temp = self.folder / f".{self.ident}.lock.tmp"
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                os.rename(temp, self.lock_path)
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._fd = os.open(self._segment_path(self._segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _segment_path(self, n: int) -> Path:
        return self.folder / f"{self.ident}.{n}.jsonl"

    @property
    def outstanding(self) -> int:
        with self._lock:
            return len(self._where)

    def write(self, trace_id: str, line: bytes) -> None:
        """Append one entry; durable against this process's death when it returns. Raises OSError."""
        with self._lock:
            self._open()
            assert self._fd is not None
            if self._size >= SEGMENT_BYTES and self._counts.get(self._segment):
                self._next_segment()
            fd = self._fd
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # no half line left for the next entry to follow
                    os.ftruncate(fd, self._size)
                raise
            self._size += len(line)
            self._where[trace_id] = self._segment
            self._counts[self._segment] = self._counts.get(self._segment, 0) + 1

    def _next_segment(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        self._segment += 1
        self._open()

    def settle(self, trace_ids: Iterable[str]) -> None:
        """These calls' records are in the chain: their entries are no longer needed."""
        with self._lock:
            for trace_id in trace_ids:
                n = self._where.pop(trace_id, None)
                if n is None:
                    continue  # a refusal, or a record never written ahead
                left = self._counts[n] - 1
                if left:
                    self._counts[n] = left
                    continue
                del self._counts[n]
                with contextlib.suppress(OSError):  # a failed clean-up only leaves entries adoption skips
                    if n == self._segment and self._fd is not None:
                        os.ftruncate(self._fd, 0)  # O_APPEND: the next entry starts the file again
                        self._size = 0
                    else:
                        self._segment_path(n).unlink()

    def entries(self, trace_ids: set[str]) -> list[dict[str, Any]]:
        """The entries of these unsettled calls, read back from this log's segments."""
        with self._lock:
            segments = sorted({self._where[t] for t in trace_ids if t in self._where})
        found = [r for n in segments for r in _entries(self._segment_path(n), _quiet)]
        return [r for r in found if r["trace_id"] in trace_ids]

    def close(self) -> None:
        """Release the log: removed when everything is settled, else left for `adopt_orphans`."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is None:
                return
            if not self._where:
                for n in range(self._segment + 1):
                    with contextlib.suppress(OSError):
                        self._segment_path(n).unlink()
                with contextlib.suppress(OSError):
                    self.lock_path.unlink()
            os.close(self._lock_fd)
            self._lock_fd = None


def hold_lock(path: str | Path) -> int | None:
    """Share the lock of a parent's log (the trace worker does, for its life); None when it is gone."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


Report = Callable[..., None]


def adopt_orphans(state_dir: str | Path, appender: ChainAppender, report: Report) -> int:
    """Chain the entries of every log whose process is gone and that are not in the trace yet, then remove
    those logs. Returns how many records it wrote. A log whose records cannot be written stays for later."""
    folder = Path(state_dir) / AHEAD_DIR
    if not folder.is_dir():
        return 0
    for temp in folder.glob(".*.lock.tmp"):  # a process that died while creating its log, before any entry
        _remove_if_unlocked(temp)
    written = 0
    for lock in sorted(folder.glob("*.lock")):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue  # adopted meanwhile by another process
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process (or its trace worker) is alive
            ident = lock.name[: -len(".lock")]
            segments = sorted(folder.glob(f"{glob.escape(ident)}.*.jsonl"))
            records = [r for segment in segments for r in _entries(segment, report)]
            if records:
                fresh = not_chained(records, appender)
                try:
                    written += appender.append(fresh) if fresh else 0
                except Exception as exc:
                    report(f"cannot write {len(fresh)} record(s) recovered from {lock.name}: {exc}", force=True)
                    continue
                report(f"recovered {len(fresh)} decision record(s) of a stopped process from its write-ahead log")
            for segment in segments:
                segment.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return written


def recover(state_dir: str | Path, *, jsonl: bool = True, sqlite: bool = True, max_bytes: int = 64 << 20) -> int:
    """Adopt the write-ahead logs of stopped processes now (what every trace writer does at start and every
    few seconds), for tools that inspect a state dir no mesh process runs on: returns the records written."""

    def report(message: str, *, force: bool = False) -> None:
        print(f"agent-mesh trace: {message}", file=sys.stderr, flush=True)

    appender = ChainAppender(state_dir, jsonl=jsonl, sqlite=sqlite, max_bytes=max_bytes)
    try:
        return adopt_orphans(state_dir, appender, report)
    finally:
        appender.close()


def _remove_if_unlocked(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except OSError:
        pass  # locked: its process is still starting
    finally:
        os.close(fd)


def _entries(path: Path, report: Report) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for raw in data.split(b"\n")[:-1]:  # a last piece without its newline was never a whole entry
        try:
            record = json.loads(raw)
        except ValueError:
            report(f"{path.name}: skipped a damaged write-ahead entry")
            continue
        if isinstance(record, dict) and isinstance(record.get("trace_id"), str):
            out.append(record)
    return out


def _quiet(message: str, *, force: bool = False) -> None:
    pass


def not_chained(records: list[dict[str, Any]], appender: ChainAppender) -> list[dict[str, Any]]:
    """Without the records whose call is in the trace already. With a table, its unique trace ids sort that
    out in `ChainAppender.append`; files alone are searched here (adoption is rare)."""
    if appender.sqlite or not appender.jsonl:
        return records
    wanted = {r["trace_id"] for r in records}
    seen: set[str] = set()
    for path in trace_files(appender.state_dir):
        with path.open("rb") as f:
            for raw in f:
                m = _TRACE_ID.search(raw.decode("utf-8", errors="replace"))
                if m and m.group(1) in wanted:
                    seen.add(m.group(1))
    return [r for r in records if r["trace_id"] not in seen]
