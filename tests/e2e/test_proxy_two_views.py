"""One policy, two views: `@modelcontextprotocol/server-github` (stdio, under mcpwrap) sends its REST calls
through `agent-mesh proxy` to a Prism mock of GitHub's spec. A rule on the MCP tool and a rule on the REST
operation both apply, and the trace links both views of each call by agent and session: mcpwrap tags the
server's proxy credentials with its own session id."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.e2e.proxy_harness import client_env, running_proxy
from tests.support.targets import ServerCommand, Targets

MCPWRAP = str(Path(sys.executable).with_name("mcpwrap"))
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  github: {{openapi: "{spec}", upstream: "{upstream}"}}
policies:
  - name: claude
    agent: claude
    loop_detection: {{enabled: false}}
    rules:
      - {{name: mcp-reads, tools: ["gh.list_issues", "gh.get_issue"], action: allow}}
      - {{name: mcp-writes, tools: ["gh.create_issue"], action: allow}}
      - {{name: mcp-no-push, tools: ["gh.push_files"], action: deny, reason: no pushes from agents}}
      - {{name: rest-reads, tools: ["github.issues/list-for-repo", "github.issues/get"], action: allow}}
      - {{name: rest-no-issues, tools: ["github.issues/create"], action: deny, reason: issues are filed by humans}}
"""


async def call(client: Client, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
    """(succeeded, text): this server reports tool failures as JSON-RPC errors, mcpwrap as isError results."""
    try:
        result = await client.call_tool(tool, args)
    except MCPError as exc:
        return False, str(exc)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    return not result.is_error, text


def records(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "traces.jsonl").read_text().splitlines()]


async def test_a_rule_on_the_mcp_tool_and_a_rule_on_the_rest_operation_both_apply(
    targets: Targets, github_api: str, stdio_server: Callable[[str], ServerCommand], tmp_path: Path
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    # api.github.com is offline here: the proxy judges the request as GitHub's (the spec's URL), and sends it to
    # the Prism mock standing in for it (servers.github.upstream).
    config.write_text(CONFIG.format(spec=targets.spec("github"), upstream=github_api))
    github = stdio_server("github")
    # Prism serves `application/json`, not GitHub's vendor media type.
    mitm = ["--set", "modify_headers=|~q|Accept|application/json"]
    with running_proxy(config, *mitm) as proxy:
        env = client_env(dict(os.environ), proxy.env("claude"))
        env |= github.env | {"NODE_OPTIONS": f"--require={targets.node_proxy_preload}"}
        wrapped = [MCPWRAP, "--config", str(config), "--agent", "claude", "--server", "gh", "--", *github.argv]
        params = StdioServerParameters(command=wrapped[0], args=wrapped[1:], env=env)
        async with Client(params, mode="legacy") as client:
            repo = {"owner": "octocat", "repo": "hello-world"}
            listed = await call(client, "list_issues", repo)
            created = await call(client, "create_issue", {**repo, "title": "x"})
            pushed = await call(client, "push_files", {**repo, "branch": "main", "files": [], "message": "m"})
    assert listed[0], listed[1]
    assert not created[0]
    assert "issues are filed by humans" in created[1]  # the proxy's reason, as `message` in application/json
    assert not pushed[0]
    assert "no pushes from agents" in pushed[1]
    calls = [r for r in records(tmp_path / "state") if r.get("kind") != "event"]
    seen = [(r["surface"], r["tool"], r["verdict"]) for r in calls]
    assert ("mcp_stdio", "gh.list_issues", "allow") in seen
    assert ("openapi", "github.issues/list-for-repo", "allow") in seen
    assert ("mcp_stdio", "gh.create_issue", "allow") in seen
    assert ("openapi", "github.issues/create", "deny") in seen
    assert ("mcp_stdio", "gh.push_files", "deny") in seen
    assert not any(r["tool"].startswith("github.git/") for r in calls)  # the denied push never reached REST
    assert {r["agent"] for r in calls} == {"claude"}
    sessions = {r["session_id"] for r in calls}
    assert len(sessions) == 1, sessions
    assert next(iter(sessions)).startswith("mcpwrap-")
