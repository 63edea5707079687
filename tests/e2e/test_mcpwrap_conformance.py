"""The MCP conformance suite through mcp-proxy: a server wrapped by mcpwrap scores exactly as it does bare."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.net import free_port
from tests.support.proc import Proc
from tests.support.targets import Targets

MCPWRAP = str(Path(sys.executable).with_name("mcpwrap"))
START_SECONDS = 60.0
SUITE_SECONDS = 300.0
STAMP = re.compile(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$")  # result folders end with a timestamp

ALLOW_ALL = """
version: 1
state_dir: {state}
policies:
  - name: conformance
    agent: "*"
    loop_detection: {{enabled: false}}
    rules:
      - {{tools: ["*"], action: allow}}
"""


def scores(targets: Targets, server: list[str], out: Path) -> dict[str, dict[str, str]]:
    """Run the server scenarios against `mcp-proxy -- server`; {scenario: {check id: status}}."""
    port = free_port()
    proxy = [targets.venv_bin("mcp-proxy"), "--host", "127.0.0.1", "--port", str(port), "--", *server]
    with Proc(proxy, name=out.name) as proc:
        proc.wait_for_port(port, timeout=START_SECONDS)
        suite = [targets.node22, targets.npm_bin("conformance"), "server", "--url", f"http://127.0.0.1:{port}/mcp"]
        subprocess.run([*suite, "-o", out], capture_output=True, timeout=SUITE_SECONDS, check=False)
    results: dict[str, dict[str, str]] = {}
    for checks in sorted(out.glob("*/checks.json")):
        scenario = STAMP.sub("", checks.parent.name)
        results[scenario] = {c["id"]: c["status"] for c in json.loads(checks.read_text())}
    return results


def test_the_everything_server_scores_the_same_wrapped_as_bare(targets: Targets, tmp_path: Path) -> None:
    server = [str(targets.node20), str(targets.npm_bin("mcp-server-everything")), "stdio"]
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(ALLOW_ALL.format(state=tmp_path / "state"))
    bare = scores(targets, server, tmp_path / "bare")
    wrapped = scores(
        targets, [MCPWRAP, "--config", str(config), "--server", "everything", "--", *server], tmp_path / "wrapped"
    )
    assert len(bare) > 20
    assert any(status == "SUCCESS" for checks in bare.values() for status in checks.values())
    assert wrapped == bare
    calls = [json.loads(line) for line in (tmp_path / "state" / "traces.jsonl").read_text().splitlines()]
    assert any(r["tool"].startswith("everything.") and r["verdict"] == "allow" for r in calls)
