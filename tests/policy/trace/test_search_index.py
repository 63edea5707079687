"""Migration 8: the full-text index over the traces table is back-filled for the rows already there, leaves
the hash chain alone, and is the layout sqlite-utils itself reads (its Python API and its real CLI, run while
another connection holds the write lock, as a running serve does). Since migration 9 the search keeps it in
step (test_search_catch_up.py), not triggers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import sqlite_utils

from policy.core.config import TraceSettings
from policy.store.db import DB_NAME, connect
from policy.store.migrations import LATEST, MIGRATIONS, _statements, migrate
from policy.trace import TraceWriter, trace_files
from policy.trace.mend import _INSERT
from policy.trace.query import Filters
from policy.trace.record import prepare
from policy.trace.search import FTS_TABLE, search
from policy.trace.verify import verify_state
from tests.policy.trace.factories import record

SQLITE_UTILS = Path(sys.executable).with_name("sqlite-utils")


def jsonl_trace(folder: Path, count: int) -> list[str]:
    """`count` sealed records written by the real writer (JSONL only), as lines."""
    writer = TraceWriter(folder, TraceSettings(sqlite=False))
    for i in range(count):
        extra = {"args": {"path": "/etc/passwd"}, "reason": "nobody reads the password file"} if i == 3 else {}
        writer.emit(record(i, **extra))
    assert writer.close()
    return [line for path in trace_files(folder) for line in path.read_text().splitlines() if line]


def schema_7_with_rows(folder: Path, lines: list[str]) -> Path:
    """A state.db as agent-mesh left it before migration 8, its traces table holding `lines` (rows built as the
    writer builds them)."""
    db = folder / DB_NAME
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for number, _title, sql in MIGRATIONS:
            if number <= 7:
                for statement in _statements(sql):
                    conn.execute(statement)
        conn.execute("PRAGMA user_version = 7")
        rows = []
        for line in lines:
            sealed = json.loads(line)
            rows.append((*prepare(sealed, row=True).row, sealed["prev_hash"], sealed["hash"], line))
        conn.executemany(_INSERT, rows)
    return db


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    db = schema_7_with_rows(tmp_path, jsonl_trace(tmp_path, 40))
    with closing(connect(db)):  # the writer's open: migrates
        pass
    return db


def test_migration_8_back_fills_the_index_for_the_rows_already_there(migrated: Path) -> None:
    with closing(sqlite3.connect(migrated)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST >= 8
        assert conn.execute(f"SELECT count(*) FROM {FTS_TABLE}").fetchone()[0] == 40
        conn.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")
    assert [r["trace_id"] for r in search(migrated, "passwd", Filters())] == ["t-000003"]
    assert [r["trace_id"] for r in search(migrated, "password", Filters())] == ["t-000003"]  # by its reason
    assert len(list(search(migrated, '"fs.write_file"', Filters()))) == 40


def test_the_index_follows_inserts_and_deletes_at_the_next_search(migrated: Path) -> None:
    with closing(connect(migrated)) as conn:
        conn.execute("DELETE FROM traces WHERE trace_id = 't-000003'")
        conn.execute("INSERT INTO traces (trace_id, tool, args, record) VALUES ('new', 'git.push', '{}', '{}')")
    assert list(search(migrated, "passwd", Filters())) == []
    assert len(list(search(migrated, "push", Filters()))) == 1
    with closing(connect(migrated)) as conn:
        conn.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")

        def hits(query: str) -> list[str]:
            sql = f"SELECT trace_id FROM traces WHERE seq IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?)"
            return [row[0] for row in conn.execute(sql, [query])]

        assert hits("passwd") == []
        assert hits('"/tmp/4.txt"') == ["t-000004"]
        assert hits("push") == ["new"]


def test_the_generated_reason_column_and_the_index_leave_the_chain_verifiable(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    for i in range(30):
        writer.emit(record(i))
    assert writer.close()
    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.table is not None
    assert report.table.records == 30
    with closing(sqlite3.connect(tmp_path / DB_NAME)) as conn:
        reasons = {r[0] for r in conn.execute("SELECT reason FROM traces")}
    assert reasons == {"dev/writes allows fs.write_file"}


def test_sqlite_utils_finds_the_index_and_searches_it(migrated: Path) -> None:
    database = sqlite_utils.Database(migrated)
    try:
        assert database.table("traces").detect_fts() == FTS_TABLE
        assert [row["trace_id"] for row in database.table("traces").search("passwd", columns=["trace_id"])] == [
            "t-000003"
        ]
    finally:
        database.close()


def test_the_sqlite_utils_cli_queries_state_db_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    for i in range(12):
        writer.emit(record(i) if i != 5 else record(i, args={"path": "/etc/shadow"}))
    assert writer.flush(timeout=30)
    db = tmp_path / DB_NAME
    assert [r["trace_id"] for r in search(db, "shadow", Filters())] == ["t-000005"]  # and catches the index up
    holder = connect(db)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a busy serve holds it between its batches
        holder.execute("INSERT INTO traces (trace_id, record) VALUES ('uncommitted', '{}')")

        def cli(*args: str) -> str:
            done = subprocess.run([str(SQLITE_UTILS), *args], capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr
            return done.stdout

        counted = json.loads(cli("query", str(db), "SELECT count(*) AS n FROM traces WHERE kind = 'call'"))
        assert counted == [{"n": 12}]  # the uncommitted row is not seen, and nothing waited for it
        found = json.loads(cli("search", str(db), "traces", "shadow", "-c", "trace_id", "--json-cols"))
        assert found == [{"trace_id": "t-000005"}]
        assert "traces_fts" in cli("tables", str(db), "--fts5")
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        writer.close()


def test_a_newer_store_with_the_index_migrates_idempotently(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    for _ in range(2):
        with closing(connect(db)) as conn:
            assert migrate(conn) == LATEST
    with closing(sqlite3.connect(db)) as conn:
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        marks = conn.execute("SELECT id, last_seq, indexed FROM traces_fts_state").fetchall()
    assert not {"traces_ai", "traces_ad", "traces_au"} & triggers  # migration 9 took them off the write path
    assert marks == [(1, 0, 0)]


def test_a_record_sqlite_json_cannot_read_is_still_written_indexed_and_migrated(tmp_path: Path) -> None:
    """Python writes NaN and Infinity, which SQLite's JSON calls malformed: the record's `reason` is then NULL,
    and neither the write nor migration 8's back-fill fails on it."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    hostile = [record(1, args={"n": float("inf"), "m": float("nan"), "path": "/etc/hosts"})]
    jsonl_trace(old, 2)
    writer = TraceWriter(old, TraceSettings(sqlite=False))
    writer.emit(hostile[0] | {"trace_id": "t-hostile-old"})
    assert writer.close()
    lines = [line for path in trace_files(old) for line in path.read_text().splitlines() if line]
    assert "Infinity" in lines[-1]
    db = schema_7_with_rows(old, lines)
    with closing(connect(db)):
        pass
    assert [r["trace_id"] for r in search(db, "hosts", Filters())] == ["t-hostile-old"]
    writer = TraceWriter(new, TraceSettings())
    writer.emit(hostile[0] | {"trace_id": "t-hostile-new"})
    assert writer.close()
    assert [r["trace_id"] for r in search(new / DB_NAME, "hosts", Filters())] == ["t-hostile-new"]
    with closing(sqlite3.connect(new / DB_NAME)) as conn:
        assert conn.execute("SELECT reason FROM traces").fetchall() == [(None,)]
