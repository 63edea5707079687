"""Loop detection in SqliteStore: judged from memory, shared between processes through the loop log, and
refusing calls while the log cannot be read or written."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from policy.core.errors import StoreUnavailable
from policy.store import Limits, SqliteStore
from policy.store.db import BUSY_SECONDS
from policy.store.loops import SYNC_SECONDS, LoopLedger
from tests.policy.store.procs import race

WORKER = "tests.policy.store.worker"
LOOP = Limits("p", loop_max=3, loop_window=600.0)


def log_rows(state: Path, call_hash: str) -> int:
    conn = sqlite3.connect(state / "state.db")
    try:
        return int(conn.execute("SELECT count(*) FROM loop_log WHERE call_hash = ?", (call_hash,)).fetchone()[0])
    finally:
        conn.close()


def test_the_identical_calls_of_another_process_count_here(tmp_path: Path) -> None:
    [answer] = race(tmp_path, WORKER, [["repeat", "3", "claude", "same"]])
    assert answer == {"admitted": 3}
    store = SqliteStore(tmp_path)
    refused = store.admit("claude", "same", LOOP, now=time.time())
    assert (refused.admitted, refused.limit, refused.count) == (False, "loop", 3)
    assert store.admit("claude", "other", LOOP, now=time.time()).admitted
    store.close()


def test_two_processes_repeating_one_call_at_once_are_refused_once_they_have_synced(tmp_path: Path) -> None:
    answers = race(tmp_path, WORKER, [["repeat", "2", "claude", "same"], ["repeat", "2", "claude", "same"]])
    # Exact would be 3; calls within a sync interval of each other may see each other's one sync late.
    assert sum(int(str(a["admitted"])) for a in answers) in (3, 4)
    store = SqliteStore(tmp_path)
    assert not store.admit("claude", "same", LOOP, now=time.time()).admitted
    store.close()


def test_a_running_store_writes_its_calls_to_the_log_within_a_sync(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    now = time.time()
    assert all(store.admit("claude", "same", LOOP, now=now + i).admitted for i in range(3))
    deadline = time.monotonic() + 20 * SYNC_SECONDS
    while log_rows(tmp_path, "same") < 3:
        assert time.monotonic() < deadline, "the loop log was not synced"
        time.sleep(SYNC_SECONDS / 4)
    other = SqliteStore(tmp_path)  # a fresh view, as another process has: it reads the log first
    assert not other.admit("claude", "same", LOOP, now=now + 3).admitted
    other.close()
    store.close()


def test_closing_writes_what_is_pending(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    for i in range(3):
        store.admit("claude", "same", LOOP, now=1000.0 + i)
    store.close()
    assert log_rows(tmp_path, "same") == 3


def test_calls_are_refused_while_the_log_cannot_be_synced_and_pass_again_once_it_can(tmp_path: Path) -> None:
    ledger = LoopLedger(tmp_path / "state.db", BUSY_SECONDS)
    assert ledger.admit("claude", "h1", LOOP, now=1.0).admitted
    ledger.close()
    (tmp_path / "state.db").write_bytes(b"not sqlite" * 500)
    for extra in ("-wal", "-shm"):
        (tmp_path / f"state.db{extra}").unlink(missing_ok=True)
    with pytest.raises(StoreUnavailable, match="corrupt"):
        ledger.sync()
    with pytest.raises(StoreUnavailable, match="corrupt"):
        ledger.admit("claude", "h2", LOOP, now=2.0)
    (tmp_path / "state.db").unlink()
    assert ledger.admit("claude", "h2", LOOP, now=3.0).admitted
    ledger.close()
    assert log_rows(tmp_path, "h2") == 1  # the refused attempt was not counted


def test_rows_older_than_their_window_leave_memory_and_the_log(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    short = Limits("p", loop_max=3, loop_window=10.0)
    for i in range(3):
        store.admit("claude", "old", short, now=1000.0 + i)
    assert store.admit("claude", "old", short, now=1020.0).admitted  # the earlier three left the window
    store.close()
    ledger = LoopLedger(tmp_path / "state.db", BUSY_SECONDS)
    ledger.admit("claude", "new", short, now=1031.0)
    ledger.sync()
    ledger.prune()
    ledger.close()
    assert log_rows(tmp_path, "old") == 0
    assert log_rows(tmp_path, "new") == 1


def test_a_scope_first_used_late_still_counts_what_other_processes_did_under_it(tmp_path: Path) -> None:
    writer = SqliteStore(tmp_path)
    for _ in range(3):
        writer.admit("claude", "same", LOOP, now=time.time())
    writer.close()
    store = SqliteStore(tmp_path)
    other = Limits("q", loop_max=3, loop_window=600.0)
    assert store.admit("claude", "same", other, now=time.time()).admitted  # scope q: the pull skips p's rows
    assert not store.admit("claude", "same", LOOP, now=time.time()).admitted  # p is read when first needed
    store.close()
