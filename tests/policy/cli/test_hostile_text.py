"""What an agent names is printed to the operator's terminal by `traces tail|query|sessions`, `status` and
`approvals list|show`: a tool name, an agent-chosen session id (the proxy user `AGENT/SESSION` is the agent's to
write) or a server's name or error text holding terminal escapes (`ESC[2K`, a carriage return, OSC 52) could erase
the line of a denied call or paint another one. Every control, bidi and invisible character is printed as a
visible escape; `--json` keeps the exact text."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policy import Gate, Outcome, ToolCall, load_config
from policy.cli import cli
from policy.store.board import Process, SqliteBoard, this_host

CONFIG = """
version: 1
state_dir: state
policies:
  - name: dev
    agent: "claude*"
    rules:
      - {name: never, tools: ["fs.delete*"], action: deny}
"""
HIDE = "\r\x1b[2K2026-01-01 00:00:00  claude  fs.read_file  allow"  # erase the line, print a harmless one
SESSION = "s\x1b]52;c;ZXZpbA==\x07\u202e"  # OSC 52 writes the clipboard; a right-to-left override
CALLS = [ToolCall("claude", "mcp_stdio", "fs", "delete_file" + HIDE, {"path": "/etc/passwd"}, session_id=SESSION)]


@pytest.fixture
async def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    gate = Gate.open(load_config(str(path)))
    for call in CALLS:
        verdict = await gate.check(call)
        gate.finish(call, verdict, Outcome(forwarded=verdict.allowed))
    await gate.aclose()
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


@pytest.mark.parametrize("args", [("traces", "tail"), ("traces", "query"), ("traces", "sessions")])
def test_terminal_escapes_an_agent_chose_are_printed_as_visible_escapes(config: Path, args: tuple[str, ...]) -> None:
    result = run(config, *args)
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\r", "\x07", "\u202e"):
        assert raw not in result.output
    assert "\\x1b" in result.output


def test_the_json_output_keeps_the_exact_names(config: Path) -> None:
    result = run(config, "traces", "query", "--json")
    assert result.exit_code == 0, result.output
    assert "delete_file\\r\\u001b[2K" in result.output


def test_status_prints_a_server_name_with_escapes_as_visible_escapes(config: Path) -> None:
    # mcpwrap reports the name the server introduced itself with (initialize's serverInfo): the server's to choose
    loaded = load_config(str(config))
    board = SqliteBoard(loaded.config.state_dir)
    now = time.time()
    board.beat(Process(this_host(), os.getpid(), "mcpwrap", "fs" + HIDE, "claude" + SESSION, now, now, "0" * 16,
                       str(config.resolve()), "bad\x1b[8m"))  # fmt: skip
    board.close()
    result = run(config, "status")
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\r", "\x07", "\u202e"):
        assert raw not in result.output
    assert "fs\\x0d\\x1b[2K" in result.output


def test_approvals_list_prints_a_tool_name_with_escapes_as_visible_escapes(tmp_path: Path) -> None:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.replace("action: deny", "action: human_approval"))
    board_calls = [ToolCall("claude", "mcp_stdio", "fs", "delete_file" + HIDE, {"path": "/x" + SESSION})]

    async def ask() -> None:
        gate = Gate.open(load_config(str(path)))
        for call in board_calls:
            await gate.check(call)
        await gate.aclose()

    asyncio.run(ask())
    listed = run(path, "approvals", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (approval,) = (
        json.loads(listed.output) if listed.output.lstrip().startswith("[") else json.loads(listed.output)["approvals"]
    )
    for args in (("approvals", "list"), ("approvals", "show", approval["id"])):
        result = run(path, *args)
        assert result.exit_code == 0, result.output
        assert "delete_file" in result.output
        for raw in ("\x1b", "\r", "\x07", "\u202e"):
            assert raw not in result.output
