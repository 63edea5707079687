"""TraceWriter: batches off the caller's thread into traces.jsonl and the traces table, chained and rotated."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from policy.core.config import TraceSettings
from policy.trace import GENESIS, MemoryTraceSink, TraceSink, TraceWriter, trace_files
from policy.trace.verify import verify_state
from tests.policy.trace.factories import record


def table(state: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(state / "state.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM traces ORDER BY seq").fetchall()
    finally:
        conn.close()


def lines(state: Path) -> list[dict[str, object]]:
    return [json.loads(line) for path in trace_files(state) for line in path.read_text().splitlines()]


def test_both_sinks_satisfy_the_protocol(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    try:
        assert isinstance(writer, TraceSink)
        assert isinstance(MemoryTraceSink(), TraceSink)
    finally:
        writer.close()


def test_records_reach_the_jsonl_file_and_the_table_chained_in_order(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    for i in range(50):
        writer.emit(record(i))
    assert writer.close()
    written = lines(tmp_path)
    rows = table(tmp_path)
    assert [r["trace_id"] for r in written] == [f"t-{i:06d}" for i in range(50)]
    assert [r["trace_id"] for r in rows] == [f"t-{i:06d}" for i in range(50)]
    assert written[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(written))
    assert [r["hash"] for r in rows] == [r["hash"] for r in written]
    row = rows[7]
    assert json.loads(row["args"]) == {"path": "/tmp/7.txt", "content": "x" * 40}
    assert json.loads(row["record"]) == written[7]
    assert (row["agent"], row["tool"], row["verdict"], row["latency_ms"]) == ("claude", "fs.write_file", "allow", 1.25)
    assert writer.stats().written == 50


def test_flush_makes_everything_emitted_so_far_durable(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    try:
        for i in range(10):
            writer.emit(record(i))
        assert writer.flush(timeout=10)
        assert len(table(tmp_path)) == 10
        assert writer.stats().queued == 0
    finally:
        writer.close()


def test_a_second_writer_continues_the_chain_of_the_first(tmp_path: Path) -> None:
    for start in (0, 10):
        writer = TraceWriter(tmp_path, TraceSettings())
        for i in range(start, start + 10):
            writer.emit(record(i))
        writer.close()
    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.jsonl is not None
    assert report.jsonl.records == 20


def test_rotation_keeps_files_under_max_bytes_and_the_chain_verifiable(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(max_bytes=8192), max_batch=64)
    for i in range(300):
        writer.emit(record(i))
    assert writer.close()
    files = trace_files(tmp_path)
    assert [p.name for p in files[:3]] == ["traces.1.jsonl", "traces.2.jsonl", "traces.3.jsonl"]
    assert files[-1].name == "traces.jsonl"
    assert all(p.stat().st_size <= 8192 for p in files)
    first_of_second = json.loads(files[1].read_text().splitlines()[0])
    last_of_first = json.loads(files[0].read_text().splitlines()[-1])
    assert first_of_second["prev_hash"] == last_of_first["hash"]
    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.jsonl is not None
    assert report.jsonl.records == 300


def test_only_the_table_is_written_when_jsonl_is_off(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(jsonl=False))
    for i in range(5):
        writer.emit(record(i))
    writer.close()
    assert trace_files(tmp_path) == []
    rows = table(tmp_path)
    assert rows[0]["prev_hash"] == GENESIS
    assert rows[4]["prev_hash"] == rows[3]["hash"]
    assert verify_state(tmp_path).ok


def test_only_the_file_is_written_when_sqlite_is_off(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(sqlite=False))
    for i in range(5):
        writer.emit(record(i))
    writer.close()
    assert not (tmp_path / "state.db").exists()
    assert len(lines(tmp_path)) == 5


def test_a_repeated_trace_id_is_left_out_and_the_rest_of_the_batch_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    writer.emit(record(1))
    writer.flush()
    for i in (2, 1, 3):
        writer.emit(record(i))
    writer.close()
    assert [r["trace_id"] for r in table(tmp_path)] == ["t-000001", "t-000002", "t-000003"]
    assert writer.stats().dropped == 1
    assert verify_state(tmp_path).ok
    assert "already written" in capsys.readouterr().err


def test_a_record_whose_keys_cannot_be_sorted_is_kept_with_its_keys_as_text(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    writer.emit(record(1))
    writer.emit(record(2, args={1: "x", "a": "y"}))  # mixed key types cannot be sorted
    writer.emit(record(3))
    writer.close()
    assert [r["trace_id"] for r in lines(tmp_path)] == ["t-000001", "t-000002", "t-000003"]
    assert lines(tmp_path)[1]["args"] == {"1": "x", "a": "y"}
    assert writer.stats().dropped == 0
    assert verify_state(tmp_path).ok


def test_a_record_that_cannot_be_serialised_at_all_leaves_a_placeholder_and_the_batch_is_kept(tmp_path: Path) -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop  # a cycle: no JSON for it
    writer = TraceWriter(tmp_path, TraceSettings())
    writer.emit(record(1))
    writer.emit(record(2, args=loop))
    writer.emit(record(3))
    writer.close()
    written = lines(tmp_path)
    assert [r["trace_id"] for r in written] == ["t-000001", "t-000002", "t-000003"]
    assert "args" not in written[1]
    assert "could not be serialised" in written[1]["error"]
    assert [r["trace_id"] for r in table(tmp_path)] == ["t-000001", "t-000002", "t-000003"]
    assert verify_state(tmp_path).ok


def test_with_both_outputs_off_nothing_is_written_and_nothing_counts_as_dropped(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(jsonl=False, sqlite=False))
    writer.emit(record(1))
    writer.close()
    assert list(tmp_path.iterdir()) == []
    assert (writer.stats().written, writer.stats().dropped) == (1, 0)


def test_a_full_disk_is_reported_and_counted_never_raised_and_leaves_the_table_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "traces.jsonl").symlink_to("/dev/full")  # every write fails with ENOSPC
    writer = TraceWriter(tmp_path, TraceSettings())
    for i in range(3):
        writer.emit(record(i))
    assert writer.flush(timeout=10)
    stats = writer.stats()
    assert (stats.written, stats.dropped, stats.errors) == (0, 3, 3)
    assert table(tmp_path) == []  # the rows inserted before the file write were rolled back
    writer.close()
    err = capsys.readouterr().err
    assert "cannot write 3 trace record(s): OSError: [Errno 28]" in err
    assert "dropped 3" in err


def test_recording_resumes_once_the_disk_is_back(tmp_path: Path) -> None:
    (tmp_path / "traces.jsonl").mkdir()
    writer = TraceWriter(tmp_path, TraceSettings())
    writer.emit(record(1))
    writer.flush(timeout=10)
    (tmp_path / "traces.jsonl").rmdir()
    writer.emit(record(2))
    writer.close()
    assert [r["trace_id"] for r in lines(tmp_path)] == ["t-000002"]
    assert verify_state(tmp_path).ok


def test_emit_returns_at_once_while_the_chain_lock_is_held_elsewhere(tmp_path: Path) -> None:
    from policy.trace.append import chain_lock

    writer = TraceWriter(tmp_path, TraceSettings())
    with chain_lock(tmp_path):
        done = threading.Event()

        def caller() -> None:
            for i in range(100):
                writer.emit(record(i))
            done.set()

        threading.Thread(target=caller).start()
        assert done.wait(timeout=10)
        assert len(lines(tmp_path)) == 0
    assert writer.close()
    assert len(lines(tmp_path)) == 100


def test_records_emitted_after_close_are_dropped_and_counted(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings())
    writer.close()
    writer.emit(record(1))
    assert writer.stats().dropped == 1
    assert writer.close()


def test_a_full_queue_drops_instead_of_blocking(tmp_path: Path) -> None:
    from policy.trace.append import chain_lock

    writer = TraceWriter(tmp_path, TraceSettings(), max_queue=5, max_batch=1)
    with chain_lock(tmp_path):
        for i in range(50):
            writer.emit(record(i))
        stats = writer.stats()
    writer.close()
    assert stats.dropped >= 44
    assert writer.stats().written + writer.stats().dropped == 50


def test_the_memory_sink_chains_what_it_keeps() -> None:
    sink = MemoryTraceSink()
    for i in range(3):
        sink.emit(record(i))
    assert [r["trace_id"] for r in sink.records] == ["t-000000", "t-000001", "t-000002"]
    assert sink.records[1]["prev_hash"] == sink.records[0]["hash"]
    assert sink.stats().written == 3


def test_a_handed_over_call_is_recorded_by_the_writer_with_its_late_outcome(tmp_path: Path) -> None:
    from policy import Outcome
    from tests.policy.trace.factories import REDACT, call, verdict

    writer = TraceWriter(tmp_path, TraceSettings())
    c = call(arguments={"path": "/tmp/a", "token": "s3cret"})
    writer.emit_call(
        c,
        verdict(trace_id="t-late"),
        lambda: Outcome(True, status=200, is_error=True, latency_ms=2.0),
        policy_hash="ph",
        redact_keys=REDACT,
        ts=1_700_000_000.0,
    )
    assert writer.close()
    [row] = table(tmp_path)
    assert (row["trace_id"], row["outcome"], row["status"], row["latency_ms"]) == ("t-late", "upstream_error", 200, 2.0)
    assert json.loads(row["args"]) == {"path": "/tmp/a", "token": "[REDACTED]"}
    assert json.loads(row["record"])["call_hash"] == c.call_hash
    assert verify_state(tmp_path).ok


def test_a_late_outcome_that_fails_still_leaves_the_call_s_record(tmp_path: Path) -> None:
    from policy import Outcome
    from tests.policy.trace.factories import REDACT, call, verdict

    def broken() -> Outcome:
        raise ValueError("no body")

    for sink in (TraceWriter(tmp_path, TraceSettings()), MemoryTraceSink()):
        sink.emit_call(call(), verdict(trace_id="t-x"), broken, policy_hash="p", redact_keys=REDACT, ts=1.0)
        assert sink.close()
    [row] = table(tmp_path)
    assert row["outcome"] == "error"
    assert "the outcome could not be read: ValueError: no body" in json.loads(row["record"])["error"]


def test_writers_taking_turns_on_one_state_dir_keep_one_chain(tmp_path: Path) -> None:
    from policy.trace import ChainAppender

    first, second = (ChainAppender(tmp_path, max_bytes=1 << 20) for _ in range(2))
    for i in range(6):
        (first if i % 2 else second).append([record(n) for n in range(i * 10, i * 10 + 10)])
    first.close()
    second.close()
    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.jsonl is not None
    assert report.jsonl.records == 60
