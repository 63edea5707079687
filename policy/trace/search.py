"""Full-text search over the `traces` table (migration 8's `traces_fts`), read through sqlite-utils.

The index covers tool, arguments (redacted, as stored), reason, rule, agent and session id. Since migration 9
nothing indexes a record as it is written (that cost the trace writer a quarter of its CPU): a search first
catches the index up with the table (policy.trace.search_index), so it still sees every committed record.
The text is an SQLite FTS5 query (`github AND delete`, `"rm -rf"`, `tool:github*`, `NEAR(a b)`), or, with
`literal`, plain text matched as phrases. A query SQLite cannot parse is a SearchError that says why, never a
traceback.

A state.db this process can write is caught up in short write transactions (the writers wait for at most one
batch); one it cannot (read-only file or folder, or the write lock held past the busy timeout) is read as it
is, and the records past the index's mark are indexed in a temporary table of the search's own connection and
searched there with the same query: the results are the same, nothing is written.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

from policy.trace.query import Filters
from policy.trace.record import is_call
from policy.trace.search_index import (
    FTS_COLUMNS,
    FTS_TABLE,
    PENDING_TABLE,
    catch_up,
    in_step,
    index_pending,
    read_mark,
)

__all__ = ["FTS_COLUMNS", "FTS_TABLE", "KINDS", "NoIndex", "SearchError", "fts_phrases", "kind_matches", "search"]
KINDS = ("call", "event")


class SearchError(ValueError):
    """The search text is not a query SQLite's full-text search accepts (or names a column it lacks)."""


class NoIndex(LookupError):
    """state.db has no search index: written by an agent-mesh older than schema 8 and not opened since."""


def fts_phrases(text: str) -> str:
    """Plain text as an FTS5 query: every whitespace-separated word a quoted phrase (so `fs.read_file` or
    `rm -rf` match as written, tokenised like the index), all of them required."""
    words = text.split()
    if not words:
        raise SearchError("nothing to search for: the text is empty")
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def kind_matches(kinds: tuple[str, ...], record: dict[str, Any]) -> bool:
    """No kinds: every record; else only calls, only events, or both."""
    if not kinds:
        return True
    return ("call" if is_call(record) else "event") in kinds


def search(
    db: Path,
    text: str,
    filters: Filters,
    *,
    kinds: tuple[str, ...] = (),
    literal: bool = False,
) -> Iterator[dict[str, Any]]:
    """The records whose indexed fields match `text`, best match first (bm25; ties oldest first).

    `filters` narrow as in `traces query` (their exact parts in SQL, globs after); `filters.events` is
    ignored here: which kinds are shown is `kinds` (none given: calls and events alike)."""
    if not text.strip():
        raise SearchError("nothing to search for: the text is empty")
    query = fts_phrases(text) if literal else text
    import sqlite_utils  # 80 ms to import: paid by `traces search` only, not by every `traces` command

    with closing(_connect(db)) as conn:
        database = sqlite_utils.Database(conn)
        table = database.table("traces")
        if table.detect_fts() != FTS_TABLE:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            raise NoIndex(f"{db} has no search index (schema version {version}; the index comes with 8)")
        _check_query(conn, text, query)
        _try_catch_up(conn)
        where, params = _named(filters)
        conn.execute("BEGIN")  # one snapshot: the index, its mark and the rows past the mark agree
        mark = read_mark(conn)
        rows: Iterable[dict[str, Any]] = table.search(
            query,
            columns=["seq", "record"],
            where=where,
            where_args=params,
            order_by=f"[{FTS_TABLE}].rank, [original].rowid",
            include_rank=True,
        )
        if mark is not None and not in_step(conn, mark):
            # Out of step and not rebuilt (state.db read-only here): the whole table in the temporary index
            index_pending(conn, 0)
            rows = _search_pending(conn, query, 0, where, params)
        elif mark is not None and _has_rows_after(conn, mark.last_seq):
            # Not indexed yet (read-only, or written since the catch-up): in a temporary index, merged by rank
            index_pending(conn, mark.last_seq)
            later = _search_pending(conn, query, mark.last_seq, where, params)
            rows = heapq.merge(rows, later, key=lambda row: (row["rank"], row["seq"]))
        matches = Filters(filters.agent, filters.tool, filters.verdicts, filters.since, filters.until,
                          filters.session, events=True)  # fmt: skip
        for row in rows:
            record = _parse(row["record"])
            if record is not None and matches.matches(record) and kind_matches(kinds, record):
                yield record


def _connect(db: Path) -> sqlite3.Connection:
    """Read-write when this process may write the file and its folder (WAL), else read-only; autocommit, so
    the catch-up's transactions and the read snapshot are explicit."""
    if not db.is_file():
        raise NoIndex(f"no state.db at {db}")
    if os.access(db, os.R_OK | os.W_OK) and os.access(db.parent, os.W_OK | os.X_OK):
        return sqlite3.connect(db, timeout=5.0, isolation_level=None)
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0, isolation_level=None)


def _try_catch_up(conn: sqlite3.Connection) -> None:
    """Bring the index up to the table's end; a state.db that cannot be written now (read-only, locked past
    the busy timeout, a full disk) is searched as it is, the rows past the mark in a temporary index."""
    with suppress(sqlite3.OperationalError):
        catch_up(conn)


def _has_rows_after(conn: sqlite3.Connection, seq: int) -> bool:
    return conn.execute("SELECT 1 FROM traces WHERE seq > ? LIMIT 1", [seq]).fetchone() is not None


def _search_pending(
    conn: sqlite3.Connection, query: str, since: int, where: str | None, params: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The rows past the mark that match, from the temporary index, in the order the main search uses."""
    sql = (
        f"WITH original AS (SELECT seq, record FROM traces WHERE seq > :since{f' AND {where}' if where else ''}) "
        f"SELECT original.seq AS seq, original.record AS record, [{PENDING_TABLE}].rank AS rank FROM original "
        f"JOIN temp.[{PENDING_TABLE}] ON original.seq = [{PENDING_TABLE}].rowid "
        f"WHERE [{PENDING_TABLE}] MATCH :query ORDER BY [{PENDING_TABLE}].rank, original.seq"
    )
    for seq, record, rank in conn.execute(sql, {**params, "since": since, "query": query}):
        yield {"seq": seq, "record": record, "rank": rank}


def _named(filters: Filters) -> tuple[str | None, dict[str, Any]]:
    """Filters.where's `?` placeholders as named ones (sqlite-utils' search binds `:query` by name)."""
    where, params = filters.where()
    if where == "1":
        return None, {}
    names = iter(range(len(params)))
    named = re.sub(r"\?", lambda _: f":f{next(names)}", where)
    return named, {f"f{i}": value for i, value in enumerate(params)}


def _check_query(conn: sqlite3.Connection, text: str, query: str) -> None:
    """Run the query alone against the index first: the table was just read, so whatever fails here is the
    query (FTS5 syntax, an unterminated string, an unknown column), whatever SQLite's wording."""
    try:
        conn.execute(f"SELECT rowid FROM [{FTS_TABLE}] WHERE [{FTS_TABLE}] MATCH ? LIMIT 1", [query]).fetchall()
    except sqlite3.OperationalError as exc:
        why = str(exc).removeprefix("fts5: ")
        raise SearchError(
            f"{text!r} is not a full-text query SQLite accepts ({why}); quote words with special characters "
            f"('\"fs.read_file\"'), or pass --literal to search the text as written. "
            f"Columns: {', '.join(FTS_COLUMNS)}"
        ) from None


def _parse(line: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None
