"""`verify` walks every file and the table and names the first record that does not hold."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from policy.core.config import TraceSettings
from policy.trace import TraceWriter, seal, trace_files
from policy.trace.verify import verify_state
from tests.policy.trace.factories import record


@pytest.fixture
def state(tmp_path: Path) -> Path:
    writer = TraceWriter(tmp_path, TraceSettings(max_bytes=8192), max_batch=16)
    for i in range(60):
        writer.emit(record(i))
    writer.close()
    return tmp_path


def edit_line(path: Path, number: int, new: str | None) -> None:
    text = path.read_text().splitlines()
    if new is None:
        del text[number - 1]
    else:
        text[number - 1] = new
    path.write_text("".join(line + "\n" for line in text))


def db(state: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(state / "state.db")
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def test_an_untouched_trace_verifies(state: Path) -> None:
    report = verify_state(state)
    assert report.ok
    assert report.problems == []
    assert report.jsonl is not None
    assert report.table is not None
    assert report.jsonl.records == report.table.records == 60
    assert report.jsonl.tip == report.table.tip


def test_an_edited_line_is_named_with_its_file_and_line(state: Path) -> None:
    second = trace_files(state)[1]
    line = second.read_text().splitlines()[2]
    edit_line(second, 3, line.replace('"verdict":"allow"', '"verdict":"deny"'))
    report = verify_state(state)
    assert not report.ok
    assert report.jsonl is not None
    assert report.jsonl.broken is not None
    broken = report.jsonl.broken
    assert broken.where == "traces.2.jsonl:3"
    assert "hash does not match" in broken.problem
    assert broken.found == json.loads(line)["hash"]
    assert broken.expected != broken.found
    assert report.table is not None
    assert report.table.broken is None


def test_an_edited_line_with_a_recomputed_hash_breaks_the_next_link(state: Path) -> None:
    current = trace_files(state)[-1]
    original = json.loads(current.read_text().splitlines()[0])
    forged = {k: v for k, v in original.items() if k not in ("hash", "prev_hash")} | {"verdict": "deny"}
    _, line = seal(forged, original["prev_hash"])
    edit_line(current, 1, line)
    broken = verify_state(state).jsonl
    assert broken is not None
    assert broken.broken is not None
    assert broken.broken.where == "traces.jsonl:2"
    assert "prev_hash does not link" in broken.broken.problem


def test_a_deleted_line_is_found_at_the_line_after_it(state: Path) -> None:
    edit_line(trace_files(state)[0], 4, None)
    report = verify_state(state)
    assert report.jsonl is not None
    assert report.jsonl.broken is not None
    assert report.jsonl.broken.where == "traces.1.jsonl:4"


def test_a_line_that_is_not_json_is_named(state: Path) -> None:
    edit_line(trace_files(state)[0], 2, "{oops")
    broken = verify_state(state).jsonl
    assert broken is not None
    assert broken.broken is not None
    assert broken.broken.where == "traces.1.jsonl:2"
    assert "not a trace record" in broken.broken.problem


def test_a_removed_oldest_file_is_reported_at_the_new_first_record(state: Path) -> None:
    trace_files(state)[0].unlink()
    broken = verify_state(state).jsonl
    assert broken is not None
    assert broken.broken is not None
    assert broken.broken.where == "traces.2.jsonl:1"
    assert "were older files removed?" in broken.broken.problem


def test_an_edited_table_column_is_named_by_its_seq(state: Path) -> None:
    db(state, "UPDATE traces SET verdict = 'deny' WHERE seq = 7")
    report = verify_state(state)
    assert report.table is not None
    assert report.table.broken is not None
    assert report.table.broken.where == "state.db traces seq 7"
    assert "column verdict differs" in report.table.broken.problem
    assert report.jsonl is not None
    assert report.jsonl.broken is None


def test_a_table_column_changed_to_another_type_is_named_too(state: Path) -> None:
    db(state, "UPDATE traces SET ts = 'yesterday' WHERE seq = 3")
    report = verify_state(state)
    assert report.table is not None
    assert report.table.broken is not None
    assert "column ts differs" in report.table.broken.problem


def test_an_edited_table_record_is_named_by_its_seq(state: Path) -> None:
    db(state, "UPDATE traces SET record = replace(record, '\"allow\"', '\"deny\"') WHERE seq = 9")
    report = verify_state(state)
    assert report.table is not None
    assert report.table.broken is not None
    assert report.table.broken.where == "state.db traces seq 9"


def test_deleted_table_rows_show_as_a_broken_link(state: Path) -> None:
    db(state, "DELETE FROM traces WHERE seq = 12")
    report = verify_state(state)
    assert report.table is not None
    assert report.table.broken is not None
    assert report.table.broken.where == "state.db traces seq 13"


def test_a_cut_off_tail_shows_as_files_and_table_disagreeing(state: Path) -> None:
    current = trace_files(state)[-1]
    edit_line(current, len(current.read_text().splitlines()), None)
    report = verify_state(state)
    assert not report.ok
    assert report.mismatch is not None
    assert "disagree" in report.mismatch


def test_a_line_cut_by_a_crash_is_removed_by_the_next_writer_and_the_chain_continues(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = trace_files(state)[-1]
    db(state, "DELETE FROM traces")  # keep the table out of it: this is about the file
    with current.open("a") as f:
        f.write('{"agent":"claude","args":{"pa')  # a writer killed mid-line
    writer = TraceWriter(state, TraceSettings(sqlite=False, max_bytes=8192))
    writer.emit(record(100))
    writer.close()
    assert "removed an incomplete last line" in capsys.readouterr().err
    report = verify_state(state)
    assert report.jsonl is not None
    assert report.jsonl.broken is None
    assert report.jsonl.records == 61


def test_an_empty_state_dir_has_nothing_to_verify(tmp_path: Path) -> None:
    report = verify_state(tmp_path / "missing")
    assert report.ok
    assert report.jsonl is None
    assert report.table is None


def test_a_table_of_the_schema_before_record_kinds_still_verifies(state: Path) -> None:
    db(state, "ALTER TABLE traces DROP COLUMN kind")  # as an older agent-mesh left it, never migrated since
    report = verify_state(state)
    assert report.ok, report.problems
    assert report.table is not None
    assert report.table.records == 60
