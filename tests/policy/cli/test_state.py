"""`agent-mesh approvals | grants | memory` on a real state dir, as a human at a terminal would use them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policy import Gate, SqliteStore, ToolCall, Verdict, VerdictKind, load_config
from policy.cli import cli
from policy.trace import MemoryTraceSink
from tests.policy.gate.conftest import config_text

WRITE = ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/srv/a.txt", "content": "hello"})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(config_text(tmp_path / "state"))
    return path


async def pending(config: Path, call: ToolCall = WRITE) -> tuple[Gate, Verdict]:
    gate = Gate.open(load_config(str(config)), sink=MemoryTraceSink())
    v = await gate.check(call)
    assert v.kind is VerdictKind.PENDING
    assert v.approval_id is not None
    return gate, v


def run(config: Path, *args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, [*args, "--config", str(config)], input=input)
    return result


async def test_list_show_and_approve_a_waiting_call(config: Path) -> None:
    gate, v = await pending(config)
    assert v.approval_id is not None
    listed = run(config, "approvals", "list")
    assert listed.exit_code == 0, listed.output
    assert v.approval_id in listed.output
    assert "fs.write_file" in listed.output
    shown = run(config, "approvals", "show", v.approval_id[:6])
    assert '"content": "hello"' in shown.output
    assert "[pending]" in shown.output
    ok = run(config, "approvals", "approve", v.approval_id[:6], "--reason", "fine", "--by", "alice")
    assert ok.exit_code == 0, ok.output
    assert f"approved {v.approval_id}" in ok.output
    assert (await gate.check(WRITE)).decided_by == "human:alice"
    await gate.aclose()


async def test_approving_twice_is_a_clean_error(config: Path) -> None:
    gate, v = await pending(config)
    assert v.approval_id is not None
    assert run(config, "approvals", "deny", v.approval_id, "--by", "bob").exit_code == 0
    again = run(config, "approvals", "approve", v.approval_id, "--by", "alice")
    assert again.exit_code == 1
    assert "already denied by bob" in again.output
    assert "Traceback" not in again.output
    await gate.aclose()


async def test_approve_for_a_while_prints_the_grant_and_json_has_both(config: Path) -> None:
    gate, v = await pending(config)
    assert v.approval_id is not None
    out = run(config, "approvals", "approve", v.approval_id, "--for", "30m", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["approval"]["state"] == "approved"
    assert data["grant"]["tool"] == "fs.write_file"
    assert data["grant"]["expires_at"] - data["grant"]["created_at"] == 1800
    await gate.aclose()


def test_bad_input_gets_a_precise_message(config: Path) -> None:
    short = run(config, "approvals", "approve", "abc")
    assert short.exit_code == 1
    assert "at least 6 characters" in short.output
    fresh = run(config, "approvals", "show", "abcdef")  # read-only: a mesh that never ran gets no state dir
    assert fresh.exit_code == 1
    assert f"no state yet at {config.parent / 'state'}" in fresh.output
    assert not (config.parent / "state").exists()
    assert run(config, "grants", "add", "--agent", "a", "--tool", "t", "--for", "1m").exit_code == 0
    missing = run(config, "approvals", "show", "abcdef")
    assert "no approval id starts with 'abcdef'" in missing.output
    bad_for = run(config, "approvals", "approve", "abcdef", "--for", "soon")
    assert bad_for.exit_code == 2
    assert "'soon' is not a duration" in bad_for.output


async def test_watch_prompts_with_the_arguments_and_records_the_decision(config: Path) -> None:
    gate, v = await pending(config)
    out = run(config, "approvals", "watch", "--by", "carol", "--count", "1", input="d\ntoo risky\n")
    assert out.exit_code == 0, out.output
    assert '"path": "/srv/a.txt"' in out.output
    assert f"denied {v.approval_id}" in out.output
    refused = await gate.check(WRITE)
    assert (refused.kind, refused.decided_by) == (VerdictKind.DENY, "human:carol")
    assert "too risky" in refused.reason
    await gate.aclose()


async def test_grants_add_list_and_revoke(config: Path) -> None:
    when = '{"args.path": {"glob": "/srv/**"}}'
    add = run(config, "grants", "add", "--agent", "claude", "--tool", "fs.write_*", "--for", "1h", "--when", when,
              "--max-uses", "3", "--json")  # fmt: skip
    assert add.exit_code == 0, add.output
    grant_id = json.loads(add.output)["id"]
    gate = Gate.open(load_config(str(config)), sink=MemoryTraceSink())
    assert (await gate.check(WRITE)).decided_by == f"grant:{grant_id}"
    listed = run(config, "grants", "list")
    assert grant_id in listed.output
    assert "1/3" in listed.output
    assert run(config, "grants", "revoke", grant_id[:6]).exit_code == 0
    assert run(config, "grants", "list").stdout.strip() == "no active grants"
    assert "revoked" in run(config, "grants", "list", "--all").output
    await gate.aclose()


def test_a_grant_with_a_bad_condition_is_refused(config: Path) -> None:
    out = run(config, "grants", "add", "--agent", "claude", "--tool", "fs.*", "--for", "1h",
              "--when", '{"args.path": {"globby": "x"}}')  # fmt: skip
    assert out.exit_code == 1
    assert "when.args.path.globby: unknown operator 'globby'" in out.output


async def test_memory_list_and_forget(config: Path) -> None:
    gate, v = await pending(config)
    assert v.approval_id is not None
    run(config, "approvals", "approve", v.approval_id, "--by", "alice", "--reason", "routine")
    listed = run(config, "memory", "list", "--json")
    [fact] = json.loads(listed.output)
    assert (fact["decision"], fact["by"], fact["reason"]) == ("approve", "alice", "routine")
    assert fact["tool"] == "fs.write_file"
    assert "alice" in run(config, "memory", "list").output
    forgot = run(config, "memory", "forget", fact["id"][:8])
    assert forgot.output.strip() == "forgot 1 decision"
    assert run(config, "memory", "list").output.strip() == "no remembered decisions"
    nothing = run(config, "memory", "forget")
    assert nothing.exit_code == 1
    assert "name what to forget" in nothing.output
    await gate.aclose()


def test_a_broken_state_db_is_a_clean_error(config: Path, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o700)  # an open state dir is refused before its file is read
    (tmp_path / "state" / "state.db").write_bytes(b"junk" * 1000)
    out = run(config, "approvals", "list")
    assert out.exit_code == 1
    assert "corrupt" in out.output
    assert "Traceback" not in out.output
    SqliteStore(tmp_path / "state").close()
