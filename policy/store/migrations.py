"""The schema of state.db as numbered migrations: append new ones, never edit an applied one.

`PRAGMA user_version` records the last applied number; each migration runs in its own transaction.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "approvals, grants, facts, rate events and the traces table",
        """
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
            call_hash TEXT NOT NULL,
            agent TEXT NOT NULL,
            surface TEXT NOT NULL,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            arguments TEXT NOT NULL,
            memory_key TEXT NOT NULL,
            rule TEXT NOT NULL,
            reason TEXT NOT NULL,
            trace_id TEXT,
            session_id TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            resolved_at REAL,
            resolved_by TEXT,
            resolution TEXT,
            used_at REAL,
            used_by TEXT,
            grant_id TEXT
        );
        CREATE INDEX approvals_call ON approvals (call_hash, state);
        CREATE INDEX approvals_state ON approvals (state, created_at);

        CREATE TABLE grants (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            tool TEXT NOT NULL,
            conditions TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            max_uses INTEGER,
            uses INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL DEFAULT '',
            revoked_at REAL,
            revoked_by TEXT
        );
        CREATE INDEX grants_active ON grants (revoked_at, expires_at);

        CREATE TABLE facts (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            tool TEXT NOT NULL,
            memory_key TEXT NOT NULL,
            decision TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
            decided_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            ts REAL NOT NULL,
            approval_id TEXT,
            call_hash TEXT,
            arguments TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX facts_key ON facts (agent, tool, memory_key, ts);
        CREATE INDEX facts_ts ON facts (ts);

        CREATE TABLE rate_events (
            id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL,
            agent TEXT NOT NULL,
            call_hash TEXT NOT NULL,
            ts REAL NOT NULL
        );
        CREATE INDEX rate_events_agent ON rate_events (scope, agent, ts);
        CREATE INDEX rate_events_call ON rate_events (scope, agent, call_hash, ts);

        CREATE TABLE rate_totals (
            scope TEXT NOT NULL,
            agent TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (scope, agent)
        );

        CREATE TABLE traces (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL,
            trace_id TEXT UNIQUE,
            session_id TEXT,
            agent TEXT,
            surface TEXT,
            server TEXT,
            tool TEXT,
            args TEXT,
            call_hash TEXT,
            decision TEXT,
            rule TEXT,
            verdict TEXT,
            decided_by TEXT,
            approval_id TEXT,
            outcome TEXT,
            status INTEGER,
            latency_ms REAL,
            policy_hash TEXT,
            prev_hash TEXT,
            hash TEXT,
            record TEXT
        );
        CREATE INDEX traces_agent ON traces (agent, ts);
        CREATE INDEX traces_tool ON traces (tool, ts);
        CREATE INDEX traces_verdict ON traces (verdict, ts);
        CREATE INDEX traces_session ON traces (session_id);
        """,
    ),
    (
        2,
        "per-second buckets for the per-minute window: counting stays O(60) however busy an agent is",
        """
        CREATE TABLE rate_buckets (
            scope TEXT NOT NULL,
            agent TEXT NOT NULL,
            second INTEGER NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (scope, agent, second)
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        "loop events keyed by the call itself: one B-tree to update per call instead of a table and two indexes",
        """
        DROP TABLE rate_events;
        CREATE TABLE loop_events (
            scope TEXT NOT NULL,
            agent TEXT NOT NULL,
            call_hash TEXT NOT NULL,
            ts REAL NOT NULL,
            PRIMARY KEY (scope, agent, call_hash, ts)
        ) WITHOUT ROWID;
        """,
    ),
    (
        4,
        "loop detection judged in memory, shared through an append-only log each process syncs in batches",
        """
        DROP TABLE loop_events;
        CREATE TABLE loop_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            origin TEXT NOT NULL,
            scope TEXT NOT NULL,
            agent TEXT NOT NULL,
            call_hash TEXT NOT NULL,
            ts REAL NOT NULL
        );
        """,
    ),
    (
        5,
        "approvals remember the HTTP request line they were asked for, so approvers see method and URL",
        """
        ALTER TABLE approvals ADD COLUMN http TEXT;
        """,
    ),
    (
        6,
        "tool pins live in state.db (every adapter's Gate reads them); trace records say whether they are a call",
        """
        CREATE TABLE pins (
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            pinned TEXT,
            seen TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('same', 'new', 'changed')),
            first_seen REAL NOT NULL,
            changed_at REAL NOT NULL,
            accepted_at REAL,
            PRIMARY KEY (server, tool)
        ) WITHOUT ROWID;
        ALTER TABLE traces ADD COLUMN kind TEXT;
        """,
    ),
    (
        7,
        "the mesh board: every process reports its policy hash (heartbeats), and emergency stops survive restarts",
        """
        CREATE TABLE processes (
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            kind TEXT NOT NULL,
            server TEXT,
            agent TEXT,
            started REAL NOT NULL,
            heartbeat REAL NOT NULL,
            policy_hash TEXT NOT NULL,
            config TEXT NOT NULL,
            reload_error TEXT,
            PRIMARY KEY (host, pid)
        );
        CREATE TABLE stops (
            id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            reason TEXT NOT NULL,
            stopped_by TEXT NOT NULL,
            stopped_at REAL NOT NULL,
            lifted_at REAL,
            lifted_by TEXT
        );
        CREATE INDEX stops_active ON stops (lifted_at, scope);
        """,
    ),
    (
        8,
        "full-text search over the traces (sqlite-utils' layout: traces_fts, triggers traces_ai/_ad/_au), back-filled",
        # `reason` lives in the sealed record only: a virtual generated column exposes it (nothing stored, the
        # writer unchanged); NULL for a record SQLite's JSON cannot read (Python writes NaN and Infinity, which
        # SQLite 3.40 calls malformed): json_extract would raise, and fail the trace write or this migration.
        # The FTS table is external-content (no second copy of the arguments); the triggers keep it in step
        # with every insert, delete and update; the 'rebuild' back-fills the rows already there.
        # Laid out as sqlite-utils' enable_fts(create_triggers=True) lays it out, so `sqlite-utils search` and
        # Datasette find it; written as SQL because enable_fts commits mid-way and a migration is one transaction.
        """
        ALTER TABLE traces ADD COLUMN reason TEXT GENERATED ALWAYS AS
            (CASE WHEN json_valid(record) THEN json_extract(record, '$.reason') END) VIRTUAL;
        CREATE VIRTUAL TABLE [traces_fts] USING FTS5 (
            [tool], [args], [reason], [rule], [agent], [session_id],
            content=[traces], content_rowid=[seq]
        );
        CREATE TRIGGER [traces_ai] AFTER INSERT ON [traces] BEGIN
          INSERT INTO [traces_fts] (rowid, [tool], [args], [reason], [rule], [agent], [session_id])
          VALUES (new.seq, new.[tool], new.[args], new.[reason], new.[rule], new.[agent], new.[session_id]);
        END;
        CREATE TRIGGER [traces_ad] AFTER DELETE ON [traces] BEGIN
          INSERT INTO [traces_fts] ([traces_fts], rowid, [tool], [args], [reason], [rule], [agent], [session_id])
          VALUES ('delete', old.seq, old.[tool], old.[args], old.[reason], old.[rule], old.[agent], old.[session_id]);
        END;
        CREATE TRIGGER [traces_au] AFTER UPDATE ON [traces] BEGIN
          INSERT INTO [traces_fts] ([traces_fts], rowid, [tool], [args], [reason], [rule], [agent], [session_id])
          VALUES ('delete', old.seq, old.[tool], old.[args], old.[reason], old.[rule], old.[agent], old.[session_id]);
          INSERT INTO [traces_fts] (rowid, [tool], [args], [reason], [rule], [agent], [session_id])
          VALUES (new.seq, new.[tool], new.[args], new.[reason], new.[rule], new.[agent], new.[session_id]);
        END;
        INSERT INTO [traces_fts] ([traces_fts]) VALUES ('rebuild');
        """,
    ),
    (
        9,
        "the search index leaves the trace writer's path: no triggers, traces search catches it up from a mark",
        # The insert trigger cost the writer ~25 % CPU per record. `traces` rows are only ever appended (seq is
        # AUTOINCREMENT, never reused), so the index is caught up by policy.trace.search from `last_seq` on;
        # `indexed` is how many rows it covers, so a deleted row shows as a count that no longer adds up (and the
        # index is rebuilt). Migration 8's triggers kept the index in step until now: the mark is the table's end.
        """
        DROP TRIGGER IF EXISTS [traces_ai];
        DROP TRIGGER IF EXISTS [traces_ad];
        DROP TRIGGER IF EXISTS [traces_au];
        CREATE TABLE traces_fts_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_seq INTEGER NOT NULL,
            indexed INTEGER NOT NULL
        );
        INSERT INTO traces_fts_state (id, last_seq, indexed)
            SELECT 1, coalesce(max(seq), 0), count(*) FROM traces;
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than the database's user_version; returns the version reached.

    Concurrent openers are safe: BEGIN IMMEDIATE serialises them and each re-reads the version inside.
    A database newer than this code is refused rather than guessed at.
    """
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > LATEST:
        raise sqlite3.DatabaseError(
            f"state.db has schema version {current}, newer than this agent-mesh ({LATEST}): upgrade agent-mesh"
        )
    for number, _title, sql in MIGRATIONS:
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if number > current:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = max(current, number)
    return current


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons inside literals); a trigger's body
    (BEGIN ... END) has semicolons of its own, so pieces are joined until SQLite calls the statement complete."""
    statements: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().rstrip(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"migration ends inside a statement: {pending.strip()[:60]!r}")
    return statements
