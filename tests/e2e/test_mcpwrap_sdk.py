"""The Python SDK client, in both protocol eras, through mcpwrap to the real time and git servers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.support.targets import ServerCommand

MODES = ["legacy", "2026-07-28"]

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: claude
    agent: claude
    rules:
      - tools: ["time.get_current_time", "git.git_status", "git.git_log"]
        action: allow
      - tools: ["time.convert_time", "git.git_reset"]
        action: deny
        reason: not for agents
      - tools: ["git.git_commit"]
        when: {{args.message: {{regex: "^fix"}}}}
        action: allow
      - tools: ["git.git_commit"]
        action: deny
"""


def wrapped(cmd: ServerCommand, config: Path, server: str) -> StdioServerParameters:
    args = ["-m", "mcpwrap", "--config", str(config), "--agent", "claude", "--server", server, "--", *cmd.argv]
    return StdioServerParameters(command=sys.executable, args=args, env=cmd.env or None)


def traces(state: Path) -> list[dict[str, Any]]:
    lines = (state / "traces.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") != "event"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    return path


@pytest.mark.parametrize("mode", MODES)
async def test_the_time_server_answers_allowed_calls_and_mcpwrap_refuses_denied_ones(
    mode: str, config: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    async with Client(wrapped(stdio_server("time"), config, "time"), mode=mode) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        allowed = await client.call_tool("get_current_time", {"timezone": "UTC"})
        denied = await client.call_tool(
            "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"}
        )
    assert listed == ["get_current_time"]
    assert not allowed.is_error
    assert "UTC" in allowed.content[0].text
    assert denied.is_error
    assert "agent-mesh denied this call: not for agents" in denied.content[0].text
    assert denied.meta is not None
    assert denied.meta["agent-mesh/refusal"]["code"] == "denied"
    records = traces(config.parent / "state")
    assert [(r["tool"], r["verdict"], r["outcome"]) for r in records] == [
        ("time.get_current_time", "allow", "ok"),
        ("time.convert_time", "deny", "refused"),
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_the_git_server_runs_allowed_calls_and_argument_rules_decide_commits(
    mode: str, config: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    cmd = stdio_server("git")
    repo = cmd.argv[cmd.argv.index("--repository") + 1]
    (Path(repo) / "new.txt").write_text("x\n")
    async with Client(wrapped(cmd, config, "git"), mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        status = await client.call_tool("git_status", {"repo_path": repo})
        bad = await client.call_tool("git_commit", {"repo_path": repo, "message": "wip"})
        reset = await client.call_tool("git_reset", {"repo_path": repo})
    assert "git_reset" not in names
    assert "git_commit" in names  # some commits are allowed, so the tool stays listed
    assert not status.is_error
    assert "new.txt" in status.content[0].text
    assert bad.is_error
    assert reset.is_error
    verdicts = [(r["tool"], r["verdict"]) for r in traces(config.parent / "state")]
    assert verdicts == [("git.git_status", "allow"), ("git.git_commit", "deny"), ("git.git_reset", "deny")]
