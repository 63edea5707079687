"""`verify` against signed checkpoints: each way of quietly trimming or rewriting the trace is named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.core.config import TraceSettings
from policy.trace import TraceWriter, seal, trace_files
from policy.trace.checkpoint import CHECKPOINTS_NAME, GENESIS, KEY_NAME, PUBLIC_NAME, load_key, sign
from policy.trace.verify import verify_state
from tests.policy.trace.factories import record

EVERY = 10


def write(state: Path, n: int, start: int = 0) -> None:
    writer = TraceWriter(state, TraceSettings(checkpoint_every=EVERY), max_batch=8)
    for i in range(start, start + n):
        writer.emit(record(i))
    writer.close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    write(tmp_path, 40)
    return tmp_path


def db(state: Path, sql: str) -> None:
    conn = sqlite3.connect(state / "state.db")
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def drop_last_lines(path: Path, n: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-n]))


def problems(state: Path, key: str | None = None) -> str:
    report = verify_state(state, key=key)
    assert not report.ok
    return "\n".join(report.problems)


def test_an_untouched_trace_verifies_against_its_checkpoints(state: Path) -> None:
    report = verify_state(state)
    assert report.ok, report.problems
    assert report.anchoring.last is not None
    assert report.anchoring.last.count == 40


def test_the_last_record_dropped_from_file_and_table_is_reported_for_both(state: Path) -> None:
    drop_last_lines(trace_files(state)[-1], 1)
    db(state, "DELETE FROM traces WHERE seq = (SELECT max(seq) FROM traces)")
    text = problems(state)
    assert "the trace files holds 39 records, but the last checkpoint" in text
    assert "covers 40: the last 1 were removed" in text
    assert "the traces table holds 39 records" in text


def test_deleted_trace_files_are_reported(state: Path) -> None:
    for path in trace_files(state):
        path.unlink()
    assert "the trace files is missing, but the last checkpoint" in problems(state)


def test_an_emptied_traces_table_is_reported(state: Path) -> None:
    db(state, "DELETE FROM traces")
    assert "the traces table holds no records, but the last checkpoint" in problems(state)


def test_an_edited_record_with_every_later_hash_recomputed_is_reported_as_resealed(state: Path) -> None:
    path = trace_files(state)[-1]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    prev = records[0]["prev_hash"]
    lines = []
    for i, rec in enumerate(records):
        body = {k: v for k, v in rec.items() if k not in ("hash", "prev_hash")}
        if i == 2:
            body["verdict"] = "deny"
        prev, line = seal(body, prev)
        lines.append(line)
    path.write_text("".join(line + "\n" for line in lines))
    report = verify_state(state)
    assert report.jsonl is not None
    assert report.jsonl.broken is None  # the chain alone holds
    assert "the chain was rewritten and resealed" in "\n".join(report.problems)


def test_a_deleted_checkpoints_file_is_reported(state: Path) -> None:
    (state / CHECKPOINTS_NAME).unlink()
    assert "there is no checkpoint: checkpoints.jsonl was deleted" in problems(state)


def test_checkpoints_removed_from_the_end_show_when_far_more_records_follow(tmp_path: Path) -> None:
    write(tmp_path, 3000)
    path = tmp_path / CHECKPOINTS_NAME
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["count"] <= 10]
    path.write_text("".join(kept))
    assert "records past the last checkpoint, which is signed every 10 records" in problems(tmp_path)


def test_a_checkpoint_removed_from_the_middle_breaks_their_links(state: Path) -> None:
    path = state / CHECKPOINTS_NAME
    lines = path.read_text().splitlines(keepends=True)
    del lines[1]
    path.write_text("".join(lines))
    assert "does not link to the one before it" in problems(state)


def test_an_edited_checkpoint_fails_its_signature(state: Path) -> None:
    path = state / CHECKPOINTS_NAME
    text = path.read_text()
    last = json.loads(text.splitlines()[-1])
    path.write_text(text.replace(f'"count":{last["count"]}', '"count":38'))
    assert "the signature does not verify" in problems(state)


def test_a_new_key_resigning_a_trimmed_trace_is_caught_only_by_the_pinned_key(state: Path) -> None:
    pinned = (state / PUBLIC_NAME).read_text().strip()
    drop_last_lines(trace_files(state)[-1], 5)
    db(state, "DELETE FROM traces WHERE seq > 35")
    # The agent makes its own key and signs the trimmed chain as if it were whole.
    (state / KEY_NAME).unlink()
    (state / PUBLIC_NAME).unlink()
    (state / CHECKPOINTS_NAME).unlink()
    key = load_key(state)
    assert key is not None
    head = json.loads(trace_files(state)[-1].read_text().splitlines()[-1])["hash"]
    forged = sign(key, count=35, head=head, ts=1.0, every=EVERY, prev=GENESIS, stores=("jsonl", "table"))
    (state / CHECKPOINTS_NAME).write_text(forged.line() + "\n")
    assert verify_state(state).ok  # undetectable from inside the state dir alone
    assert "is not the expected" in problems(state, key=pinned)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=1, max_value=40), table_too=st.booleans())
def test_any_cut_of_the_end_below_the_last_checkpoint_is_reported(
    tmp_path_factory: pytest.TempPathFactory, cut: int, table_too: bool
) -> None:
    state = tmp_path_factory.mktemp("cut")
    write(state, 40)
    files = trace_files(state)
    left = cut
    for path in reversed(files):  # cut across rotated files too
        lines = path.read_text().splitlines(keepends=True)
        take = min(left, len(lines))
        path.write_text("".join(lines[: len(lines) - take]))
        left -= take
    if table_too:
        db(state, f"DELETE FROM traces WHERE seq > {40 - cut}")
    assert f"the last {cut} were removed" in problems(state) or "holds no records" in problems(state)
