"""`mcpwrap exec` under a policy that allows every command: an agent's shell still cannot rewrite the policy it
runs under (the config, a policy_dir file, the registry of the active mesh) nor run the operator's commands.
Real processes, the registry found through `$XDG_CONFIG_HOME` as every command finds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
version: 1
state_dir: {state}
policy_dir: policies
policies:
  - name: all
    agent: "*"
    rules:
      - {{tools: ["*"], action: allow}}
"""


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "xdg" / "agent-mesh").mkdir(parents=True)
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    registry = tmp_path / "xdg" / "agent-mesh" / "active.json"
    registry.write_text(json.dumps({"format": 1, "config": str(path), "by": "test"}))
    registry.chmod(0o600)
    return tmp_path


def mcpwrap_exec(mesh: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(mesh / "xdg"), "AGENT_MESH_CONFIG": ""}
    cmd = [sys.executable, "-m", "mcpwrap", "exec", "--agent", "claude", "--", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, cwd=mesh, env=env)


def test_an_allowed_command_runs_under_the_registered_mesh(mesh: Path) -> None:
    assert mcpwrap_exec(mesh, "sh", "-c", "echo ok > note.txt").returncode == 0
    assert (mesh / "note.txt").read_text() == "ok\n"


@pytest.mark.parametrize(
    "script",
    [
        "echo 'policies: []' > agent-mesh.yaml",
        "printf 'name: x\\nrules: []\\n' > policies/zz.yaml",
        "echo '{}' > xdg/agent-mesh/active.json",
        "mv xdg xdg.old && mkdir -p xdg/agent-mesh",
    ],
)
def test_a_shell_line_writing_the_policy_files_is_refused_and_they_stay(mesh: Path, script: str) -> None:
    before = {p: p.read_bytes() for p in (mesh / "agent-mesh.yaml", mesh / "xdg" / "agent-mesh" / "active.json")}
    done = mcpwrap_exec(mesh, "sh", "-c", script)
    assert done.returncode == 126, done.stderr
    assert "guard/state-dir" in done.stderr or "chooses the policy" in done.stderr or "agent-mesh" in done.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert list((mesh / "policies").iterdir()) == []


def test_the_operators_commands_are_refused_to_the_agent(mesh: Path) -> None:
    registry = (mesh / "xdg" / "agent-mesh" / "active.json").read_bytes()
    mesh_cli = str(Path(sys.executable).with_name("agent-mesh"))
    done = mcpwrap_exec(mesh, mesh_cli, "use", "--default")
    assert done.returncode == 126, done.stderr
    assert (mesh / "xdg" / "agent-mesh" / "active.json").read_bytes() == registry
