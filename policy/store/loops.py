"""Loop detection for SqliteStore (ARCHITECTURE §4 step 2), judged from memory, shared through state.db.

A process counts the identical calls it admitted itself exactly, plus those other processes admitted, read
from the append-only `loop_log` table. A background thread appends this process's calls to the log and
reads the other processes' rows every SYNC_SECONDS, so a call made through another process counts here
once it is about 2 * SYNC_SECONDS old, against a window of seconds (the 4th identical call within 10 s, by
default). One insert per call cost an adapter's event loop more than all of its own work (bench/proxy.py),
and the log's rows go to its last page, however many calls a sync carries. Memory holds the scopes (policies)
this process judges calls under; the first call under a scope reads that scope's recent rows once.

Fail closed: while a sync fails, every loop-checked call is refused (StoreUnavailable). A call that finds
the memory older than STALE_SECONDS (the first one, one after a pause, one after a failure) syncs before it
is judged and is written before it is admitted, so a state store that cannot be read or written refuses it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import secrets
import sqlite3
import threading
import time
from array import array
from bisect import bisect_right, insort
from collections.abc import Callable
from pathlib import Path

from policy.core.errors import StoreUnavailable
from policy.store.base import ADMITTED, Admission, Limits
from policy.store.db import Database

SYNC_SECONDS = 0.2
STALE_SECONDS = 1.0
IDLE_SECONDS = 5.0  # with no call for this long, the thread sleeps until the next one
PRUNE_SECONDS = 10.0
MAX_PENDING = 100_000  # calls kept for the log while the store fails; older ones are given up
_ROWS_PER_INSERT = 500
# The other processes' new rows, and the newest row whoever wrote it, so the next pull starts after it.
_PULL = (
    "SELECT seq, origin, scope, agent, call_hash, ts FROM loop_log WHERE seq > ?1 "
    "AND (origin <> ?2 OR seq = (SELECT max(seq) FROM loop_log)) ORDER BY seq"
)

# A scope's rows from other processes that the pulls have passed over while it was not followed yet.
_BACKFILL = "SELECT agent, call_hash, ts FROM loop_log WHERE scope = ? AND ts > ? AND origin <> ? AND seq <= ?"

# One identical call's rows that memory does not hold, for a preview (LoopLedger.peek).
_PEEK = "SELECT ts FROM loop_log WHERE scope = ? AND agent = ? AND call_hash = ? AND ts > ? AND seq > ? AND origin <> ?"

Key = tuple[str, str, str]  # (scope, agent, call_hash)
Event = tuple[str, str, str, float]


class LoopLedger:
    """The identical calls seen lately, by (scope, agent, call hash); thread-safe."""

    def __init__(self, path: Path, busy_seconds: float, *, read_only: bool = False) -> None:
        self._db = Database(path, busy_seconds, read_only=read_only)  # its own: a sync never holds the store's
        self._origin = secrets.token_hex(8)
        self._lock = threading.Lock()  # the memory below
        self._sync_lock = threading.Lock()  # one sync at a time
        # Call times, oldest first, of this and other processes; arrays, which the GC need not scan.
        self._seen: dict[Key, array[float]] = {}
        self._pending: list[Event] = []  # this process's calls not in the log yet
        self._windows: dict[str, float] = {}  # the loop window of each scope, for pruning
        self._last_seq = 0
        self._synced = -math.inf  # time.monotonic() of the last good sync
        self._error: StoreUnavailable | None = None
        self._latest = -math.inf  # the newest call time: the clock pruning follows
        self._used = -math.inf  # time.monotonic() of the last call
        self._pruned = -math.inf
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def admit(
        self, agent: str, call_hash: str, limits: Limits, now: float, then: Callable[[], Admission] | None = None
    ) -> Admission:
        """Refuse the call if it is a loop; else run `then` (other limits, which may refuse it) and count it.

        Raises StoreUnavailable while the log cannot be synced.
        """
        assert limits.loop_max is not None
        clock = time.monotonic()
        fresh = self._error is None and clock - self._synced < STALE_SECONDS
        if not fresh:
            self.sync()  # judge on what the other processes did lately, or refuse: the log is unreadable
        scope = limits.scope
        if scope not in self._windows:
            self._follow(scope, limits.loop_window, now)
        key = (scope, agent, call_hash)
        with self._lock:
            seen = self._seen.get(key)
            if seen:
                refused = _refusal(seen, limits, now)
                if refused is not None:
                    return refused
            admission = then() if then is not None else ADMITTED
            if not admission.admitted:
                return admission
            if seen is None:
                self._seen[key] = array("d", (now,))
            else:
                insort(seen, now)
            self._pending.append((scope, agent, call_hash, now))
            if self._windows[scope] < limits.loop_window:
                self._windows[scope] = limits.loop_window
            if now > self._latest:
                self._latest = now
            self._used = clock
        if fresh:
            if not self._wake.is_set():
                self._start()
            return ADMITTED
        try:
            self.sync()  # written before it is admitted: the store has not proved writable lately
        except StoreUnavailable:
            with self._lock:
                self._forget(key, now)
            raise
        self._start()
        return ADMITTED

    def peek(self, agent: str, call_hash: str, limits: Limits, now: float) -> Admission | None:
        """The loop refusal `admit` would give now, counting nothing (Gate.preview): what memory holds of a
        scope this process follows, plus the log's rows it has not read (all of them for another scope)."""
        assert limits.loop_max is not None
        scope = limits.scope
        with self._lock:
            followed = scope in self._windows
            times = list(self._seen.get((scope, agent, call_hash), ())) if followed else []
            after = self._last_seq if followed else 0
        args = (scope, agent, call_hash, now - limits.loop_window, after, self._origin)
        rows = self._db.run(lambda conn: conn.execute(_PEEK, args).fetchall())
        seen = array("d", sorted([*times, *(r[0] for r in rows)]))
        return _refusal(seen, limits, now) if seen else None

    def _follow(self, scope: str, window: float, now: float) -> None:
        """Start keeping a scope's calls: read the other processes' ones the pulls have passed over (once per
        scope, so memory holds only the scopes this process judges). Raises StoreUnavailable."""
        with self._sync_lock:
            if scope in self._windows:
                return
            args = (scope, now - window, self._origin, self._last_seq)
            rows = self._db.run(lambda conn: conn.execute(_BACKFILL, args).fetchall())
            with self._lock:
                for agent, call_hash, ts in rows:
                    insort(self._seen.setdefault((scope, agent, call_hash), array("d")), ts)
                self._windows[scope] = window

    def _forget(self, key: Key, now: float) -> None:
        """Uncount a call that was refused after all (its log write failed)."""
        seen = self._seen.get(key)
        if seen is not None and now in seen:
            seen.remove(now)
        event = (*key, now)
        if event in self._pending:
            self._pending.remove(event)

    # -- the log ------------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Append this process's new calls to the log and read the others'. Raises StoreUnavailable."""
        with self._sync_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            try:
                while batch:
                    part = batch[:_ROWS_PER_INSERT]
                    self._db.run(functools.partial(_append, origin=self._origin, events=part))
                    batch = batch[len(part) :]
                rows = self._db.run(lambda conn: conn.execute(_PULL, (self._last_seq, self._origin)).fetchall())
            except StoreUnavailable as exc:
                with self._lock:
                    self._pending[:0] = batch
                    del self._pending[:-MAX_PENDING]
                    self._error = exc
                raise
            with self._lock:
                for seq, origin, scope, agent, call_hash, ts in rows:
                    self._last_seq = seq
                    if origin != self._origin and scope in self._windows:
                        insort(self._seen.setdefault((scope, agent, call_hash), array("d")), ts)
                self._error = None
                self._synced = time.monotonic()
            if self._synced - self._pruned >= PRUNE_SECONDS:
                self._pruned = self._synced
                self.prune()

    def prune(self) -> None:
        """Forget calls older than their scope's window, in memory and in the log (sync does it every
        PRUNE_SECONDS). Raises StoreUnavailable."""
        with self._lock:
            cutoffs = {scope: self._latest - window for scope, window in self._windows.items()}
            for key in list(self._seen):
                seen = self._seen[key]
                del seen[: bisect_right(seen, cutoffs.get(key[0], -math.inf))]
                if not seen:
                    del self._seen[key]

        def prune(conn: sqlite3.Connection) -> None:
            for scope, cutoff in cutoffs.items():
                conn.execute("DELETE FROM loop_log WHERE scope = ? AND ts < ?", (scope, cutoff))

        self._db.run(prune)

    def _start(self) -> None:
        """Start the sync thread, or wake it from its idle sleep."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="agent-mesh-loop-log", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() - self._used > IDLE_SECONDS and not self._pending:
                self._wake.clear()
                if time.monotonic() - self._used > IDLE_SECONDS:  # no call came in since the check
                    self._wake.wait()
                continue
            self._stop.wait(SYNC_SECONDS)
            with contextlib.suppress(StoreUnavailable):  # kept in _error: calls are refused until a sync works
                self.sync()

    def close(self) -> None:
        """Stop the thread and write what is still pending (best effort: the store may be the problem).

        A call after this syncs again first, as the store reconnects: the file may have changed meanwhile.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._pending:
            with contextlib.suppress(StoreUnavailable):
                self.sync()
        self._synced = -math.inf
        self._db.close()


def _refusal(seen: array[float], limits: Limits, now: float) -> Admission | None:
    """Refused as a loop when the identical call was admitted loop_max times inside the window."""
    assert limits.loop_max is not None
    count = len(seen) - bisect_right(seen, now - limits.loop_window)
    if count < limits.loop_max:
        return None
    edge = seen[-limits.loop_max]
    return Admission(False, "loop", count, max(0.0, edge + limits.loop_window - now))


def _append(conn: sqlite3.Connection, origin: str, events: list[Event]) -> None:
    # One statement: in autocommit mode SQLite takes the write lock and commits inside one call.
    sql = "INSERT INTO loop_log (origin, scope, agent, call_hash, ts) VALUES " + ",".join(["(?,?,?,?,?)"] * len(events))
    conn.execute(sql, [v for event in events for v in (origin, *event)])
