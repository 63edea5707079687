"""Write-ahead: an allowed call's decision record survives a SIGKILL of the process that decided it, right
after `check` returned; logs of live processes are left alone; records of dead ones are chained once."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from policy.core.config import TraceSettings
from policy.trace import TraceWriter
from policy.trace.ahead import AHEAD_DIR, AheadLog, adopt_orphans, encode_entry, recover
from policy.trace.append import ChainAppender
from policy.trace.verify import verify_state
from tests.policy.trace.factories import record

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 30.0


class Child:
    """tests/policy/trace/ahead_child.py, driven one call at a time."""

    def __init__(self, state: Path, mode: str, writer: str = "thread") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.policy.trace.ahead_child", str(state), mode, writer],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def allow(self, nonce: str) -> str:
        """The trace id of an allowed call, once `check` returned (and `finish` ran, in that mode)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(nonce + "\n")
        self.proc.stdin.flush()
        kind, trace_id = self.readline().split()
        assert kind == "allow"
        return trace_id

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(TIMEOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        child.stop()


def chained(state: Path) -> list[dict[str, object]]:
    path = state / "traces.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def table_ids(state: Path) -> list[str]:
    with closing(sqlite3.connect(state / "state.db")) as conn:
        return [row[0] for row in conn.execute("SELECT trace_id FROM traces ORDER BY seq")]


def adopt(state: Path) -> None:
    """What any trace writer that starts on the state dir does first."""
    writer = TraceWriter(state, TraceSettings())
    assert writer.close()


def ahead_lines(state: Path) -> list[dict[str, object]]:
    folder = state / AHEAD_DIR
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()]


@pytest.mark.parametrize("writer", ["thread", "worker"])
def test_an_allowed_call_s_decision_survives_a_sigkill_right_after_check_returned(
    tmp_path: Path, children: list[Child], writer: str
) -> None:
    child = Child(tmp_path, "check", writer)
    children.append(child)
    trace_id = child.allow("n-1")
    child.kill()

    assert [e["trace_id"] for e in ahead_lines(tmp_path)] == [trace_id]  # on disk before the call could run
    adopt(tmp_path)

    records = [r for r in chained(tmp_path) if r["trace_id"] == trace_id]
    assert len(records) == 1
    assert records[0]["verdict"] == "allow"
    assert records[0]["outcome"] == "unknown"
    assert records[0]["args"] == {"path": "/srv/a.txt", "nonce": "n-1"}
    assert table_ids(tmp_path) == [trace_id]
    assert not ahead_lines(tmp_path)
    assert verify_state(tmp_path).ok


@pytest.mark.parametrize("writer", ["thread", "worker"])
def test_a_call_killed_after_finish_has_exactly_one_record_whoever_writes_it(
    tmp_path: Path, children: list[Child], writer: str
) -> None:
    child = Child(tmp_path, "finish", writer)
    children.append(child)
    ids = [child.allow(f"n-{i}") for i in range(20)]
    child.kill()
    # An orphaned worker writes what it was sent, then exits: its parent's log is adopted only after that.
    wait_until_unlocked(tmp_path)
    adopt(tmp_path)

    records = chained(tmp_path)
    assert sorted(str(r["trace_id"]) for r in records) == sorted(ids)
    assert sorted(table_ids(tmp_path)) == sorted(ids)
    assert verify_state(tmp_path).ok


def wait_until_unlocked(state: Path) -> None:
    """Block until no process holds a write-ahead log's lock (bounded: a thread joined with a timeout)."""
    for lock in (state / AHEAD_DIR).glob("*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            waiter = threading.Thread(target=fcntl.flock, args=(fd, fcntl.LOCK_EX))
            waiter.start()
            waiter.join(TIMEOUT)
            assert not waiter.is_alive(), f"{lock.name} is still held"
        finally:
            os.close(fd)


def test_the_log_of_a_live_process_is_left_alone_until_it_dies(tmp_path: Path, children: list[Child]) -> None:
    child = Child(tmp_path, "check")
    children.append(child)
    trace_id = child.allow("n-1")
    adopt(tmp_path)
    assert trace_id not in [r["trace_id"] for r in chained(tmp_path)]  # its call may still be running

    child.kill()
    adopt(tmp_path)
    assert [r["trace_id"] for r in chained(tmp_path)] == [trace_id]


def test_a_finished_call_s_entry_is_settled_and_a_clean_close_leaves_no_log(tmp_path: Path) -> None:
    from tests.policy.trace.factories import call, verdict

    writer = TraceWriter(tmp_path, TraceSettings())
    c, v = call(), verdict(trace_id="t-settled")
    writer.ahead(c, v, policy_hash="p", redact_keys=[], ts=1.0)
    assert [e["trace_id"] for e in ahead_lines(tmp_path)] == ["t-settled"]
    from policy import Outcome

    writer.emit_call(c, v, Outcome(True), policy_hash="p", redact_keys=[], ts=2.0)
    assert writer.flush()
    assert not ahead_lines(tmp_path)  # settled: the segment starts over
    assert writer.close()
    assert not list((tmp_path / AHEAD_DIR).iterdir())
    assert [r["outcome"] for r in chained(tmp_path)] == ["ok"]


def test_an_adopted_entry_already_in_the_trace_is_not_written_twice(tmp_path: Path) -> None:
    appender = ChainAppender(tmp_path, max_bytes=1 << 20)
    appender.append([record(1)])
    log = AheadLog(tmp_path)
    log.write("t-000001", encode_entry(record(1, outcome="unknown")))
    log.write("t-000002", encode_entry(record(2, outcome="unknown")))
    os.close(log._lock_fd)  # type: ignore[arg-type]  # as if its process died: the lock is released
    log._lock_fd = None
    messages: list[str] = []
    assert adopt_orphans(tmp_path, appender, lambda m, **_: messages.append(m)) == 1
    appender.close()
    assert [(r["trace_id"], r["outcome"]) for r in chained(tmp_path)] == [("t-000001", "ok"), ("t-000002", "unknown")]
    assert verify_state(tmp_path).ok


def test_a_damaged_last_entry_of_a_killed_writer_is_skipped_and_the_rest_adopted(tmp_path: Path) -> None:
    log = AheadLog(tmp_path)
    log.write("t-000001", encode_entry(record(1)))
    log.write("t-000002", encode_entry(record(2))[:40])  # cut short, no newline: never a whole entry
    os.close(log._lock_fd)  # type: ignore[arg-type]
    log._lock_fd = None
    appender = ChainAppender(tmp_path, max_bytes=1 << 20)
    assert adopt_orphans(tmp_path, appender, lambda m, **_: None) == 1
    appender.close()
    assert [r["trace_id"] for r in chained(tmp_path)] == ["t-000001"]


def test_recover_chains_a_stopped_process_s_decisions_for_a_tool_that_runs_no_writer(
    tmp_path: Path, children: list[Child]
) -> None:
    child = Child(tmp_path, "check")
    children.append(child)
    trace_id = child.allow("n-1")
    child.kill()
    assert recover(tmp_path) == 1
    assert recover(tmp_path) == 0  # nothing left to adopt
    assert [r["trace_id"] for r in chained(tmp_path)] == [trace_id]


def test_the_lock_of_a_process_that_died_while_creating_its_log_is_cleaned_up(tmp_path: Path) -> None:
    (tmp_path / AHEAD_DIR).mkdir()
    stray = tmp_path / AHEAD_DIR / ".123-abcd.lock.tmp"
    stray.write_text("")
    assert recover(tmp_path) == 0
    assert not stray.exists()


def test_the_traces_commands_show_a_call_whose_process_was_killed_before_recording_it(
    tmp_path: Path, children: list[Child]
) -> None:
    from click.testing import CliRunner

    from policy.cli import cli

    child = Child(tmp_path, "check")
    children.append(child)
    trace_id = child.allow("n-cli")
    child.kill()
    shown = CliRunner().invoke(cli, ["traces", "query", "--state-dir", str(tmp_path), "--json"])
    assert shown.exit_code == 0, shown.output
    found = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    assert [(r["trace_id"], r["outcome"]) for r in found] == [(trace_id, "unknown")]
    verified = CliRunner().invoke(cli, ["traces", "verify", "--state-dir", str(tmp_path)])
    assert verified.exit_code == 0, verified.output
