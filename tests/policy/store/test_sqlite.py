"""SqliteStore on real files: migrations, several OS processes at once, broken files fail closed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from policy.core.errors import StoreUnavailable
from policy.store import ApprovalState, Limits, SqliteStore, connect
from policy.store.migrations import LATEST, MIGRATIONS
from tests.policy.store import factories as f
from tests.policy.store.procs import race
from tests.policy.store.readonly import read_only

WORKER = "tests.policy.store.worker"


def test_a_fresh_state_dir_gets_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "new" / "state")
    store.list_grants(now=0.0)
    conn = sqlite3.connect(tmp_path / "new" / "state" / "state.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = [r[1] for r in conn.execute("PRAGMA table_info(traces)")]
    assert columns == [
        "seq", "ts", "trace_id", "session_id", "agent", "surface", "server", "tool", "args", "call_hash",
        "decision", "rule", "verdict", "decided_by", "approval_id", "outcome", "status", "latency_ms",
        "policy_hash", "prev_hash", "hash", "record", "kind",
    ]  # fmt: skip
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(traces)")}
    assert {"traces_agent", "traces_tool", "traces_verdict", "traces_session"} <= indexes
    conn.close()
    store.close()


def test_reopening_keeps_the_state_and_does_not_migrate_again(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    a = store.open_approval(f.approval())
    store.close()
    again = SqliteStore(tmp_path)
    assert again.get_approval(a.id) == a
    again.close()


def test_an_older_database_is_migrated_forward_and_keeps_its_rows(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "state.db")
    number, _title, sql = MIGRATIONS[0]
    conn.executescript(sql + f"; PRAGMA user_version = {number};")
    conn.execute(
        "INSERT INTO grants (id, agent, tool, created_at, expires_at, created_by) "
        "VALUES ('abcdef123456', 'claude', 'fs.*', 0, 1e12, 'alice')"
    )
    conn.commit()
    conn.close()
    store = SqliteStore(tmp_path)
    assert [g.id for g in store.list_grants(now=1.0)] == ["abcdef123456"]
    assert store.admit("a", "h", Limits("p", per_minute=5, loop_max=3), now=1.0).admitted
    store.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    conn.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    store = SqliteStore(tmp_path)
    with pytest.raises(StoreUnavailable, match="newer than this agent-mesh"):
        store.list_grants(now=0.0)


def test_a_corrupt_state_db_is_unavailable_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not a database at all" * 200)
    store = SqliteStore(tmp_path)
    with pytest.raises(StoreUnavailable, match="corrupt"):
        store.admit("a", "h", Limits("p", per_minute=5), now=1.0)
    with pytest.raises(StoreUnavailable):
        store.open_approval(f.approval())


def test_a_read_only_state_db_refuses_writes(tmp_path: Path) -> None:
    SqliteStore(tmp_path).close()
    connect(tmp_path / "state.db").close()
    with read_only(tmp_path / "state.db"):
        store = SqliteStore(tmp_path)
        with pytest.raises(StoreUnavailable, match="read-only"):
            store.admit("a", "h", Limits("p", per_minute=5), now=1.0)
        store.close()


def test_the_store_recovers_once_the_file_is_fixed(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"garbage" * 1000)
    store = SqliteStore(tmp_path)
    with pytest.raises(StoreUnavailable):
        store.list_grants(now=0.0)
    (tmp_path / "state.db").unlink()
    assert store.list_grants(now=0.0) == []
    store.close()


def test_two_processes_approving_the_same_id_exactly_one_succeeds(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    a = store.open_approval(f.approval(now=0.0, ttl=1e12))
    answers = race(tmp_path, WORKER, [["resolve", a.id, "alice"], ["resolve", a.id, "bob"]])
    assert sorted(x["ok"] for x in answers) == [False, True]
    [loser] = [x for x in answers if not x["ok"]]
    assert "already approved" in loser["error"]
    assert store.get_approval(a.id).state is ApprovalState.APPROVED  # type: ignore[union-attr]
    assert len(store.list_facts()) == 1
    store.close()


def test_two_processes_racing_to_use_one_approval_exactly_one_gets_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    a = store.open_approval(f.approval("h-race", now=0.0, ttl=1e12))
    store.resolve_approval(a.id, True, "alice", "", now=1.0, usable_for=1e12)
    answers = race(
        tmp_path, WORKER, [["consume", "h-race", "p1"], ["consume", "h-race", "p2"], ["consume", "h-race", "p3"]]
    )
    assert sorted(x["ok"] for x in answers) == [False, False, True]
    store.close()


def test_one_rate_budget_is_shared_by_every_process(tmp_path: Path) -> None:
    answers = race(tmp_path, WORKER, [["admit", "60", "claude", "50"], ["admit", "60", "claude", "50"]])
    assert sum(x["admitted"] for x in answers) == 60


def test_try_admit_gives_way_to_another_writer_and_counts_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    limits = Limits("p", total=1)
    store.list_grants(now=0.0)
    other = connect(tmp_path / "state.db")
    other.execute("BEGIN IMMEDIATE")
    assert store.try_admit("a", "h", limits, now=1.0) is None
    other.execute("ROLLBACK")
    other.close()
    assert store.admit("a", "h", limits, now=2.0).admitted
    assert not store.admit("a", "h2", limits, now=3.0).admitted  # the attempt that gave way was not counted
    store.close()
