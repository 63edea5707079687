"""TraceWriter: the default TraceSink, a background thread writing batches through a ChainAppender.

`emit` only enqueues. Batches are retried briefly, then dropped and counted, so a failing disk is reported
on stderr and in `stats()` but never reaches the caller. `close` (also run at exit) writes everything.
"""

from __future__ import annotations

import atexit
import queue
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from policy.config import TraceSettings
from policy.trace.append import ChainAppender
from policy.trace.sink import SinkStats

MAX_QUEUE = 100_000
MAX_BATCH = 2048
RETRY_DELAYS = (0.05, 0.25)
LINGER_SECONDS = 0.05
REPORT_EVERY = 30.0


class _Stop:
    pass


_STOP = _Stop()


class TraceWriter:
    """Writes trace records to `<state_dir>/traces.jsonl` and the `traces` table of `state.db`."""

    def __init__(
        self,
        state_dir: str | Path,
        settings: TraceSettings,
        *,
        max_queue: int = MAX_QUEUE,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._appender = ChainAppender(
            state_dir, jsonl=settings.jsonl, sqlite=settings.sqlite, max_bytes=settings.max_bytes
        )
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Mapping[str, Any] | threading.Event | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._emitted = self._written = self._dropped = self._errors = 0
        self._last_report = (0.0, "")
        self._thread = threading.Thread(target=self._run, name="agent-mesh-trace-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def emit(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            if self._closed or self._queue.qsize() >= self._max_queue:
                self._dropped += 1
                return
            self._emitted += 1
            self._queue.put(record)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every record emitted before this call is written (or dropped); False on timeout."""
        if self._closed:
            return self.close(timeout)
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything still queued, stop the thread; True when nothing is left behind."""
        with self._lock:
            first = not self._closed
            self._closed = True
        if first:
            atexit.unregister(self.close)
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
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
            batch: list[Mapping[str, Any]] = []
            waiters: list[threading.Event] = []
            item = self._queue.get()
            if not isinstance(item, _Stop | threading.Event) and self._queue.qsize() < self._max_batch:
                # Let a batch gather: an append per record costs the adapters' hot path CPU and the GIL
                # (bench/proxy.py: per-record appends cost each proxied call +2.2 ms at p50 and a third of the
                # throughput; with batches gathered for 50 ms, +0.2-0.5 ms and about a fifth). A backlog of a
                # full batch or more is written at once: lingering then would only cap the throughput.
                time.sleep(LINGER_SECONDS)
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

    def _write(self, batch: list[Mapping[str, Any]]) -> None:
        if not batch:
            return
        for delay in (*RETRY_DELAYS, None):
            try:
                written = self._appender.append(batch)
            except Exception as exc:  # a failing disk or database must never reach the caller
                with self._lock:
                    self._errors += 1
                self._report(f"cannot write {len(batch)} trace record(s): {type(exc).__name__}: {exc}")
                if delay is not None:
                    time.sleep(delay)  # a short back-off on the writer's own thread, between retries
                continue
            with self._lock:
                self._written += written
                self._dropped += len(batch) - written
            return
        with self._lock:
            self._dropped += len(batch)
        self._report(f"dropped {len(batch)} trace record(s) after {len(RETRY_DELAYS) + 1} attempts", force=True)

    def _report(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        last, text = self._last_report
        if force or message != text or now - last >= REPORT_EVERY:
            self._last_report = (now, message)
            print(f"agent-mesh trace: {message}", file=sys.stderr, flush=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so atexit hooks run and traces are flushed (main thread, entry points)."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
