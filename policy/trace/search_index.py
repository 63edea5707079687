"""Keep `traces_fts` caught up with `traces`, off the trace writer's path (migration 9).

The writer only appends rows (seq is AUTOINCREMENT, never reused) and nothing indexes them as they are written:
`traces search` first brings the index up to the table's end from the mark in `traces_fts_state` (`last_seq`,
and `indexed`, how many rows the index covers), in short write transactions of at most BATCH rows so a busy
writer waits for one batch, never for the whole back-log. A row deleted under the index (nothing in
agent-mesh deletes one; someone with the file may) shows as counts that no longer add up, and the index is
rebuilt from the table then. A state.db this process cannot write is left as it is: `pending` says which rows
are not in the index yet, and the search indexes those in a temporary table of its own connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

FTS_TABLE = "traces_fts"
FTS_COLUMNS = ("tool", "args", "reason", "rule", "agent", "session_id")
STATE_TABLE = "traces_fts_state"
PENDING_TABLE = "traces_fts_pending"
BATCH = 5000

_COLUMNS = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
_INDEX = (
    f"INSERT INTO [{FTS_TABLE}] (rowid, {_COLUMNS}) "
    f"SELECT seq, {_COLUMNS} FROM traces WHERE seq > ? AND seq <= ? ORDER BY seq"
)


@dataclass(frozen=True)
class Mark:
    """How far the index has caught up: every row with seq <= last_seq, `indexed` rows in all."""

    last_seq: int
    indexed: int


@dataclass(frozen=True)
class CatchUp:
    """What one catch-up did: rows added to the index, and whether it had to be rebuilt."""

    added: int = 0
    rebuilt: bool = False


def read_mark(conn: sqlite3.Connection) -> Mark | None:
    """The mark; None when the triggers still keep the index (schema 8: no state table) — all is indexed."""
    try:
        row = conn.execute(f"SELECT last_seq, indexed FROM {STATE_TABLE} WHERE id = 1").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    # The table without its row (someone emptied it): nothing is known to be indexed, the catch-up rebuilds.
    return Mark(-1, -1) if row is None else Mark(int(row[0]), int(row[1]))


def in_step(conn: sqlite3.Connection, mark: Mark) -> bool:
    """Do the rows up to the mark still number what was indexed (a delete makes them fewer), and does the index
    hold that many documents (a mark moved past rows never indexed, by hand, would hide them from every search)?"""
    if mark.last_seq < 0:
        return False
    total = int(conn.execute("SELECT count(*) FROM traces").fetchone()[0])
    newer = int(conn.execute("SELECT count(*) FROM traces WHERE seq > ?", [mark.last_seq]).fetchone()[0])
    documents = int(conn.execute(f"SELECT count(*) FROM [{FTS_TABLE}_docsize]").fetchone()[0])
    return total - newer == mark.indexed == documents


def catch_up(conn: sqlite3.Connection, batch: int = BATCH) -> CatchUp:
    """Index every row past the mark (a writable connection in autocommit mode; raises what SQLite raises,
    e.g. `database is locked` after the connection's busy timeout, or `attempt to write a readonly database`)."""
    added, rebuilt, first = 0, False, True
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            mark = read_mark(conn)
            if mark is None:  # schema 8: the triggers index every write
                conn.execute("COMMIT")
                return CatchUp()
            if first and not in_step(conn, mark):
                _rebuild(conn)
                conn.execute("COMMIT")
                return CatchUp(rebuilt=True)
            first = False
            upto, count = conn.execute(
                "SELECT max(seq), count(*) FROM (SELECT seq FROM traces WHERE seq > ? ORDER BY seq LIMIT ?)",
                [mark.last_seq, batch],
            ).fetchone()
            if not count:
                conn.execute("COMMIT")
                return CatchUp(added, rebuilt)
            conn.execute(_INDEX, [mark.last_seq, upto])
            conn.execute(f"UPDATE {STATE_TABLE} SET last_seq = ?, indexed = indexed + ? WHERE id = 1", [upto, count])
            conn.execute("COMMIT")
            added += int(count)
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (a full disk, an interrupt)
                conn.execute("ROLLBACK")
            raise


def _rebuild(conn: sqlite3.Connection) -> None:
    """The index from the table as it is now, and the mark at its end (inside the caller's transaction)."""
    conn.execute(f"INSERT INTO [{FTS_TABLE}] ([{FTS_TABLE}]) VALUES ('rebuild')")
    last, count = conn.execute("SELECT coalesce(max(seq), 0), count(*) FROM traces").fetchone()
    conn.execute(f"INSERT OR REPLACE INTO {STATE_TABLE} (id, last_seq, indexed) VALUES (1, ?, ?)", [last, count])


def pending(conn: sqlite3.Connection) -> int:
    """How many rows the index does not hold yet (0 when the triggers keep it)."""
    mark = read_mark(conn)
    if mark is None:
        return 0
    return int(conn.execute("SELECT count(*) FROM traces WHERE seq > ?", [mark.last_seq]).fetchone()[0])


def index_pending(conn: sqlite3.Connection, since: int) -> None:
    """The rows after `since` in a temporary FTS5 table of this connection (writable even when state.db is
    opened read-only), tokenised as `traces_fts` is, so the same query finds them there."""
    conn.execute(f"DROP TABLE IF EXISTS temp.[{PENDING_TABLE}]")
    conn.execute(f"CREATE VIRTUAL TABLE temp.[{PENDING_TABLE}] USING FTS5 ({_COLUMNS})")
    conn.execute(
        f"INSERT INTO temp.[{PENDING_TABLE}] (rowid, {_COLUMNS}) SELECT seq, {_COLUMNS} FROM traces WHERE seq > ?",
        [since],
    )
