"""`mcpwrap exec` as a process: allowed commands become themselves, refused and missing ones do not run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcpwrap.execute import command_call

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: all
    agent: "*"
    rules:
      - {{tools: ["sh"], action: allow}}
      - {{tools: ["true", "no-such-binary-here", "notexec"], action: allow}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    return path


def mcpwrap_exec(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mcpwrap", "exec", "--config", str(config), "--", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_an_allowed_command_keeps_its_own_exit_status_and_output(config: Path) -> None:
    done = mcpwrap_exec(config, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (done.returncode, done.stdout, done.stderr) == (7, "out\n", "err\n")


def test_a_command_no_rule_allows_exits_126_without_running(config: Path, tmp_path: Path) -> None:
    done = mcpwrap_exec(config, "touch", str(tmp_path / "made"))
    assert done.returncode == 126
    assert "denied by default" in done.stderr
    assert not (tmp_path / "made").exists()


def test_an_allowed_command_that_does_not_exist_exits_127(config: Path) -> None:
    done = mcpwrap_exec(config, "no-such-binary-here")
    assert done.returncode == 127
    assert "command not found" in done.stderr


def test_a_file_that_cannot_be_executed_exits_126_with_a_message(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "notexec"
    target.write_text("\x7fELF garbage")
    target.chmod(0o755)
    done = mcpwrap_exec(config, str(target))
    assert done.returncode == 126
    assert "cannot run" in done.stderr


def test_the_call_carries_argv_with_the_binary_basename_and_the_working_directory() -> None:
    call = command_call(["/usr/bin/git", "-C", "r", "push"], agent="a", session_id="s", cwd="/w")
    assert (call.full_name, call.surface) == ("git.push", "cli")
    assert (call.arguments["argv"], call.arguments["cwd"]) == (["git", "-C", "r", "push"], "/w")
    # what git's parser adds (mcpwrap/argv.py): the file that runs, the subcommand, whether it forces
    assert (call.arguments["program"], call.arguments["subcommand"], call.arguments["force"]) == (
        "/usr/bin/git",
        "push",
        False,
    )


def test_a_held_command_shows_its_approval_id_and_the_identical_rerun_passes_once_approved(tmp_path: Path) -> None:
    config = tmp_path / "held.yaml"
    config.write_text(
        f"version: 1\nstate_dir: {tmp_path / 'state'}\napproval: {{hold_seconds: 0.2}}\n"
        "policies:\n  - name: p\n    agent: '*'\n    rules:\n      - {tools: [sh], action: human_approval}\n"
    )
    first = mcpwrap_exec(config, "sh", "-c", "exit 3")
    assert first.returncode == 126
    approval = re.search(r"agent-mesh approvals approve ([0-9a-f]+)", first.stderr)
    assert approval is not None, first.stderr
    mesh = Path(sys.executable).with_name("agent-mesh")
    subprocess.run([mesh, "approvals", "approve", approval.group(1), "--config", str(config)], check=True, timeout=60)
    assert mcpwrap_exec(config, "sh", "-c", "exit 3").returncode == 3
    assert mcpwrap_exec(config, "sh", "-c", "exit 3").returncode == 126
