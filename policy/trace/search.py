"""Full-text search over the `traces` table (migration 8's `traces_fts`), read through sqlite-utils.

The index covers tool, arguments (redacted, as stored), reason, rule, agent and session id; it is kept in
step by triggers on every write, so a search sees what the table holds. The text is an SQLite FTS5 query
(`github AND delete`, `"rm -rf"`, `tool:github*`, `NEAR(a b)`), or, with `literal`, plain text matched as
phrases. A query SQLite cannot parse is a SearchError that says why, never a traceback.

Reads open state.db read-only (WAL: never waits for the writers, never blocks them); nothing here writes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from policy.trace.query import Filters
from policy.trace.record import is_call

FTS_TABLE = "traces_fts"
FTS_COLUMNS = ("tool", "args", "reason", "rule", "agent", "session_id")
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
        where, params = _named(filters)
        rows = table.search(
            query,
            columns=["seq", "record"],
            where=where,
            where_args=params,
            order_by=f"[{FTS_TABLE}].rank, [original].rowid",
        )
        matches = Filters(filters.agent, filters.tool, filters.verdicts, filters.since, filters.until,
                          filters.session, events=True)  # fmt: skip
        for row in rows:
            record = _parse(row["record"])
            if record is not None and matches.matches(record) and kind_matches(kinds, record):
                yield record


def _connect(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise NoIndex(f"no state.db at {db}")
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)


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
