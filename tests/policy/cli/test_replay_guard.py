"""`agent-mesh replay` judges as the live gate judges: a call the state-dir guard refused stays refused under a
candidate that would allow its tool, and a call the guard lets through is judged by the candidate's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policy import Gate, Outcome, ToolCall, load_config
from policy.cli import cli

CONFIG = """
version: 1
state_dir: state
policies:
  - name: dev
    agent: "*"
    rules:
      - {name: reads, tools: ["fs.read*"], action: allow}
"""


@pytest.fixture
async def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    state = tmp_path / "state"
    gate = Gate.open(load_config(str(path)))
    for args in ({"path": str(state / "operator.token")}, {"path": "/tmp/notes.txt"}):
        call = ToolCall("claude", "mcp_stdio", "fs", "read_file", args, session_id="s-1")
        verdict = await gate.check(call)
        gate.finish(call, verdict, Outcome(forwarded=verdict.allowed))
    await gate.aclose()
    return path


def replay(config: Path, candidate: Path, *more: str) -> Result:
    return CliRunner().invoke(cli, ["replay", str(candidate), "--config", str(config), *more])


def test_the_guards_refusal_is_replayed_as_a_refusal(config: Path) -> None:
    result = replay(config, config)
    assert result.exit_code == 0, result.output
    assert "replayed 2 recorded call(s)" in result.output
    assert "no decision would change" in result.output


def test_a_candidate_that_denies_reads_changes_only_the_call_the_guard_let_through(config: Path) -> None:
    candidate = config.parent / "candidate.yaml"
    candidate.write_text(CONFIG.replace("action: allow", "action: deny"))
    result = replay(config, candidate, "--json")
    assert result.exit_code == 1, result.output
    [change] = [json.loads(line) for line in result.stdout.splitlines()]
    assert change["args"] == {"path": "/tmp/notes.txt"}
    assert (change["before"]["decision"], change["after"]["decision"]) == ("allow", "deny")
