"""The reference example at the top of docs/policies.md is a config `agent-mesh check --strict` accepts:
no error, no warning (a reader copies it as their first agent-mesh.yaml)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "policies.md"
AGENT_MESH = Path(sys.executable).with_name("agent-mesh")


def test_the_reference_example_passes_check_strict(tmp_path: Path) -> None:
    text = PAGE.read_text("utf-8")
    start = text.index("```yaml\n") + len("```yaml\n")
    (tmp_path / "agent-mesh.yaml").write_text(text[start : text.index("```\n", start)], "utf-8")
    (tmp_path / "policies").mkdir()  # its policy_dir
    env = {**os.environ, "CLAUDE_MESH_TOKEN": "a-token-for-the-test"}
    argv = [str(AGENT_MESH), "check", "--config", str(tmp_path / "agent-mesh.yaml"), "--strict"]
    ran = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "warning" not in ran.stdout + ran.stderr
