"""langchain-mcp-adapters, an agent framework on the MCP SDK 1.x client, through mcpwrap to the real
`everything` server: allowed, denied and human-approved calls, then the session closes cleanly. SDK 1.x
fails on a second answer to a call, so this is the regression test of issue 14 item 2 (mcpwrap answered calls
decided without suspending again on stdin close, and the crash lost the last records)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.proc import Proc, run
from tests.support.targets import ServerCommand, Targets

AGENT_MESH = Path(sys.executable).with_name("agent-mesh")
CLIENT = Path(__file__).with_name("langchain_client.py")
CONFIG = """
version: 1
state_dir: {state}
approval: {{hold_seconds: 60}}
policies:
  - name: langchain
    agent: langchain
    loop_detection: {{enabled: false}}
    rules:
      - tools: ["everything.echo"]
        action: allow
      - tools: ["everything.get-sum"]
        when: {{args.a: {{eq: 13}}}}
        action: deny
        reason: thirteen is unlucky
      - tools: ["everything.get-sum"]
        action: allow
      - tools: ["everything.get-env"]
        action: human_approval
"""
CALLS = [
    ["echo", {"message": "hello"}],
    ["get-sum", {"a": 1, "b": 2}],
    ["get-sum", {"a": 13, "b": 1}],
    ["get-env", {}],
]


def approve_when_pending(config: Path, tool: str, agent: Proc) -> None:
    """Approve the held call with `agent-mesh approvals approve` once it is queued (bounded wait)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and agent.alive:
        listed = run([AGENT_MESH, "approvals", "list", "--config", config, "--json"]).stdout
        pending = [a for a in json.loads(listed) if a["tool"] == tool]
        if pending:
            run([AGENT_MESH, "approvals", "approve", pending[0]["id"], "--config", config, "--by", "alice"])
            return
        time.sleep(0.1)  # the store has no event to wait on across processes
    raise AssertionError(f"no approval for {tool} appeared:\n{agent.output()}")


def test_a_langchain_agent_closes_its_session_cleanly_and_every_call_is_recorded_once(
    targets: Targets, tmp_path: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state"))
    server = stdio_server("everything")
    wrapped = [sys.executable, "-m", "mcpwrap", "--config", str(config), "--agent", "langchain"]
    wrapped += ["--server", "everything", "--", *server.argv]
    python = targets.venv_bin("langchain", "python")
    with Proc([python, CLIENT, json.dumps(wrapped), json.dumps(CALLS)], name="langchain-agent") as agent:
        approve_when_pending(config, "get-env", agent)
        status = agent.wait_exit(timeout=60)
    output = agent.output()
    assert status == 0, output
    assert "Traceback" not in output, output
    result: dict[str, Any] = json.loads(next(line for line in reversed(agent.lines) if line.startswith("{")))
    assert {"echo", "get-sum", "get-env"} <= set(result["tools"])
    echo, sum_ok, sum_denied, env = result["calls"]
    assert "hello" in echo["result"]
    assert "3" in sum_ok["result"]
    assert "thirteen is unlucky" in (sum_denied.get("error") or sum_denied["result"])  # the agent reads why
    assert "result" in env
    lines = (tmp_path / "state" / "traces.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if r.get("kind") != "event"]
    assert [(r["tool"], r["verdict"], r["outcome"]) for r in records] == [
        ("everything.echo", "allow", "ok"),
        ("everything.get-sum", "allow", "ok"),
        ("everything.get-sum", "deny", "refused"),
        ("everything.get-env", "allow", "ok"),
    ]
    assert records[-1]["decided_by"] == "human:alice"
