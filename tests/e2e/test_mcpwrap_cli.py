"""`mcpwrap exec` and shims around the real git: refusals exit 126, allowed runs keep git's own status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.targets import make_git_repo

MCPWRAP = str(Path(sys.executable).with_name("mcpwrap"))
RUN_SECONDS = 30

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: agent
    agent: "*"
    rules:
      - tools: ["git.push"]
        when: {{args.argv: {{contains: "--force"}}}}
        action: deny
        reason: no force pushes
      - tools: ["git.status", "git.log", "git.rev-parse", "git.push"]
        action: allow
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_git_repo(tmp_path / "repo")


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_SECONDS, check=False)


def traces(config: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (config.parent / "state" / "traces.jsonl").read_text().splitlines()]


def test_a_force_push_is_refused_with_126_and_the_reason_on_stderr(config: Path, repo: Path) -> None:
    done = run([MCPWRAP, "exec", "--config", str(config), "--", "git", "-C", str(repo), "push", "--force"], repo)
    assert done.returncode == 126
    assert "no force pushes" in done.stderr
    assert done.stdout == ""
    assert traces(config)[-1]["tool"] == "git.push"
    assert traces(config)[-1]["verdict"] == "deny"


def test_an_allowed_command_runs_with_gits_own_output_and_exit_status(config: Path, repo: Path) -> None:
    ok = run([MCPWRAP, "exec", "--config", str(config), "--", "git", "status", "--short"], repo)
    assert ok.returncode == 0, ok.stderr
    failing = run([MCPWRAP, "exec", "--config", str(config), "--", "git", "rev-parse", "--verify", "nope"], repo)
    assert failing.returncode == 128  # git's own status for a bad revision
    assert [r["verdict"] for r in traces(config)] == ["allow", "allow"]


def test_a_command_no_rule_allows_is_refused_by_default(config: Path, repo: Path) -> None:
    done = run([MCPWRAP, "exec", "--config", str(config), "--", "git", "commit", "-m", "x"], repo)
    assert done.returncode == 126
    assert "denied by default" in done.stderr


def test_a_shim_directory_governs_git_for_a_script_that_only_has_it_on_path(
    config: Path, repo: Path, tmp_path: Path
) -> None:
    shims = tmp_path / "shims"
    made = run([MCPWRAP, "shims", "--dir", str(shims), "--config", str(config), "--agent", "bot", "git"], repo)
    assert made.returncode == 0, made.stderr
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\ngit status --short && git push --force origin main\necho after=$?\n")
    script.chmod(0o755)
    env = os.environ | {"PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"}
    done = run([str(script)], repo, env)
    assert done.stdout.strip().endswith("after=126"), done.stdout + done.stderr
    assert "no force pushes" in done.stderr
    assert [(r["agent"], r["tool"], r["verdict"]) for r in traces(config)] == [
        ("bot", "git.status", "allow"),
        ("bot", "git.push", "deny"),
    ]
