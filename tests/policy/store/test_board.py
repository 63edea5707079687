"""The mesh board on state.db: stops survive the connection that wrote them, heartbeats replace each other,
and a process whose heartbeat is old or whose pid is gone is not alive."""

from __future__ import annotations

import os
from pathlib import Path

from policy.store.board import ALL, Process, SqliteBoard, this_host


def process(pid: int, heartbeat: float, policy_hash: str = "abc") -> Process:
    return Process(this_host(), pid, "mcpwrap", "fs", "claude", 1.0, heartbeat, policy_hash, "/x/agent-mesh.yaml")


def test_a_stop_written_by_one_connection_is_read_by_another_and_lifted(tmp_path: Path) -> None:
    writer, reader = SqliteBoard(tmp_path), SqliteBoard(tmp_path)
    try:
        before = reader.version()
        stop = writer.add_stop(ALL, "runaway", "alice", 10.0)
        assert reader.version() != before
        assert reader.active_stops() == [stop]
        writer.add_stop("claude", "again", "alice", 11.0)
        lifted = writer.lift_stops("claude", "bob", 12.0)
        assert [(s.scope, s.lifted_by) for s in lifted] == [("claude", "bob")]
        assert [s.scope for s in reader.active_stops()] == [ALL]
        writer.lift_stops(None, "bob", 13.0)
        assert reader.active_stops() == []
    finally:
        writer.close()
        reader.close()


def test_a_heartbeat_replaces_the_last_one_and_leaving_removes_the_row(tmp_path: Path) -> None:
    board = SqliteBoard(tmp_path)
    try:
        assert board.beat(process(os.getpid(), 5.0, "old"))
        assert board.beat(process(os.getpid(), 6.0, "new"))
        (row,) = board.processes()
        assert (row.heartbeat, row.policy_hash) == (6.0, "new")
        board.leave(this_host(), os.getpid())
        assert board.processes() == []
    finally:
        board.close()


def test_a_process_is_gone_when_its_heartbeat_is_old_or_its_pid_does_not_exist() -> None:
    assert process(os.getpid(), 100.0).alive(105.0)
    assert not process(os.getpid(), 100.0).alive(111.0)
    assert not process(2**22 + 12345, 100.0).alive(101.0)  # above pid_max: no such process
