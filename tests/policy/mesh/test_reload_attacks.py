"""A hostile agent against hot reload: files in the config's place that never end (a FIFO, a link to /dev/zero),
files too large to parse between two stop polls, and a reload that fails in a way nobody planned for. The watcher
never hangs, never reads without bound, never takes such a file, and keeps obeying emergency stops."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from policy import compile_policies, load_config
from policy.core.config import ConfigError, LoadedConfig
from policy.core.textfile import MAX_CONFIG_BYTES
from policy.gate.stop import Stops
from policy.mesh.reload import MeshWatcher, ProcessInfo, Reloaded
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
      - {{name: reads, tools: ["fs.read*"], action: deny}}
"""
WAIT = 20.0  # seconds: far beyond what a bounded read takes; a hang is a hang


def within[T](job: Callable[[], T]) -> T:
    """`job()` run on a thread, failed if it has not returned within WAIT seconds (it would hang the watcher)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(job())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "the watcher's job did not return: it hangs on the file"
    if errors:
        raise errors[0]
    return out[0]


class Mesh:
    def __init__(self, folder: Path, loader: Callable[[str], LoadedConfig] = load_config) -> None:
        self.file = folder / "agent-mesh.yaml"
        self.policies = folder / "policies"
        self.policies.mkdir()
        self.file.write_text(CONFIG.format(state=folder / "state"))
        loaded = load_config(str(self.file))
        self.hash = compile_policies(loaded).policy_hash
        self.board = MemoryBoard()
        self.stops = Stops()
        self.reloads: list[Reloaded] = []
        self.watcher = MeshWatcher(
            loaded,
            self.hash,
            ProcessInfo("mcpwrap", server="fs", agent="claude"),
            board=self.board,
            stops=self.stops,
            on_reload=self.reloads.append,
            sink=MemoryTraceSink(),
            loader=loader,
        )

    def poll_twice(self) -> Reloaded | None:
        first = within(self.watcher.poll_config)
        return first if first is not None else within(self.watcher.poll_config)

    def kept_running(self) -> bool:
        return self.reloads == [] and self.watcher.policy_hash == self.hash


@pytest.fixture
def mesh(tmp_path: Path) -> Mesh:
    return Mesh(tmp_path)


def test_a_fifo_added_to_the_policy_dir_does_not_hang_the_watcher_and_is_not_taken(mesh: Mesh) -> None:
    os.mkfifo(mesh.policies / "zz.yaml")
    assert mesh.poll_twice() is None
    assert mesh.kept_running()
    assert "zz.yaml" in (mesh.watcher.reload_error or "")


def test_a_policy_file_linked_to_dev_zero_is_not_read_without_end(mesh: Mesh) -> None:
    (mesh.policies / "zero.yaml").symlink_to("/dev/zero")
    assert mesh.poll_twice() is None
    assert mesh.kept_running()
    assert "zero.yaml" in (mesh.watcher.reload_error or "")


def test_the_config_swapped_for_a_fifo_does_not_hang_the_watcher(mesh: Mesh) -> None:
    mesh.file.unlink()
    os.mkfifo(mesh.file)
    assert mesh.poll_twice() is None
    assert mesh.kept_running()
    assert mesh.watcher.reload_error is not None


def test_a_policy_file_too_large_to_be_a_config_is_refused_without_parsing_it(mesh: Mesh) -> None:
    with open(mesh.policies / "huge.yaml", "w") as f:
        f.write("# " + "x" * (MAX_CONFIG_BYTES + 10) + "\n")
    assert mesh.poll_twice() is None
    assert mesh.kept_running()
    assert "huge.yaml" in (mesh.watcher.reload_error or "")
    assert "larger than" in (mesh.watcher.reload_error or "")


def test_loading_a_config_linked_to_dev_zero_fails_closed_without_reading_it_all(tmp_path: Path) -> None:
    (tmp_path / "agent-mesh.yaml").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file"):
        within(lambda: load_config(str(tmp_path / "agent-mesh.yaml")))


def test_a_reload_failing_in_an_unforeseen_way_keeps_the_policy_and_the_watcher_obeying_stops(tmp_path: Path) -> None:
    def loader(path: str) -> LoadedConfig:
        raise RecursionError("maximum recursion depth exceeded")  # what no except clause names

    mesh = Mesh(tmp_path, loader=loader)
    mesh.file.write_text(CONFIG.format(state=tmp_path / "state") + "\n# changed\n")
    assert mesh.poll_twice() is None  # the job the watcher's thread runs: nothing escapes it to end the thread
    assert mesh.kept_running()
    assert "RecursionError" in (mesh.watcher.reload_error or "")
    changed = threading.Event()
    mesh.stops.on_change(changed.set)
    mesh.watcher.start()
    try:
        mesh.board.add_stop(ALL, "runaway", "alice", 1.0)
        assert changed.wait(WAIT)
        assert mesh.stops.stopping("claude") is not None
    finally:
        mesh.watcher.close()


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)


@pytest.mark.parametrize(
    "text",
    [BOMB, "x: " + "[" * 5000 + "]" * 5000 + "\n", "name: x\nrules: [{tools: ['*'], action: allow}]\n\x00"],
    ids=["billion-laughs", "deep-nesting", "nul"],
)
def test_a_hostile_yaml_file_in_the_policy_dir_is_a_reload_error_and_the_policy_stays(mesh: Mesh, text: str) -> None:
    (mesh.policies / "zz.yaml").write_text(text)
    assert mesh.poll_twice() is None
    assert mesh.kept_running()
    assert "zz.yaml" in (mesh.watcher.reload_error or "")


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\ufffe"])
def test_a_character_yaml_refuses_is_a_config_error_naming_the_file(tmp_path: Path, character: str) -> None:
    (tmp_path / "agent-mesh.yaml").write_text(f"version: 1\n# {character}\n")
    with pytest.raises(ConfigError, match="special characters are not allowed") as raised:
        load_config(str(tmp_path / "agent-mesh.yaml"))
    assert raised.value.file == str(tmp_path / "agent-mesh.yaml")
