"""The GitHub story: one policy for both views of GitHub. An agent uses the real GitHub MCP server
(`@modelcontextprotocol/server-github`, stdio, under mcpwrap); that server's own REST calls to
api.github.com go through `agent-mesh serve`'s proxy (here sent to a Prism mock of GitHub's real OpenAPI
spec: one `upstream:` line on the server entry). A rule on the MCP tool (`github.create_issue`) and a rule on
the REST operation (`github.issues/create`) both apply: the MCP view allows creating issues, the REST view
refuses urgent ones (the mesh answers JSON with a `message`, so server-github shows the agent the mesh's
reason), and the trace shows both views of each call under the same agent and session.

Needs the test targets (`make targets`: Node, server-github, Prism, @octokit/openapi); runs offline:

    .venv/bin/python recipes/github_story.py
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

ROOT = Path(__file__).resolve().parents[1]
NPM = ROOT / ".targets" / "npm" / "node_modules"
SPEC = NPM / "@octokit" / "openapi" / "generated" / "api.github.com.json"
BIN = Path(sys.executable).parent
TOKEN = "github-story-operator-token-0123"
PRISM_SECONDS = 120.0
WAIT_SECONDS = 30.0

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: story-agent-token}}}}
servers:
  # judged as api.github.com (the spec's URL), sent to the Prism mock
  github: {{openapi: {spec}, upstream: "http://127.0.0.1:{prism}"}}
policies:
  - name: claude
    agent: claude
    rules:
      # the MCP view: the tools server-github offers
      - {{name: mcp-reads, tools: ["github.search_*", "github.get_*", "github.list_*"], action: allow}}
      - {{name: mcp-issues, tools: ["github.create_issue"], action: allow}}
      # the REST view: the calls server-github makes to api.github.com, by OpenAPI operationId
      - {{name: rest-search, tools: ["github.search/repos"], action: allow}}
      - {{name: rest-no-urgent-issues, tools: ["github.issues/create"], when: {{args.title: {{regex: "(?i)urgent"}}}},
          action: deny, reason: urgent issues are filed by the on-call human}}
      - {{name: rest-issues, tools: ["github.issues/create"], action: allow}}
"""
# Node 20's fetch ignores HTTPS_PROXY: route it through undici's EnvHttpProxyAgent (Node 22: NODE_USE_ENV_PROXY).
PRELOAD = """const undici = require({undici});
undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def started(argv: list[str], ready: str, seconds: float, name: str) -> Iterator[subprocess.Popen[str]]:
    """A server in its own process group, running once a line containing `ready` is printed; stopped after."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + seconds
        assert proc.stdout is not None
        for line in proc.stdout:
            if ready in line:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not start within {seconds:g}s")
        else:
            raise RuntimeError(f"{name} exited ({proc.wait()}) before it was ready")
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def text_of(result: CallToolResult) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def agent(params: StdioServerParameters, out: list[str]) -> dict[str, tuple[bool, str]]:
    """The agent's side: three MCP calls to the GitHub server; (succeeded, text) for each."""
    results: dict[str, tuple[bool, str]] = {}
    async with Client(params, mode="legacy") as client:
        calls = {
            "search": ("search_repositories", {"query": "agent mesh"}),
            "urgent": ("create_issue", {"owner": "octo", "repo": "site", "title": "URGENT: prod is down"}),
            "typo": ("create_issue", {"owner": "octo", "repo": "site", "title": "Fix a typo in the docs"}),
        }
        for name, (tool, args) in calls.items():
            try:
                result = await client.call_tool(tool, args)
                results[name] = (not result.is_error, text_of(result))
            except MCPError as exc:  # server-github reports a failed GitHub request as a JSON-RPC error
                results[name] = (False, str(exc))
            ok, text = results[name]
            out.append(f"agent: {tool} {json.dumps(args)} -> {'ok' if ok else 'error'}: {text[:100]!r}")
    return results


def story(out: list[str]) -> list[str]:
    node = shutil.which("node")
    needed = [NPM / ".bin" / "prism", NPM / ".bin" / "mcp-server-github", SPEC, NPM / "undici"]
    if node is None or not all(p.exists() for p in needed):
        return ["the test targets are missing: run `make targets`"]
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="am-github-") as tmp:
        folder = Path(tmp)
        prism, proxy, control = free_port(), free_port(), free_port()
        config = folder / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=folder / "state", spec=SPEC, prism=prism))
        preload = folder / "proxy-preload.cjs"
        preload.write_text(PRELOAD.format(undici=json.dumps(str(NPM / "undici"))))
        prism_argv = [node, str((NPM / ".bin" / "prism").resolve()), "mock", "-h", "127.0.0.1", "-p", str(prism),
                      str(SPEC)]  # fmt: skip
        serve_argv = [
            str(BIN / "agent-mesh"), "serve", "--config", str(config), "--listen-proxy", f"127.0.0.1:{proxy}",
            "--listen-control", f"127.0.0.1:{control}", "--token", TOKEN,
            # Prism does not serve GitHub's vnd media type: ask it for application/json.
            "--set", "modify_headers=/~q/Accept/application/json",
        ]  # fmt: skip
        with (
            started(prism_argv, "Prism is listening", PRISM_SECONDS, "prism"),
            started(serve_argv, "Ctrl-C stops", WAIT_SECONDS, "agent-mesh serve"),
        ):
            env_cmd = [str(BIN / "agent-mesh"), "env", "--config", str(config), "--agent", "claude",
                       "--listen", f"127.0.0.1:{proxy}", "--shell", "json"]  # fmt: skip
            env = json.loads(subprocess.run(env_cmd, capture_output=True, check=True, text=True).stdout)
            env |= {"GITHUB_PERSONAL_ACCESS_TOKEN": "not-a-real-token", "NODE_OPTIONS": f"--require={preload}",
                    "PATH": os.environ.get("PATH", "")}  # fmt: skip
            mcpwrap = [str(BIN / "mcpwrap"), "--config", str(config), "--agent", "claude", "--server", "github"]
            params = StdioServerParameters(
                command=mcpwrap[0], args=[*mcpwrap[1:], "--", node, str(NPM / ".bin" / "mcp-server-github")], env=env
            )
            results = asyncio.run(agent(params, out))
            with httpx.Client(base_url=f"http://127.0.0.1:{control}", headers={"Authorization": f"Bearer {TOKEN}"},
                              trust_env=False) as api:  # fmt: skip
                traces = wait_for_traces(api, 6)
    for r in sorted(traces, key=lambda r: r["seq"]):
        out.append(f"trace: {r['surface']:<9} {r['tool']:<28} {r['verdict']:<5} {r['decided_by']}")
    if not (results["search"][0] and results["typo"][0]):
        problems.append(f"the allowed calls did not succeed: {results}")
    if results["urgent"][0]:
        problems.append(f"the REST rule did not refuse the urgent issue: {results['urgent'][1][:200]}")
    seen = {(r["surface"], r["tool"], r["verdict"]) for r in traces}
    wanted = [
        ("mcp_stdio", "github.create_issue", "allow"),
        ("openapi", "github.issues/create", "deny"),
        ("openapi", "github.issues/create", "allow"),
        ("openapi", "github.search/repos", "allow"),
    ]
    for want in wanted:
        if want not in seen:
            problems.append(f"trace: no {want}")
    if {r["agent"] for r in traces} != {"claude"}:
        problems.append(f"trace: agents {sorted({r['agent'] for r in traces})}, expected claude only")
    return problems


def wait_for_traces(api: httpx.Client, count: int) -> list[dict[str, Any]]:
    """The GitHub calls of both views, once written (events such as tool pins are left out)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        records = api.get("/api/traces", params={"tool": "github.*", "limit": 200}).json()["traces"]
        calls = [
            r for r in records if r.get("kind", "call") == "call" and not str(r.get("decided_by")).startswith("pin")
        ]
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.1)


def main() -> int:
    out: list[str] = []
    problems = story(out)
    print("\n".join(out))
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
