"""The SQLite connection behind SqliteStore: WAL, migrations, a lazy (re)connect, a fine-grained retry when
another process holds the write lock, and every failure turned into StoreUnavailable with advice."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from policy.core.errors import StoreUnavailable
from policy.store.migrations import LATEST, migrate
from policy.store.statedir import create_private_file, make_private_dir, require_private

DB_NAME = "state.db"
BUSY_SECONDS = 5.0
_FIRST_PAUSE = 0.00005
_MAX_PAUSE = 0.002


def connect(
    path: str | Path, *, busy_seconds: float = BUSY_SECONDS, cached_statements: int = 128
) -> sqlite3.Connection:
    """Open state.db in WAL mode with a busy timeout and the schema migrated; raw sqlite3 errors escape.

    Autocommit mode (isolation_level=None): transactions are explicit, so none is ever left open. A new file is
    created 0600 first: SQLite gives its -wal and -shm files the database file's mode, whatever the umask.
    """
    if str(path) != ":memory:":
        create_private_file(path)
    conn = sqlite3.connect(
        str(path),
        timeout=busy_seconds,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=cached_statements,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_seconds * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL mode (journal_mode is {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


def connect_read_only(path: str | Path, *, busy_seconds: float = BUSY_SECONDS) -> sqlite3.Connection:
    """Open an existing state.db for reading only: nothing is created, switched or migrated (previews and
    read-only commands must leave no state behind). A missing file or a newer schema is an error."""
    if not Path(path).is_file():
        raise sqlite3.OperationalError(f"no state.db at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_seconds, check_same_thread=False)
    try:
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current > LATEST:
            raise sqlite3.DatabaseError(
                f"state.db has schema version {current}, newer than this agent-mesh ({LATEST}): upgrade agent-mesh"
            )
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


@contextmanager
def tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front, so its reads and writes are one atomic step."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Busy(Exception):
    """`Database.run(..., wait=False)` found the write lock (or this connection) taken: try again later."""


class Database:
    """One lazily opened connection to state.db, used under a lock; `run` retries while the file is busy."""

    def __init__(self, path: Path, busy_seconds: float, *, read_only: bool = False) -> None:
        self.path = path
        self.busy_seconds = busy_seconds
        self.read_only = read_only
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None and self.read_only:
            require_private(self.path.parent)  # what others can edit is not the mesh's state to report
            self._conn = connect_read_only(self.path, busy_seconds=self.busy_seconds)
        if self._conn is None:
            require_private(self.path.parent)  # raises StateDirExposed: no call passes on a store others can edit
            make_private_dir(self.path.parent)
            conn = connect(self.path, busy_seconds=self.busy_seconds)
            conn.execute("PRAGMA busy_timeout = 0")  # contention is retried in `run`, with finer sleeps
            self._conn = conn
        return self._conn

    def run[T](self, fn: Callable[[sqlite3.Connection], T], *, wait: bool = True) -> T:
        """`fn(connection)`, retried while another connection holds the write lock; with `wait=False`, raise
        Busy instead of waiting, so an event loop can await something else meanwhile."""
        if not self._lock.acquire(blocking=wait):
            raise Busy
        try:
            deadline: float | None = None
            pause = _FIRST_PAUSE
            while True:
                try:
                    return fn(self._connection())
                except (sqlite3.Error, OSError) as exc:
                    if _busy(exc):
                        if not wait:
                            raise Busy from exc
                        # Our own short backoff: SQLite's busy handler sleeps whole milliseconds at first.
                        now = time.monotonic()
                        deadline = now + self.busy_seconds if deadline is None else deadline
                        if now < deadline:
                            time.sleep(pause)
                            pause = min(pause * 2, _MAX_PAUSE)
                            continue
                    self._drop()
                    raise StoreUnavailable(f"state store {self.path}: {_explain(exc)}") from exc
        finally:
            self._lock.release()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):  # already broken: the next call reconnects
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()


def _busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _explain(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if "readonly" in low or "read-only" in low or isinstance(exc, PermissionError):
        return f"{text} (the file or its folder is read-only: fix the permissions)"
    if "not a database" in low or "malformed" in low:
        return f"{text} (the file is corrupt: move it aside to start with fresh state)"
    if "locked" in low or "busy" in low:
        return f"{text} (another process held the database too long)"
    return text
