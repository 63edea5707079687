"""The common commands start fast because they import only what they use (bench/cli.py measures the time;
this checks the cause, without timing): no mitmproxy, uvicorn, rich or trace writer for `check`,
`approvals list` or `grants list` when the output is piped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("mitmproxy", "uvicorn", "starlette", "rich", "addons", "mcpwrap", "opentelemetry.sdk", "policy.control")
PROBE = """
import json, sys
from policy.cli import cli
try:
    cli.main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_loaded(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("command", [["check"], ["approvals", "list"], ["grants", "list"]])
def test_a_common_command_imports_no_adapter_server_or_styling(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n")
    loaded = modules_loaded(*command, "--config", str(config))
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []


def test_check_does_not_open_the_gate_or_the_trace(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n")
    loaded = modules_loaded("check", "--config", str(config))
    assert "policy.gate.gate" not in loaded
    assert "policy.trace.append" not in loaded
