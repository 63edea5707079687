"""The mesh board in state.db (migration 7): which processes run which policy (heartbeats), and the
emergency stops every process obeys. A port with a SQLite implementation and an in-memory twin.

Kept apart from the Store port: the board is read by a watcher thread every ~50 ms and written once a
second per process, never on a call's hot path.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from policy.core.records import new_id
from policy.store.db import BUSY_SECONDS, DB_NAME, Busy, Database, tx

ALL = "*"  # the scope of a stop of every agent
STALE_SECONDS = 10.0  # a process whose heartbeat is older than this is shown as gone


@dataclass(frozen=True, slots=True)
class Stop:
    """An emergency stop of one agent's calls (`scope` = the agent's name) or of all (`scope` = "*")."""

    id: str
    scope: str
    reason: str
    by: str
    at: float
    lifted_at: float | None = None
    lifted_by: str | None = None

    @property
    def everyone(self) -> bool:
        return self.scope == ALL


@dataclass(frozen=True, slots=True)
class Process:
    """One running mesh process as it last reported itself."""

    host: str
    pid: int
    kind: str  # serve | proxy | mcpwrap
    server: str | None
    agent: str | None
    started: float
    heartbeat: float
    policy_hash: str
    config: str
    reload_error: str | None = None

    def alive(self, now: float, *, host: str | None = None) -> bool:
        """Heartbeat within STALE_SECONDS and, on this host, the pid still exists."""
        if now - self.heartbeat > STALE_SECONDS:
            return False
        return self.host != (host or this_host()) or pid_exists(self.pid)


def this_host() -> str:
    return socket.gethostname()


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


class Board(Protocol):
    """Processes and stops. Every method raises StoreUnavailable when the backend fails."""

    def version(self) -> int:
        """A number that changes when another connection may have changed the board (cheap to ask)."""
        ...

    def active_stops(self) -> list[Stop]: ...

    def add_stop(self, scope: str, reason: str, by: str, now: float) -> Stop: ...

    def lift_stops(self, scope: str | None, by: str, now: float) -> list[Stop]:
        """Lift the active stops of `scope` (an agent, or "*"), or every active stop when None."""
        ...

    def beat(self, process: Process) -> bool:
        """Record a heartbeat; False (nothing written) when the database is busy: the next beat retries."""
        ...

    def leave(self, host: str, pid: int) -> None: ...

    def processes(self) -> list[Process]: ...

    def close(self) -> None: ...


class MemoryBoard:
    """The board in one process's memory (tests, recipes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[str, Stop] = {}
        self._procs: dict[tuple[str, int], Process] = {}
        self._version = 0

    def version(self) -> int:
        return self._version

    def active_stops(self) -> list[Stop]:
        with self._lock:
            return sorted((s for s in self._stops.values() if s.lifted_at is None), key=lambda s: s.at)

    def add_stop(self, scope: str, reason: str, by: str, now: float) -> Stop:
        stop = Stop(new_id(), scope, reason, by, now)
        with self._lock:
            self._stops[stop.id] = stop
            self._version += 1
        return stop

    def lift_stops(self, scope: str | None, by: str, now: float) -> list[Stop]:
        with self._lock:
            lifted = [
                replace(s, lifted_at=now, lifted_by=by)
                for s in self._stops.values()
                if s.lifted_at is None and (scope is None or s.scope == scope)
            ]
            for s in lifted:
                self._stops[s.id] = s
            self._version += 1
        return lifted

    def beat(self, process: Process) -> bool:
        with self._lock:
            self._procs[(process.host, process.pid)] = process
            self._version += 1
        return True

    def leave(self, host: str, pid: int) -> None:
        with self._lock:
            self._procs.pop((host, pid), None)
            self._version += 1

    def processes(self) -> list[Process]:
        with self._lock:
            return sorted(self._procs.values(), key=lambda p: p.started)

    def close(self) -> None:
        pass


_STOP_COLUMNS = "id, scope, reason, stopped_by, stopped_at, lifted_at, lifted_by"
_PROC_COLUMNS = "host, pid, kind, server, agent, started, heartbeat, policy_hash, config, reload_error"


class SqliteBoard:
    """The board on `<state_dir>/state.db`, through its own connection (the watcher thread's)."""

    def __init__(self, state_dir: str | Path, *, busy_seconds: float = BUSY_SECONDS, read_only: bool = False) -> None:
        self.path = Path(state_dir) / DB_NAME
        self._db = Database(self.path, busy_seconds, read_only=read_only)  # read_only: a preview's view of stops

    def version(self) -> int:
        # PRAGMA data_version changes when another connection commits: no table is read while nothing changes.
        return int(self._db.run(lambda c: c.execute("PRAGMA data_version").fetchone()[0]))

    def active_stops(self) -> list[Stop]:
        sql = f"SELECT {_STOP_COLUMNS} FROM stops WHERE lifted_at IS NULL ORDER BY stopped_at"
        return self._db.run(lambda c: [_stop(r) for r in c.execute(sql).fetchall()])

    def add_stop(self, scope: str, reason: str, by: str, now: float) -> Stop:
        stop = Stop(new_id(), scope, reason, by, now)

        def write(conn: sqlite3.Connection) -> None:
            with tx(conn):
                conn.execute(
                    f"INSERT INTO stops ({_STOP_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                    (stop.id, stop.scope, stop.reason, stop.by, stop.at),
                )

        self._db.run(write)
        return stop

    def lift_stops(self, scope: str | None, by: str, now: float) -> list[Stop]:
        where = "lifted_at IS NULL" + ("" if scope is None else " AND scope = ?")
        args: tuple[str, ...] = () if scope is None else (scope,)

        def write(conn: sqlite3.Connection) -> list[Stop]:
            with tx(conn):
                rows = conn.execute(f"SELECT {_STOP_COLUMNS} FROM stops WHERE {where}", args).fetchall()
                conn.execute(f"UPDATE stops SET lifted_at = ?, lifted_by = ? WHERE {where}", (now, by, *args))
            return [replace(_stop(r), lifted_at=now, lifted_by=by) for r in rows]

        return self._db.run(write)

    def beat(self, process: Process) -> bool:
        p = process

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT OR REPLACE INTO processes ({_PROC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (p.host, p.pid, p.kind, p.server, p.agent, p.started, p.heartbeat, p.policy_hash, p.config,
                 p.reload_error),
            )  # fmt: skip

        try:
            self._db.run(write, wait=False)  # a heartbeat never waits for the write lock: the next one retries
        except Busy:
            return False
        return True

    def leave(self, host: str, pid: int) -> None:
        self._db.run(lambda c: c.execute("DELETE FROM processes WHERE host = ? AND pid = ?", (host, pid)))

    def processes(self) -> list[Process]:
        sql = f"SELECT {_PROC_COLUMNS} FROM processes ORDER BY started"
        return self._db.run(lambda c: [_process(r) for r in c.execute(sql).fetchall()])

    def close(self) -> None:
        self._db.close()


def _stop(row: sqlite3.Row) -> Stop:
    return Stop(
        row["id"], row["scope"], row["reason"], row["stopped_by"], row["stopped_at"], row["lifted_at"], row["lifted_by"]
    )


def _process(row: sqlite3.Row) -> Process:
    return Process(
        host=row["host"],
        pid=int(row["pid"]),
        kind=row["kind"],
        server=row["server"],
        agent=row["agent"],
        started=row["started"],
        heartbeat=row["heartbeat"],
        policy_hash=row["policy_hash"],
        config=row["config"],
        reload_error=row["reload_error"],
    )
