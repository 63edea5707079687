"""`agent-mesh explain` and `agent-mesh test` give what the live gate gives: the state-dir guard, the mesh's
grants, approvals and decision memory; and they leave the state as they found it (or create none)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policy import Gate, Operator, ToolCall, VerdictKind, load_config
from policy.cli import cli
from policy.store import SqliteStore
from policy.trace import MemoryTraceSink

CONFIG = """
version: 1
state_dir: state
policies:
  - name: dev
    agent: "*"
    rules:
      - {name: reads, tools: ["fs.read*"], action: allow}
      - {name: writes, tools: ["fs.write_file"], action: human_approval}
memory: {auto_approve_after: 1, window: 7d}
approval: {deny_cooldown: 0}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    return path


def explain(config: Path, tool: str, args: dict[str, Any], *more: str) -> Result:
    argv = ["explain", "--config", str(config), "--agent", "claude", "--tool", tool, "--args", json.dumps(args)]
    return CliRunner().invoke(cli, [*argv, *more])


def explained(config: Path, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = explain(config, tool, args, "--json")
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


def test_reading_the_operator_token_is_explained_as_the_guards_denial(config: Path) -> None:
    state = config.parent / "state"
    out = explained(config, "fs.read_file", {"path": str(state / "operator.token")})
    assert (out["decision"], out["rule"]) == ("deny", "guard/state-dir")
    assert (out["preview"]["verdict"], out["preview"]["decided_by"]) == ("deny", "policy:guard/state-dir")
    text = explain(config, "fs.read_file", {"path": "state/../state/operator.token"}).output
    assert "verdict:    deny (decided by policy:guard/state-dir)" in text
    assert "state-dir guard refuses it whatever the policy says" in text


def test_explain_on_a_mesh_with_no_state_creates_none_and_says_so(config: Path) -> None:
    out = explained(config, "fs.write_file", {"path": "/tmp/x"})
    assert out["preview"]["verdict"] == "pending"
    assert out["state"].startswith("no state yet at")
    assert not (config.parent / "state").exists()


def _state_of(config: Path) -> tuple[SqliteStore, Operator]:
    loaded = load_config(str(config))
    store = SqliteStore(loaded.config.state_dir)
    return store, Operator(loaded.config, store)


async def test_explain_names_the_grant_that_lifts_an_approval_and_spends_none_of_it(config: Path) -> None:
    store, operator = _state_of(config)
    grant = operator.add_grant("claude", "fs.write_file", 600, by="alice", max_uses=1)
    out = explained(config, "fs.write_file", {"path": "/tmp/x"})
    assert (out["preview"]["verdict"], out["preview"]["decided_by"]) == ("allow", f"grant:{grant.id}")
    lift = out["preview"]["lifted_by"]
    assert (lift["kind"], lift["ids"], lift["expires_at"]) == ("grant", [grant.id], grant.expires_at)
    assert out["state"].endswith("state.db (read only)")
    text = explain(config, "fs.write_file", {"path": "/tmp/x"}).output
    assert f"lifted by:  grant {grant.id}, until " in text
    [unspent] = operator.grants()
    assert unspent.uses == 0
    store.close()


async def test_explain_names_decision_memory_that_would_approve(config: Path) -> None:
    store, operator = _state_of(config)
    loaded = load_config(str(config))
    gate = Gate.open(loaded, store=store, sink=MemoryTraceSink())
    call = ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/tmp/x"})
    held = await gate.check(call)
    assert held.kind is VerdictKind.PENDING
    assert held.approval_id is not None
    operator.approve(held.approval_id, by="alice")
    assert (await gate.check(call)).decided_by == "human:alice"
    out = explained(config, "fs.write_file", {"path": "/tmp/x"})
    assert (out["preview"]["verdict"], out["preview"]["decided_by"]) == ("allow", "memory:1")
    assert out["preview"]["lifted_by"]["ids"] == [f.id for f in operator.facts()]
    await gate.aclose()


async def test_explain_opens_no_approval_and_counts_no_call(config: Path) -> None:
    store, operator = _state_of(config)
    operator.grants()  # state.db exists
    for _ in range(5):  # loop detection refuses the 4th identical call: previews are not calls
        assert explained(config, "fs.read_file", {"path": "/a"})["preview"]["verdict"] == "allow"
        assert explained(config, "fs.write_file", {"path": "/b"})["preview"]["verdict"] == "pending"
    assert operator.approvals() == []
    store.close()


def test_a_case_file_can_assert_the_guard(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "config: |\n  version: 1\n  state_dir: .agent-mesh\n  policies:\n"
        "    - {name: all, rules: [{tools: ['*'], action: allow}]}\n"
        "cases:\n"
        "  - name: the token is out of reach\n"
        "    call: {agent: claude, tool: fs.read_file, args: {path: .agent-mesh/operator.token}}\n"
        "    expect: {decision: deny, rule: guard/state-dir, verdict: deny}\n"
        "  - name: other files are not\n"
        "    call: {agent: claude, tool: fs.read_file, args: {path: notes.txt}}\n"
        "    expect: {decision: allow, rule: 'all/rules[0]', verdict: allow}\n"
    )
    result = CliRunner().invoke(cli, ["test", str(cases)])
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output
    assert not (tmp_path / ".agent-mesh").exists()


def test_a_case_that_expects_the_policy_where_the_guard_answers_fails(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "config: |\n  version: 1\n  policies:\n    - {name: all, rules: [{tools: ['*'], action: allow}]}\n"
        "cases:\n  - name: wrongly expects allow\n"
        "    call: {agent: claude, tool: sh.run, args: {command: 'cat .agent-mesh/state.db'}}\n"
        "    expect: {decision: allow}\n"
    )
    result = CliRunner().invoke(cli, ["test", str(cases)])
    assert result.exit_code == 1
    assert "got deny by guard/state-dir" in result.output


def test_a_human_approval_case_is_pending_on_the_empty_state(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "config: |\n  version: 1\n  policies:\n"
        "    - {name: p, rules: [{name: ask, tools: ['*'], action: human_approval}]}\n"
        "cases:\n  - name: asks\n    call: {agent: a, tool: x.y}\n"
        "    expect: {decision: human_approval, rule: p/ask, verdict: pending}\n"
    )
    result = CliRunner().invoke(cli, ["test", str(cases), "--json"])
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path) == ["cases.yaml"]
