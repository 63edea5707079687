"""Migration 9: the trace writer no longer indexes what it writes; `traces search` catches the index up from its
mark, incrementally, rebuilds it when rows went missing under it, and searches a state.db it cannot write with
the records past the mark indexed on the side, so every search still sees every committed record."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.core.config import TraceSettings
from policy.store.db import DB_NAME, connect
from policy.store.migrations import MIGRATIONS, _statements
from policy.trace import TraceWriter
from policy.trace.query import Filters
from policy.trace.search import search
from policy.trace.search_index import BATCH, CatchUp, Mark, catch_up, pending, read_mark
from tests.policy.store.readonly import read_only
from tests.policy.trace.factories import record
from tests.policy.trace.test_search_index import jsonl_trace, schema_7_with_rows


def write(folder: Path, first: int, count: int, **over: object) -> None:
    """`count` records numbered from `first` through the real writer (JSONL and the traces table)."""
    writer = TraceWriter(folder, TraceSettings())
    for i in range(first, first + count):
        writer.emit(record(i, args={"path": f"/srv/w{i}"}, **over))
    assert writer.close()


def append(conn: sqlite3.Connection, trace_id: str, tool: str) -> None:
    """A row as someone with the file might add it (not the writer: no chain)."""
    record = json.dumps({"trace_id": trace_id, "tool": tool})
    conn.execute("INSERT INTO traces (trace_id, tool, args, record) VALUES (?, ?, '{}', ?)", [trace_id, tool, record])


def found(db: Path, text: str, filters: Filters | None = None) -> list[str]:
    return [str(r["trace_id"]) for r in search(db, text, filters or Filters())]


def mark_of(db: Path) -> Mark | None:
    with closing(sqlite3.connect(db)) as conn:
        return read_mark(conn)


def index_is_sound(db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO traces_fts (traces_fts, rank) VALUES ('integrity-check', 1)")


def test_the_writer_leaves_the_index_alone_and_a_search_after_many_writes_finds_every_record(tmp_path: Path) -> None:
    count = 2 * BATCH + 7  # three catch-up transactions
    write(tmp_path, 0, count)
    db = tmp_path / DB_NAME
    assert mark_of(db) == Mark(0, 0)  # nothing was indexed on the write path
    assert len(found(db, '"fs.write_file"')) == count
    assert found(db, "w7777") == ["t-007777"]
    assert found(db, f"w{count - 1}") == [f"t-{count - 1:06d}"]
    assert mark_of(db) == Mark(count, count)
    index_is_sound(db)


def test_the_catch_up_is_incremental_and_a_second_search_indexes_nothing(tmp_path: Path) -> None:
    write(tmp_path, 0, 30)
    db = tmp_path / DB_NAME
    assert found(db, "w12") == ["t-000012"]
    with closing(sqlite3.connect(db)) as observer:
        version = observer.execute("PRAGMA data_version").fetchone()
        assert found(db, "w13") == ["t-000013"]
        assert observer.execute("PRAGMA data_version").fetchone() == version  # the second search committed nothing
    with closing(connect(db)) as conn:
        assert catch_up(conn) == CatchUp()
    write(tmp_path, 30, 5)
    with closing(connect(db)) as conn:
        assert pending(conn) == 5
        assert catch_up(conn, batch=2) == CatchUp(added=5)  # only the new rows, two at a time
        assert read_mark(conn) == Mark(35, 35)
        assert pending(conn) == 0
    assert found(db, "w33") == ["t-000033"]
    index_is_sound(db)


def test_rows_deleted_under_the_index_make_the_search_rebuild_it(tmp_path: Path) -> None:
    write(tmp_path, 0, 20)
    db = tmp_path / DB_NAME
    assert found(db, "w19") == ["t-000019"]
    with closing(connect(db)) as conn:
        conn.execute("DELETE FROM traces WHERE trace_id IN ('t-000004', 't-000019')")  # one of them the mark's row
        append(conn, "late", "git.push")
        assert catch_up(conn) == CatchUp(rebuilt=True)
        assert read_mark(conn) == Mark(21, 19)
        conn.execute("DELETE FROM traces_fts_state")  # the mark itself lost: rebuilt too
        assert catch_up(conn) == CatchUp(rebuilt=True)
    assert found(db, "w4") == []
    assert found(db, "push") == ["late"]
    assert len(found(db, "srv")) == 18
    index_is_sound(db)


def test_a_read_only_state_db_is_searched_with_the_unindexed_records_and_left_untouched(tmp_path: Path) -> None:
    write(tmp_path, 0, 20)
    db = tmp_path / DB_NAME
    assert found(db, "w3") == ["t-000003"]  # indexed up to 20
    write(tmp_path, 20, 6, agent="claude-ro")
    with read_only(db):
        assert found(db, "w23") == ["t-000023"]
        assert len(found(db, "srv")) == 26  # the indexed records and the six past the mark
        assert found(db, "srv", Filters(agent="claude-ro")) == [f"t-{i:06d}" for i in range(20, 26)]
        assert sorted(found(db, "tool:write_file AND (w2 OR w21)")) == ["t-000002", "t-000021"]
        assert mark_of(db) == Mark(20, 20)  # nothing was written
    assert found(db, "w23") == ["t-000023"]
    assert mark_of(db) == Mark(26, 26)


def test_migration_9_on_a_store_with_the_triggers_and_rows_keeps_the_index_and_marks_its_end(tmp_path: Path) -> None:
    db = schema_7_with_rows(tmp_path, jsonl_trace(tmp_path, 40))
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for statement in _statements(next(sql for number, _t, sql in MIGRATIONS if number == 8)):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 8")
        append(conn, "by-trigger", "git.push")
        assert read_mark(conn) is None  # schema 8: the triggers index every write
    assert found(db, "push") == ["by-trigger"]  # a schema 8 store is searched as the triggers left it
    with closing(connect(db)) as conn:  # the writer's open: migrates to 9
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        assert triggers == []
        assert read_mark(conn) == Mark(41, 41)
        append(conn, "after", "git.pull")
        assert pending(conn) == 1
    assert found(db, "passwd") == ["t-000003"]
    assert found(db, "pull") == ["after"]
    assert mark_of(db) == Mark(42, 42)
    index_is_sound(db)


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.integers(1, 6)),
            st.tuples(st.just("delete"), st.integers(0, 40)),
            st.tuples(st.just("search"), st.integers(0, 40)),
            st.tuples(st.just("catch_up"), st.integers(1, 4)),
        ),
        max_size=12,
    )
)
def test_any_mix_of_writes_deletes_and_catch_ups_searches_exactly_what_the_table_holds(
    steps: list[tuple[str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / DB_NAME
        with closing(connect(db)) as conn:
            written = 0
            for step, n in steps:
                if step == "write":
                    rows = [(f"t-{written + k}", "fs.write_file", json.dumps({"p": f"w{written + k}"}), "{}")
                            for k in range(n)]  # fmt: skip
                    conn.executemany("INSERT INTO traces (trace_id, tool, args, record) VALUES (?, ?, ?, ?)", rows)
                    written += n
                elif step == "delete":
                    conn.execute("DELETE FROM traces WHERE trace_id = ?", [f"t-{n}"])
                elif step == "catch_up":
                    catch_up(conn, batch=n)
                else:
                    present = conn.execute("SELECT count(*) FROM traces WHERE trace_id = ?", [f"t-{n}"]).fetchone()
                    hits = conn.execute(
                        "SELECT count(*) FROM traces t JOIN traces_fts f ON f.rowid = t.seq "
                        "WHERE traces_fts MATCH ?", [f"w{n}"]
                    ).fetchone()  # fmt: skip
                    catch_up(conn)
                    after = conn.execute(
                        "SELECT count(*) FROM traces t JOIN traces_fts f ON f.rowid = t.seq "
                        "WHERE traces_fts MATCH ?", [f"w{n}"]
                    ).fetchone()  # fmt: skip
                    assert after == present
                    assert hits[0] <= present[0]
            catch_up(conn)
            table = {r[0] for r in conn.execute("SELECT seq FROM traces")}
            indexed = {r[0] for r in conn.execute("SELECT rowid FROM traces_fts WHERE traces_fts MATCH 'fs'")}
            assert indexed == table
            conn.execute("INSERT INTO traces_fts (traces_fts, rank) VALUES ('integrity-check', 1)")


def test_a_mark_moved_past_unindexed_records_by_hand_does_not_hide_them(tmp_path: Path) -> None:
    write(tmp_path, 0, 10)
    db = tmp_path / DB_NAME
    assert found(db, "w1") == ["t-000001"]
    write(tmp_path, 10, 5)
    with closing(connect(db)) as conn:  # the counts made to add up, the index holding none of the five
        conn.execute("UPDATE traces_fts_state SET last_seq = 1000, indexed = 15")
    with read_only(db):
        assert found(db, "w12") == ["t-000012"]  # searched from the table itself, nothing written
        assert len(found(db, "srv")) == 15
        assert mark_of(db) == Mark(1000, 15)
    assert found(db, "w12") == ["t-000012"]  # rebuilt
    assert mark_of(db) == Mark(15, 15)
    index_is_sound(db)


def test_a_read_only_state_db_with_rows_deleted_under_the_index_is_searched_from_the_table(tmp_path: Path) -> None:
    write(tmp_path, 0, 10)
    db = tmp_path / DB_NAME
    assert found(db, "w1") == ["t-000001"]
    with closing(connect(db)) as conn:
        conn.execute("DELETE FROM traces WHERE trace_id = 't-000002'")
        append(conn, "late", "git.push")
    with read_only(db):
        assert found(db, "w2") == []
        assert found(db, "push") == ["late"]
        assert len(found(db, "srv")) == 9
