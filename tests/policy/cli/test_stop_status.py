"""`agent-mesh stop | resume | status` on a real state dir: a stop reaches a gate through its watcher, the
status names each process and flags one running another policy, and read-only status creates nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policy import Gate, ToolCall, compile_policies, load_config
from policy.cli import cli
from policy.gate.stop import is_stop
from policy.mesh.reload import MeshWatcher, ProcessInfo
from policy.store.board import Process, SqliteBoard, this_host
from policy.trace import MemoryTraceSink
from tests.policy.gate.conftest import config_text

READ = ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": "/srv/a"})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(config_text(tmp_path / "state"))
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


async def test_stop_and_resume_reach_a_running_gate(config: Path) -> None:
    loaded = load_config(str(config))
    gate = Gate.open(loaded, sink=MemoryTraceSink())
    board = SqliteBoard(loaded.config.state_dir)
    watcher = MeshWatcher(loaded, gate.policy_set.policy_hash, ProcessInfo("mcpwrap"), board=board,
                          stops=gate.stops, on_reload=None)  # fmt: skip
    try:
        done = run(config, "stop", "--agent", "claude", "--reason", "runaway loop", "--by", "alice")
        assert done.exit_code == 0, done.output
        assert "stopped agent 'claude'" in done.output
        assert watcher.poll_stops()
        refused = await gate.check(READ)
        assert is_stop(refused)
        assert "runaway loop" in refused.reason
        done = run(config, "resume", "--agent", "claude", "--json")
        assert json.loads(done.output)["lifted"][0]["reason"] == "runaway loop"
        assert watcher.poll_stops()
        assert (await gate.check(READ)).allowed
    finally:
        watcher.close()
        await gate.aclose()


def test_stop_needs_one_scope_and_a_reason(config: Path) -> None:
    assert run(config, "stop", "--reason", "x").exit_code == 2
    assert run(config, "stop", "--all", "--agent", "claude", "--reason", "x").exit_code == 2
    assert run(config, "stop", "--all", "--reason", "   ").exit_code == 2


def test_resume_of_one_agent_under_a_stop_of_all_says_it_stays_stopped(config: Path) -> None:
    assert run(config, "stop", "--all", "--reason", "everyone out").exit_code == 0
    done = run(config, "resume", "--agent", "claude")
    assert "still stopped by the stop of all agents" in done.output


def test_status_flags_a_process_running_another_policy_and_hides_gone_ones(config: Path) -> None:
    loaded = load_config(str(config))
    current = compile_policies(loaded).policy_hash
    board = SqliteBoard(loaded.config.state_dir)
    now = time.time()
    board.beat(Process(this_host(), os.getpid(), "mcpwrap", "fs", "claude", now, now, "0123456789abcdef",
                       str(config.resolve()), "agent-mesh.yaml:3: bad"))  # fmt: skip
    board.beat(Process("elsewhere", 1, "proxy", None, None, now - 60, now - 60, current, str(config.resolve())))
    board.close()
    shown = json.loads(run(config, "status", "--json").output)
    (row,) = shown["processes"]
    assert (row["kind"], row["current"], row["reload_error"]) == ("mcpwrap", False, "agent-mesh.yaml:3: bad")
    assert row["config_policy_hash"] == current
    everything = json.loads(run(config, "status", "--json", "--all").output)["processes"]
    assert {r["state"] for r in everything} == {"running", "gone"}
    text = run(config, "status").output
    assert "runs policy 0123456789abcdef, not" in text
    assert "last reload failed: agent-mesh.yaml:3: bad" in text


def test_status_on_a_mesh_that_never_ran_creates_nothing(config: Path) -> None:
    done = run(config, "status")
    assert done.exit_code == 0
    assert "no running processes" in done.output
    assert not (config.parent / "state").exists()


def test_status_while_the_config_does_not_load_needs_the_state_dir(config: Path) -> None:
    assert run(config, "stop", "--all", "--reason", "x").exit_code == 0
    config.write_text("policies: [oops\n")
    assert run(config, "status").exit_code == 2
    shown = json.loads(run(config, "status", "--state-dir", str(config.parent / "state"), "--json").output)
    assert shown["config_error"] is not None
    assert [s["reason"] for s in shown["stops"]] == ["x"]
