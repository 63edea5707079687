"""A per-agent stop matches the agent's exact name, so a stop of a name no agent has stops nothing while the
operator reads "stopped". In an emergency, `agent-mesh stop --agent Claude` (the agent is `claude`), a
trailing zero-width space pasted from a chat, or a typo must say so at once, naming the agent meant; the
stop of an agent that is configured or running says nothing more."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.cli import cli
from policy.mesh.emergency import unknown_agent_note
from policy.store.board import Process, SqliteBoard, this_host

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{}}, cursor-bot: {{}}}}
policies: []
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


@pytest.mark.parametrize("name", ["Claude", "CLAUDE", "claude\u200b", "ｃｌａｕｄｅ", "claude "])
def test_a_stop_of_a_lookalike_of_a_configured_agent_names_the_agent_meant(config: Path, name: str) -> None:
    done = run(config, "stop", "--agent", name, "--reason", "runaway")
    assert done.exit_code == 0, done.output
    if name.strip() == "claude":
        assert "note:" not in done.output  # the operator's stray space is the agent's name once stripped
        return
    assert "no agent called" in done.output
    assert "agent-mesh stop --agent claude" in done.output


def test_a_stop_of_a_name_nobody_has_says_it_stops_nothing_yet(config: Path) -> None:
    done = run(config, "stop", "--agent", "gpt", "--reason", "runaway", "--json")
    assert done.exit_code == 0, done.output
    note = json.loads(done.output)["note"]
    assert "no agent called 'gpt' is configured or running" in note


def test_a_stop_of_a_configured_or_running_agent_has_no_note(config: Path, tmp_path: Path) -> None:
    board = SqliteBoard(str(tmp_path / "state"))
    now = time.time()
    board.beat(Process(this_host(), os.getpid(), "mcpwrap", "fs", "local-bot", now, now, "0" * 16, str(config)))
    board.close()
    for name in ("claude", "cursor-bot", "local-bot"):
        done = run(config, "stop", "--agent", name, "--reason", "runaway", "--json")
        assert done.exit_code == 0, done.output
        assert json.loads(done.output).get("note") is None


@settings(max_examples=100)
@given(
    st.sampled_from(["claude", "cursor-bot"]),
    st.lists(st.sampled_from(["upper", "zwsp", "fullwidth", "nbsp"]), min_size=1, max_size=3),
)
def test_every_lookalike_of_a_known_agent_is_named(known: str, changes: list[str]) -> None:
    name = known
    for change in changes:
        if change == "upper":
            name = name.upper()
        elif change == "zwsp":
            name = name + "\u200b"
        elif change == "fullwidth":
            name = "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in name)
        else:
            name = name.replace("-", "-\u00a0")
    note = unknown_agent_note(name, ["claude", "cursor-bot"])
    if name == known:
        assert note is None
    else:
        assert note is not None
        assert f"--agent {known}" in note
