"""The mesh watcher of one process, driven one job at a time on the in-memory board: a changed config is
validated and handed over, an invalid one is reported and keeps the running policy, stops reach the gate's
view, heartbeats say which policy runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from policy import compile_policies, load_config
from policy.gate.stop import Stops
from policy.mesh.reload import MeshWatcher, ProcessInfo, Reloaded, keep_running
from policy.store.board import ALL, MemoryBoard
from policy.trace import MemoryTraceSink

CONFIG = """
version: 1
state_dir: {state}
policy_dir: policies
policies:
  - name: dev
    agent: claude
    rules:
      - {{name: reads, tools: ["fs.read*"], action: {action}}}
"""
TEAM = """
policies:
  - name: team
    agent: "*"
    rules:
      - {{name: lists, tools: ["fs.list*"], action: {action}}}
"""


class Setup:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "agent-mesh.yaml"
        (folder / "policies").mkdir()
        self.write(action="allow")
        self.team(action="allow")
        self.loaded = load_config(str(self.file))
        self.board = MemoryBoard()
        self.stops = Stops()
        self.sink = MemoryTraceSink()
        self.reloads: list[Reloaded] = []
        self.got = threading.Event()
        self.watcher = MeshWatcher(
            self.loaded,
            compile_policies(self.loaded).policy_hash,
            ProcessInfo("mcpwrap", server="fs", agent="claude"),
            board=self.board,
            stops=self.stops,
            on_reload=self.on_reload,
            sink=self.sink,
        )

    def on_reload(self, reloaded: Reloaded) -> None:
        self.reloads.append(reloaded)
        self.got.set()

    def write(self, action: str = "allow", extra: str = "") -> None:
        self.file.write_text(CONFIG.format(state=self.folder / "state", action=action) + extra)

    def team(self, action: str) -> None:
        (self.folder / "policies" / "team.yaml").write_text(TEAM.format(action=action))

    def poll(self) -> Reloaded | None:
        """Two reads, as the running watcher makes: a change is taken once two reads in a row agree."""
        first = self.watcher.poll_config()
        return first if first is not None else self.watcher.poll_config()

    def events(self) -> list[str]:
        return [r["event"] for r in self.sink.records if r.get("kind") == "event"]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_a_change_is_taken_only_once_two_reads_agree(setup: Setup) -> None:
    setup.file.write_text("")  # an editor's write half done: an empty config is valid (and denies everything)
    assert setup.watcher.poll_config() is None
    setup.write(action="deny")  # the write completed
    assert setup.watcher.poll_config() is None
    assert setup.watcher.poll_config() is not None
    assert len(setup.reloads) == 1
    assert [p.name for p in setup.reloads[0].loaded.config.policies] == ["dev", "team"]


def test_an_unchanged_config_is_not_reloaded(setup: Setup) -> None:
    assert setup.poll() is None
    assert setup.reloads == []


def test_a_changed_config_is_handed_over_compiled(setup: Setup) -> None:
    before = setup.watcher.policy_hash
    setup.write(action="deny")
    reloaded = setup.poll()
    assert reloaded is not None
    assert setup.reloads == [reloaded]
    assert reloaded.policy_set.policy_hash == setup.watcher.policy_hash != before
    assert reloaded.restart_needed == ()
    assert setup.events() == ["policy_reloaded"]
    assert setup.board.processes()[0].policy_hash == setup.watcher.policy_hash


def test_a_changed_policy_dir_file_is_a_changed_config(setup: Setup) -> None:
    setup.team(action="deny")
    reloaded = setup.poll()
    assert reloaded is not None
    assert [p.name for p in reloaded.loaded.config.policies] == ["dev", "team"]


def test_an_invalid_edit_keeps_the_running_policy_and_says_why(setup: Setup) -> None:
    before = setup.watcher.policy_hash
    setup.write(action="allow_everything")
    assert setup.poll() is None
    assert setup.reloads == []
    assert setup.watcher.policy_hash == before
    error = setup.watcher.reload_error
    assert error is not None
    assert "agent-mesh.yaml" in error
    assert "allow_everything" in error
    assert setup.board.processes()[0].reload_error == error
    assert setup.events() == ["policy_reload_failed"]
    setup.write(action="deny")  # fixed: taken, and the error is gone
    assert setup.poll() is not None
    assert setup.watcher.reload_error is None
    assert setup.board.processes()[0].reload_error is None


def test_settings_a_process_cannot_change_live_need_a_restart_and_the_rest_swaps(setup: Setup) -> None:
    setup.write(action="deny", extra="proxy: {listen: '127.0.0.1:9999'}\n")
    reloaded = setup.poll()
    assert reloaded is not None
    assert reloaded.restart_needed == ("proxy.listen",)
    assert reloaded.loaded.config.proxy.listen == setup.loaded.config.proxy.listen
    assert reloaded.loaded.config.policies[0].rules[0].action.value == "deny"


def test_keep_running_names_every_restart_only_setting_that_differs(setup: Setup) -> None:
    running = setup.loaded.config
    new = running.model_copy(
        update={"state_dir": "/elsewhere", "control": running.control.model_copy(update={"listen": "127.0.0.1:1"})}
    )
    merged, changed = keep_running(running, new)
    assert changed == ("state_dir", "control.listen")
    assert merged.state_dir == running.state_dir
    assert merged.control.listen == running.control.listen


def test_a_process_that_cannot_take_the_new_config_keeps_reporting_the_old_one(setup: Setup) -> None:
    def refuse(_: Reloaded) -> None:
        raise RuntimeError("the event loop is gone")

    setup.watcher._on_reload = refuse
    before = setup.watcher.policy_hash
    setup.write(action="deny")
    assert setup.poll() is None
    assert setup.watcher.policy_hash == before
    assert "the event loop is gone" in (setup.watcher.reload_error or "")


def test_stops_on_the_board_reach_the_gates_view_and_lifting_them_too(setup: Setup) -> None:
    assert not setup.watcher.poll_stops()
    setup.board.add_stop(ALL, "runaway", "alice", 1.0)
    assert setup.watcher.poll_stops()
    assert setup.stops.stopping("claude") is not None
    assert not setup.watcher.poll_stops()  # nothing changed since
    setup.board.lift_stops(None, "bob", 2.0)
    assert setup.watcher.poll_stops()
    assert setup.stops.stopping("claude") is None


def test_the_running_watcher_reloads_on_its_own_and_leaves_the_board_when_closed(setup: Setup) -> None:
    setup.watcher.start()
    try:
        assert [p.kind for p in setup.board.processes()] == ["mcpwrap"]
        setup.write(action="deny")
        assert setup.got.wait(5.0)
    finally:
        setup.watcher.close()
    assert setup.board.processes() == []
