"""Signed checkpoints: the key, the format, and who signs what when several processes write one chain."""

from __future__ import annotations

import itertools
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.core.config import TraceSettings
from policy.trace import TraceWriter, seal, trace_files
from policy.trace.append import ChainAppender
from policy.trace.checkpoint import (
    CHECKPOINTS_NAME,
    GENESIS,
    KEY_NAME,
    PUBLIC_NAME,
    line_digest,
    load_key,
    parse_checkpoint,
    read_checkpoints,
    read_public,
    sign,
    verify_signature,
)
from policy.trace.mend import MAX_GAP, lines_after
from policy.trace.verify import verify_state
from tests.policy.trace.factories import record


def checkpoints(state: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (state / CHECKPOINTS_NAME).read_text().splitlines()]


def chain_hashes(state: Path) -> list[str]:
    return [json.loads(line)["hash"] for path in trace_files(state) for line in path.read_text().splitlines()]


def appender(state: Path, every: int = 10) -> ChainAppender:
    return ChainAppender(state, max_bytes=64 * 1024 * 1024, checkpoint_every=every)


def test_the_key_is_made_once_private_with_its_public_half_beside_it(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    assert key is not None
    assert stat.S_IMODE((tmp_path / KEY_NAME).stat().st_mode) == 0o600
    again = load_key(tmp_path)
    assert again is not None
    public = read_public(tmp_path)
    assert public is not None
    assert len(public) == 64
    assert (tmp_path / PUBLIC_NAME).read_text().strip() == public
    checkpoint = sign(again, count=1, head="a" * 64, ts=1.0, every=5, prev=GENESIS, stores=("jsonl",))
    assert verify_signature(checkpoint, public)


def test_without_create_a_missing_key_is_none(tmp_path: Path) -> None:
    assert load_key(tmp_path, create=False) is None
    assert read_public(tmp_path) is None


def test_a_checkpoint_line_round_trips_and_an_edit_breaks_its_signature(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    assert key is not None
    checkpoint = sign(key, count=7, head="b" * 64, ts=2.5, every=5, prev=GENESIS, stores=("jsonl", "table"))
    assert parse_checkpoint(checkpoint.line()) == checkpoint
    public = read_public(tmp_path)
    assert public is not None
    edited = parse_checkpoint(checkpoint.line().replace('"count":7', '"count":6'))
    assert not verify_signature(edited, public)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "not JSON"),
        ("[]", "not a checkpoint object"),
        ('{"kind":"checkpoint"}', "fields"),
        (
            '{"count":0,"every":1,"head":"' + "a" * 64 + '","key":"' + "a" * 64 + '","kind":"checkpoint","prev":"'
            + "0" * 64 + '","stores":["jsonl"],"sig":"' + "a" * 128 + '","ts":1}',
            "count is not a positive integer",
        ),
        (
            '{"count":1,"every":1,"head":"XYZ","key":"' + "a" * 64 + '","kind":"checkpoint","prev":"'
            + "0" * 64 + '","stores":["jsonl"],"sig":"' + "a" * 128 + '","ts":1}',
            "head is not 64 lowercase hex digits",
        ),
        (
            '{"count":1,"every":1,"head":"' + "a" * 64 + '","key":"' + "a" * 64 + '","kind":"checkpoint","prev":"'
            + "0" * 64 + '","stores":["disk"],"sig":"' + "a" * 128 + '","ts":1}',
            "stores is not",
        ),
    ],
)  # fmt: skip
def test_a_line_that_is_not_a_checkpoint_is_refused_with_the_reason(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_checkpoint(line)


def test_the_first_record_is_signed_then_every_n_records_and_at_shutdown(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(checkpoint_every=10), max_batch=4)
    for i in range(25):
        writer.emit(record(i))
        writer.flush()
    writer.close()
    counts = [c["count"] for c in checkpoints(tmp_path)]
    assert counts[0] == 1
    assert counts[-1] == 25  # at close
    assert all(b - a <= 10 for a, b in itertools.pairwise(counts))
    assert counts == sorted(set(counts))
    hashes = chain_hashes(tmp_path)
    assert all(c["head"] == hashes[int(str(c["count"])) - 1] for c in checkpoints(tmp_path))
    assert verify_state(tmp_path).ok


def test_each_checkpoint_links_to_the_one_before(tmp_path: Path) -> None:
    a = appender(tmp_path, every=3)
    for i in range(10):
        a.append([record(i)])
    a.close()
    entries, problems = read_checkpoints(tmp_path / CHECKPOINTS_NAME)
    assert problems == []
    assert entries[0][0].prev == GENESIS
    for (_, before), (after, _) in itertools.pairwise(entries):
        assert after.prev == line_digest(before)


def test_a_signer_killed_mid_line_leaves_a_fragment_the_next_signer_cuts_off(tmp_path: Path) -> None:
    a = appender(tmp_path, every=2)
    a.append([record(0)])
    with (tmp_path / CHECKPOINTS_NAME).open("a") as f:
        f.write('{"count":3,"ev')
    a.append([record(1), record(2)])
    a.close()
    assert len(checkpoints(tmp_path)) == 2
    assert verify_state(tmp_path).ok


def test_a_chain_without_the_last_checkpoints_head_is_not_signed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = appender(tmp_path, every=2)
    a.append([record(i) for i in range(4)])
    a.close()
    (tmp_path / "traces.jsonl").unlink()
    fresh = appender(tmp_path, every=2)
    fresh.append([record(i) for i in range(10, 14)])
    fresh.close()
    assert [c["count"] for c in checkpoints(tmp_path)] == [4]
    assert "no longer holds record 4" in capsys.readouterr().err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    every=st.integers(min_value=1, max_value=7),
    steps=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 5)), min_size=1, max_size=25),
)
def test_writers_taking_turns_in_any_order_sign_checkpoints_that_all_hold(
    tmp_path_factory: pytest.TempPathFactory, every: int, steps: list[tuple[int, int]]
) -> None:
    state = tmp_path_factory.mktemp("turns")
    writers = [appender(state, every) for _ in range(3)]  # three processes' appenders, each with its own cache
    n = 0
    for who, size in steps:
        writers[who].append([record(n + i) for i in range(size)])
        n += size
    for w in writers:
        w.checkpoints.final()
        w.close()
    hashes = chain_hashes(state)
    marks = checkpoints(state)
    assert marks[-1]["count"] == n
    for mark in marks:
        assert mark["head"] == hashes[int(str(mark["count"])) - 1]
    counts = [int(str(m["count"])) for m in marks]
    assert all(b - a <= every + 4 for a, b in itertools.pairwise(counts))  # at most one batch late
    assert verify_state(state).ok


def test_a_writer_killed_between_its_file_write_and_its_insert_leaves_a_table_the_next_writer_mends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = appender(tmp_path, every=100)
    a.append([record(i) for i in range(10)])
    a.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    with conn:
        conn.execute("DELETE FROM traces WHERE seq > 6")  # as if the last batch never reached the table
    conn.close()
    other = appender(tmp_path, every=100)
    other.append([record(i) for i in range(10, 12)])
    other.close()
    assert "added 4 record(s) to the traces table" in capsys.readouterr().err
    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.table is not None
    assert report.table.records == 12


def test_an_emptied_table_is_not_refilled_from_the_file_behind_verifys_back(tmp_path: Path) -> None:
    a = appender(tmp_path, every=100)
    a.append([record(i) for i in range(MAX_GAP + 10)])
    a.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    with conn:
        conn.execute("DELETE FROM traces")
    conn.close()
    other = appender(tmp_path, every=100)
    other.append([record(MAX_GAP + 20)])
    other.close()
    report = verify_state(tmp_path)
    assert report.table is not None
    assert report.table.broken is not None  # its one new row does not link to the empty table's genesis
    assert "prev_hash does not link" in report.table.broken.problem


def test_the_gap_after_an_anchor_is_read_across_rotated_files(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(max_bytes=8192), max_batch=16)
    for i in range(60):
        writer.emit(record(i))
    writer.close()
    files = list(reversed(trace_files(tmp_path)))
    hashes = chain_hashes(tmp_path)
    assert lines_after(files, hashes[29], 100) is not None
    found = lines_after(files, hashes[29], 100)
    assert found is not None
    assert [json.loads(line)["hash"] for line in found] == hashes[30:]
    assert lines_after(files, hashes[29], 10) is None
    everything = lines_after(files, GENESIS, 100)
    assert everything is not None
    assert len(everything) == 60


def test_a_half_written_batch_the_table_refused_is_cut_off_before_the_next_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = appender(tmp_path, every=100)
    a.append([record(i) for i in range(5)])
    a.close()
    current = trace_files(tmp_path)[-1]
    tip = chain_hashes(tmp_path)[-1]
    # A writer killed after writing [a call already chained, a new one] to the file, before it cut them off
    # again on the table's refusal of the first.
    first_hash, first = seal(record(2), tip)
    _, second = seal(record(7), first_hash)
    with current.open("a") as f:
        f.write(first + "\n" + second + "\n")
    other = appender(tmp_path, every=100)
    other.append([record(8)])
    other.close()
    assert "removed 2 record(s) that a stopped writer left in traces.jsonl" in capsys.readouterr().err
    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.jsonl is not None
    assert report.jsonl.records == 6


def test_a_batch_whose_calls_are_all_written_already_is_a_no_op_not_an_error(tmp_path: Path) -> None:
    a = appender(tmp_path)
    a.append([record(i) for i in range(3)])
    assert a.append([record(i) for i in range(3)]) == 0  # an SQL error before: every retry failed, the trace "failing"
    a.close()
    assert verify_state(tmp_path).ok
