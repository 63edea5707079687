"""The CLI's looks: plain text when piped, colour and a fitted table on a terminal, no colour under NO_COLOR."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy import Gate, ToolCall, VerdictKind, load_config
from policy.cli import cli
from policy.cli.look import paint, plain_table
from policy.trace import MemoryTraceSink
from tests.policy.gate.conftest import config_text

ESC = "\x1b["
LONG = "x" * 200


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(config_text(tmp_path / "state"))
    return path


@pytest.fixture
async def waiting(config: Path) -> str:
    """One call waiting for a human, with arguments far wider than any terminal."""
    gate = Gate.open(load_config(str(config)), sink=MemoryTraceSink())
    try:
        v = await gate.check(ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/srv/a", "content": LONG}))
    finally:
        await gate.aclose()
    assert v.kind is VerdictKind.PENDING
    assert v.approval_id is not None
    return v.approval_id


def on_a_terminal(argv: list[str], env: dict[str, str], columns: int = 70, *, stderr: bool = False) -> str:
    """Run a command with stdout (and stderr too, with `stderr`) on a pseudo-terminal `columns` wide;
    everything it printed there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    err = slave if stderr else subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdout=slave, stderr=err, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    return out.decode()


def terminal_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    return {**env, "TERM": "xterm-256color", **extra}


def agent_mesh(*args: str) -> list[str]:
    return [sys.executable, "-m", "policy.cli", *args]


def test_piped_output_is_the_plain_table_without_escape_codes(config: Path, waiting: str) -> None:
    out = CliRunner().invoke(cli, ["approvals", "list", "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert ESC not in out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATE", "AGENT", "TOOL", "ARGUMENTS", "ASKED"]
    assert lines[1].startswith(f'{waiting}  pending  claude  fs.write_file  {{"content": ')


def test_plain_tables_pad_columns_two_spaces_apart_and_trim_the_line_end() -> None:
    assert plain_table([["a", "bb"], ["ccc", ""]], ["X", "Y"]) == "X    Y\na    bb\nccc"


def test_a_terminal_gets_coloured_states_and_a_table_that_fits_its_width(config: Path, waiting: str) -> None:
    out = on_a_terminal(agent_mesh("approvals", "list", "--config", str(config)), terminal_env(), columns=70)
    assert f"{ESC}33mpending" in out  # waiting for a human: yellow
    row = next(line for line in out.splitlines() if waiting in line)
    assert "…" in row  # the arguments were cut to fit, the id was not
    assert max(len(strip_escapes(line)) for line in out.splitlines()) <= 70


def test_no_color_on_a_terminal_prints_no_escape_code_at_all(config: Path, waiting: str) -> None:
    argv = agent_mesh("approvals", "list", "--config", str(config))
    out = on_a_terminal(argv, terminal_env(NO_COLOR="1"), stderr=True)  # notes on stderr included
    assert ESC not in out
    assert waiting in out
    assert "pending" in out


def test_an_approval_card_on_a_terminal_paints_its_state(config: Path, waiting: str) -> None:
    out = on_a_terminal(agent_mesh("approvals", "show", waiting, "--config", str(config)), terminal_env())
    assert f"[{ESC}33mpending{ESC}0m]" in out


def test_force_color_styles_output_that_is_not_a_terminal(
    config: Path, waiting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "60")
    out = CliRunner().invoke(cli, ["approvals", "list", "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert "pending" in out.stdout
    assert ESC in out.stdout
    assert max(len(strip_escapes(line)) for line in out.stdout.splitlines()) <= 60


@pytest.mark.parametrize(
    ("value", "colour"), [("allow", "32"), ("deny", "31"), ("human_approval", "33"), ("pending", "33")]
)
def test_verdicts_are_painted_allow_green_deny_red_waiting_yellow(
    value: str, colour: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert f"{ESC}{colour}m" in paint(value)
    monkeypatch.setenv("NO_COLOR", "1")
    assert paint(value) == value


def strip_escapes(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text).rstrip("\r")


def test_explain_paints_its_verdict_and_decision_only_when_styling(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["explain", "--agent", "claude", "--tool", "fs.write_file", "--config", str(config)]
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    plain = CliRunner().invoke(cli, args)
    assert plain.exit_code == 0, plain.output
    assert ESC not in plain.stdout
    assert "decision:   human_approval\n" in plain.stdout
    monkeypatch.setenv("FORCE_COLOR", "1")
    painted = CliRunner().invoke(cli, args)
    assert f"decision:   {ESC}33mhuman_approval{ESC}0m" in painted.stdout


def test_traces_colour_the_verdict_column_and_keep_it_aligned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        {"ts": 1_800_000_000.0, "trace_id": "aaaa1111", "agent": "claude", "tool": "fs.read_file", "verdict": "allow"},
        {"ts": 1_800_000_001.0, "trace_id": "bbbb2222", "agent": "claude", "tool": "fs.rm", "verdict": "deny"},
    ]
    jsonl = tmp_path / "traces.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["traces", "query", "--traces", str(jsonl)]
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    plain = CliRunner().invoke(cli, args)
    assert plain.exit_code == 0, plain.output
    assert ESC not in plain.stdout
    monkeypatch.setenv("FORCE_COLOR", "1")
    painted = CliRunner().invoke(cli, args)
    assert f"{ESC}32mallow" in painted.stdout
    assert f"{ESC}31m{ESC}1mdeny" in painted.stdout
    assert [strip_escapes(line) for line in painted.stdout.splitlines()] == plain.stdout.splitlines()
