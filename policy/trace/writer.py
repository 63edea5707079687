"""TraceWriter: the default TraceSink, a background thread writing batches through a ChainAppender.

`emit` and `emit_call` only enqueue; the records of `emit_call` are built (and their spans emitted) on the
writer's thread too, a batch at a time. Batches are retried briefly, then dropped and counted, so a failing
disk is reported on stderr and in `stats()` but never reaches the caller. `close` (also run at exit) writes
everything.

`ahead` is the exception: it writes an allowed call's decision record to this process's write-ahead log
(policy.trace.ahead) before the call is forwarded, and raises TraceUnavailable when it cannot, or while the
trace itself cannot be written (the last batch was dropped), so the Gate refuses instead of forwarding.
"""

from __future__ import annotations

import atexit
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from policy.core.config import TraceSettings
from policy.core.model import Outcome, ToolCall, Verdict
from policy.trace.ahead import (
    RECOVERED,
    UNKNOWN,
    AheadLog,
    TraceUnavailable,
    adopt_orphans,
    encode_entry,
    not_chained,
)
from policy.trace.append import ChainAppender
from policy.trace.record import build_record
from policy.trace.sink import HandedCall, LateOutcome, SinkStats
from policy.trace.worker import (
    Flat,
    Unpicklable,
    WorkerGone,
    WriterProcess,
    append_with_retries,
    flat_trace_id,
    flatten,
    records_of,
)

MAX_QUEUE = 100_000
MAX_BATCH = 2048
LINGER_SECONDS = 0.2
REPORT_EVERY = 30.0
ADOPT_SECONDS = 2.0  # how often a writer looks for write-ahead logs of stopped processes
_DECIDED = Outcome(True)  # the outcome fields of a write-ahead record are overwritten: it is not known yet
# How long a thread waiting for the GIL lets the holder run before it asks for it (CPython's default: 5 ms).
SWITCH_SECONDS = 0.0005


class _Stop:
    pass


_STOP = _Stop()


_Item = Mapping[str, Any] | HandedCall | Flat


def _share_the_gil() -> None:
    """Make the writer's thread hand the GIL back within SWITCH_SECONDS when the adapter's event loop wants it.

    Building and serialising a batch is Python work that holds the GIL; with CPython's 5 ms interval a request
    arriving meanwhile waited up to 5 ms (bench/proxy.py: +2.6-3.3 ms at p99 over plain mitmdump; with 0.5 ms,
    +1.2-1.4 ms, and the same throughput). Process-wide, and only ever lowered.
    """
    if sys.getswitchinterval() > SWITCH_SECONDS:
        sys.setswitchinterval(SWITCH_SECONDS)


class TraceWriter:
    """Writes trace records to `<state_dir>/traces.jsonl` and the `traces` table of `state.db`."""

    def __init__(
        self,
        state_dir: str | Path,
        settings: TraceSettings,
        *,
        max_queue: int = MAX_QUEUE,
        max_batch: int = MAX_BATCH,
        process: bool = False,
    ) -> None:
        """`process=True`: records are built and written by a worker process (policy.trace.worker), which
        keeps that work off this process's GIL; should the worker die, this process takes over."""
        self._appender = ChainAppender(
            state_dir,
            jsonl=settings.jsonl,
            sqlite=settings.sqlite,
            max_bytes=settings.max_bytes,
            checkpoint_every=settings.checkpoint_every,
        )
        # This process's write-ahead log: created at the first allowed call, or now for a worker to share its lock.
        self._ahead = AheadLog(state_dir, fsync=settings.fsync) if settings.jsonl or settings.sqlite else None
        self._failing: str | None = None  # why the last batch could not be written, until one is
        self._lost: set[str] = set()  # trace ids of calls written ahead whose batch was dropped
        self._next_adoption = 0.0
        self._remote: WriterProcess | None = None
        if process:
            ahead_lock = None
            if self._ahead is not None:
                try:
                    self._ahead.open()  # now, so the worker can share its lock
                    ahead_lock = str(self._ahead.lock_path)
                except OSError as exc:  # allowed calls are refused until it can be written (Gate.check)
                    print(f"agent-mesh trace: cannot open the write-ahead log: {exc}", file=sys.stderr)
            try:
                self._remote = WriterProcess(
                    state_dir,
                    jsonl=settings.jsonl,
                    sqlite=settings.sqlite,
                    max_bytes=settings.max_bytes,
                    otlp=settings.otlp_endpoint,
                    ahead_lock=ahead_lock,
                    checkpoint_every=settings.checkpoint_every,
                )
            except OSError as exc:
                print(f"agent-mesh trace: no writer process ({exc}): writing in this process", file=sys.stderr)
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | threading.Event | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._emitted = self._written = self._dropped = self._errors = 0
        self._last_report = (0.0, "")
        self._last_error = ""
        self._hurry = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-mesh-trace-writer", daemon=True)
        _share_the_gil()
        self._thread.start()
        atexit.register(self.close)

    def emit(self, record: Mapping[str, Any]) -> None:
        self._put(record)

    def ahead(
        self, call: ToolCall, verdict: Verdict, *, policy_hash: str, redact_keys: Iterable[str], ts: float
    ) -> None:
        """Make the call's decision record durable before it is forwarded; raises TraceUnavailable when it
        cannot be, or while the trace cannot be written (its records would only pile up in the log)."""
        if self._ahead is None:
            return  # no JSONL and no table: nothing is recorded at all (spans, if any, follow the outcome)
        failing = self._failing
        if failing is not None:
            raise TraceUnavailable(f"the trace cannot be written: {failing}")
        if self._closed or not self._thread.is_alive():
            raise TraceUnavailable("the trace writer has stopped")
        if self._queue.qsize() >= self._max_queue:
            # Its full record would be dropped at `finish`: the call would have only its write-ahead entry.
            raise TraceUnavailable(f"the trace writer is {self._max_queue} records behind")
        record = build_record(call, verdict, _DECIDED, policy_hash=policy_hash, redact_keys=redact_keys, ts=ts)
        # What this entry says if this process dies before the call's full record is written.
        record["outcome"] = UNKNOWN
        record["error"] = RECOVERED
        try:
            self._ahead.write(verdict.trace_id, encode_entry(record))
        except OSError as exc:
            raise TraceUnavailable(f"the write-ahead log cannot be written: {exc}") from exc

    def emit_call(
        self,
        call: ToolCall,
        verdict: Verdict,
        outcome: Outcome | LateOutcome,
        *,
        policy_hash: str,
        redact_keys: Iterable[str],
        ts: float,
    ) -> None:
        # Built later, in a batch: per call on an adapter's busy event loop the same work costs several
        # times more (cold caches), and it would be paid on the hot path. For a worker process, as plain
        # values now: attribute reads here cost less than on the writer's thread, which competes for the GIL.
        if self._remote is not None:
            self._put(flatten(call, verdict, outcome, policy_hash, redact_keys, ts))
        else:
            self._put(HandedCall(call, verdict, outcome, policy_hash, redact_keys, ts))

    def _put(self, item: _Item) -> None:
        with self._lock:
            if self._closed or self._queue.qsize() >= self._max_queue:
                self._dropped += 1
                return
            self._emitted += 1
            self._queue.put(item)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every record emitted before this call is written (or dropped); False on timeout."""
        if self._closed:
            return self.close(timeout)
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        self._hurry.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything still queued, stop the thread; True when nothing is left behind."""
        with self._lock:
            first = not self._closed
            self._closed = True
        if first:
            atexit.unregister(self.close)
            self._queue.put(_STOP)
            self._hurry.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        if self._remote is not None and not self._remote.close(timeout):
            return False
        if self._ahead is not None:
            self._ahead.close()
        self._appender.checkpoints.final()
        self._appender.close()
        return self._queue.empty()

    def stats(self) -> SinkStats:
        with self._lock:
            return SinkStats(
                emitted=self._emitted,
                written=self._written,
                queued=self._queue.qsize(),
                dropped=self._dropped,
                errors=self._errors,
            )

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[_Item] = []
            waiters: list[threading.Event] = []
            if time.monotonic() >= self._next_adoption:
                self._adopt()
            try:
                item = self._queue.get(timeout=ADOPT_SECONDS)
            except queue.Empty:
                continue
            if not isinstance(item, _Stop | threading.Event) and self._queue.qsize() < self._max_batch:
                # Let a batch gather: each wake-up of this thread costs the adapter's event loop GIL hand-offs
                # (bench/proxy.py: per-record appends cost a third of the throughput; batches every 50 ms, 4-5 %
                # more than every 200 ms; longer adds little). A backlog of a full batch or more is written at
                # once: lingering then would only cap the throughput. `flush` and `close` cut it short.
                self._hurry.wait(LINGER_SECONDS)
                self._hurry.clear()
            while True:
                if isinstance(item, _Stop):
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._write(batch)
            for waiter in waiters:
                waiter.set()

    def _adopt(self) -> None:
        """Chain the write-ahead entries of processes that stopped before their records were written."""
        self._next_adoption = time.monotonic() + ADOPT_SECONDS
        if self._ahead is None:
            return
        try:
            written = adopt_orphans(self._ahead.folder.parent, self._appender, self._report)
        except Exception as exc:  # adoption is retried on the next round; it must never stop this thread
            self._report(f"could not adopt write-ahead logs: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._written += written

    def _write(self, items: list[_Item]) -> None:
        if self._remote is not None:
            try:
                written, dropped, errors = self._remote.send(items)  # type: ignore[arg-type]
            except Unpicklable:
                pass  # an outcome only this process can read: this batch is written here, the worker stays
            except WorkerGone as exc:
                self._report(f"{exc}: writing in this process from now on", force=True)
                self._remote.close(0)
                self._remote = None
            else:
                self._account(items, written, dropped, errors)
                return
        records, bad = records_of(items, self._report)
        written, dropped, errors = append_with_retries(self._appender, records, self._report)
        self._account(items, written, dropped + bad, errors)

    def _account(self, items: list[_Item], written: int, dropped: int, errors: int) -> None:
        with self._lock:
            self._written += written
            self._dropped += dropped
            self._errors += errors
        if dropped and errors:
            # Not written after retries: while this lasts, the gate refuses calls (traces.on_failure). The calls
            # of this batch that were written ahead keep their entries, chained once the trace can be written.
            self._failing = self._last_error or "a batch of records could not be written (see the mesh's stderr)"
            self._lost.update(_trace_ids(items))
            return
        self._failing = None
        if self._ahead is not None:  # written, or left out as already written
            self._ahead.settle(_trace_ids(items))
            if self._lost:
                self._rewrite_lost()

    def _rewrite_lost(self) -> None:
        """Chain the write-ahead entries of calls whose records were dropped while the trace was failing."""
        assert self._ahead is not None
        lost, self._lost = self._lost, set()
        records = self._ahead.entries(lost)
        fresh: list[Mapping[str, Any]] = [*not_chained(records, self._appender)] if records else []
        written, dropped, errors = append_with_retries(self._appender, fresh, self._report)
        if dropped and errors:
            self._lost |= lost
            return
        with self._lock:
            self._written += written
        self._ahead.settle(lost)
        if written:
            self._report(f"wrote {written} decision record(s) whose batch was dropped while the trace was failing")

    def _report(self, message: str, *, force: bool = False) -> None:
        if message.startswith("cannot write"):
            self._last_error = message
        now = time.monotonic()
        last, text = self._last_report
        if force or message != text or now - last >= REPORT_EVERY:
            self._last_report = (now, message)
            print(f"agent-mesh trace: {message}", file=sys.stderr, flush=True)


def _trace_ids(items: list[_Item]) -> Iterable[str]:
    for item in items:
        if isinstance(item, HandedCall):
            yield item.verdict.trace_id
        elif isinstance(item, tuple):
            yield flat_trace_id(item)
        else:
            yield str(item.get("trace_id"))


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so atexit hooks run and traces are flushed (main thread, entry points)."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
