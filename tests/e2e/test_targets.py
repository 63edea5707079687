"""Smoke tests: every third-party target installed by scripts/install-targets.sh really runs on this machine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from mcp import Client, MCPError

from tests.support import Proc, ServerCommand, Targets, free_port, proxy_env, run, short_tmp_dir
from tests.support.fixtures import need
from tests.support.httpserver import http_server

MCP_SECONDS = 30
PAGE = b"<!doctype html><html><head><title>mesh</title></head><body><h1>agent-mesh e2e page</h1></body></html>"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# One tool each server must list (TARGETS.md), and a harmless call it must answer.
STDIO_SERVERS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "filesystem": ("read_text_file", "list_allowed_directories", {}),
    "everything": ("echo", "echo", {"message": "hello mesh"}),
    "memory": ("create_entities", "read_graph", {}),
    "github": ("create_issue", None, {}),
    "time": ("get_current_time", "get_current_time", {"timezone": "UTC"}),
    "git": ("git_status", "git_status", {"repo_path": None}),
    "fetch": ("fetch", None, {}),
}


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An in-process HTTP server on a free loopback port; yields its base URL."""
    with http_server(handler) as base:
        yield base


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


class RecordingProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy stand-in that plays the origin too: it records each request line it gets, accepts
    CONNECT (undici tunnels even plain http through a proxy) and answers the request inside the tunnel."""

    seen: ClassVar[list[str]] = []

    def do_CONNECT(self) -> None:
        self.seen.append(f"CONNECT {self.path}")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = False

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        body = b"via-proxy"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _text(result: object) -> str:
    return " ".join(getattr(c, "text", "") for c in getattr(result, "content", []))


@pytest.mark.parametrize("name", sorted(STDIO_SERVERS))
async def test_stdio_server_answers_initialize_and_lists_its_tools(
    name: str, stdio_server: Callable[[str], ServerCommand]
) -> None:
    listed, call, args = STDIO_SERVERS[name]
    cmd = stdio_server(name)
    if "repo_path" in args:
        args = {"repo_path": cmd.argv[cmd.argv.index("--repository") + 1]}
    async with asyncio.timeout(MCP_SECONDS), Client(cmd.stdio_params(), mode="legacy") as client:
        assert client.server_info is not None
        tools = {t.name for t in (await client.list_tools()).tools}
        assert listed in tools, f"{name} lists {sorted(tools)}"
        if call is not None:
            result = await client.call_tool(call, args)
            assert not result.is_error, _text(result)


async def test_time_server_speaks_the_stateless_2026_protocol(stdio_server: Callable[[str], ServerCommand]) -> None:
    async with asyncio.timeout(MCP_SECONDS), Client(stdio_server("time").stdio_params(), mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool(
            "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"}
        )
        assert "Europe/Paris" in _text(result)


def test_prism_serves_the_petstore_spec(petstore_api: str) -> None:
    with httpx.Client(base_url=petstore_api, trust_env=False, timeout=10) as http:
        pet = http.get("/pet/1", headers={"Accept": "application/json", "api_key": "k"})
        assert pet.status_code == 200, pet.text
        assert "name" in pet.json()
        unauthenticated = http.get("/pet/1", headers={"Accept": "application/json"})
        assert unauthenticated.status_code == 401


def test_prism_serves_githubs_real_spec(github_api: str) -> None:
    with httpx.Client(base_url=github_api, trust_env=False, timeout=10) as http:
        headers = {"Accept": "application/json", "Prefer": "dynamic=true"}
        issue = http.get("/repos/octocat/hello-world/issues/1", headers=headers)
        assert issue.status_code == 200, issue.text
        assert {"number", "title", "state"} <= issue.json().keys()
        invalid = http.get("/repos/octocat/hello-world/issues", params={"per_page": "many"}, headers=headers)
        assert invalid.status_code == 422


def test_httpbin_serves_requests_and_its_openapi_spec(httpbin_url: str) -> None:
    with httpx.Client(base_url=httpbin_url, trust_env=False, timeout=10) as http:
        assert http.get("/status/418").status_code == 418
        assert http.get("/spec.json").json()["swagger"] == "2.0"


async def test_mcp_proxy_exposes_a_stdio_server_over_streamable_http(
    targets: Targets, stdio_server: Callable[[str], ServerCommand]
) -> None:
    port = free_port()
    argv: list[str | Path] = [
        targets.venv_bin("mcp-proxy"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--",
        *stdio_server("time").argv,
    ]
    with Proc(argv, name="mcp-proxy") as proxy:
        await proxy.async_wait_for_port(port, timeout=MCP_SECONDS)
        async with asyncio.timeout(MCP_SECONDS), Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
    assert "get_current_time" in tools


def test_node22_binary_runs_next_to_the_machines_node20(node20: Path, node22: Path) -> None:
    assert run([node22, "--version"]).stdout.startswith("v22.")
    assert run([node20, "--version"]).stdout.startswith("v20.")


def test_conformance_suite_lists_its_scenarios_on_node22(targets: Targets) -> None:
    out = run([*targets.conformance, "list"], timeout=60).stdout
    assert "server-initialize" in out


@pytest.mark.parametrize("version", ["inspector", "inspector2"])
def test_inspector_cli_lists_and_calls_the_tools_of_server_everything(
    targets: Targets, version: str, stdio_server: Callable[[str], ServerCommand]
) -> None:
    inspector = [*need(lambda: getattr(targets, version)), "--cli", *stdio_server("everything").argv]
    listed = json.loads(run([*inspector, "--method", "tools/list"], timeout=60).stdout)
    assert "echo" in {t["name"] for t in listed["tools"]}
    call = ["--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hi"]
    called = json.loads(run([*inspector, *call], timeout=60).stdout)
    assert "hi" in called["content"][0]["text"]


@pytest.mark.parametrize(
    ("node_version", "keep_preload"),
    [("node20", True), ("node22", False)],
    ids=["node20-with-undici-preload", "node22-with-NODE_USE_ENV_PROXY"],
)
def test_node_fetch_goes_through_the_proxy_variables(
    request: pytest.FixtureRequest, targets: Targets, node_version: str, keep_preload: bool
) -> None:
    node: Path = request.getfixturevalue(node_version)
    RecordingProxyHandler.seen = []
    origin = f"127.0.0.1:{free_port()}"
    upstream = f"http://{origin}/through-proxy"
    with serve(RecordingProxyHandler) as proxy_url:
        env = proxy_env(proxy_url, targets=targets)
        if not keep_preload:
            del env["NODE_OPTIONS"]
        script = f"fetch({json.dumps(upstream)}).then(r => r.text()).then(t => console.log(t))"
        out = run([node, "-e", script], env=env, timeout=30).stdout
    assert out.strip() == "via-proxy"
    assert RecordingProxyHandler.seen[0] in (f"CONNECT {origin}", f"GET {upstream}")


@pytest.mark.parametrize(
    ("node_version", "keep_preload"),
    [("node20", True), ("node22", False)],
    ids=["node20-with-undici-preload", "node22-with-NODE_USE_ENV_PROXY"],
)
async def test_github_server_reaches_api_github_com_through_the_proxy_variables(
    request: pytest.FixtureRequest, targets: Targets, node_version: str, keep_preload: bool
) -> None:
    node: Path = request.getfixturevalue(node_version)
    RecordingProxyHandler.seen = []
    with serve(RecordingProxyHandler) as proxy_url:
        env = proxy_env(proxy_url, targets=targets) | {"GITHUB_PERSONAL_ACCESS_TOKEN": "test-token"}
        if not keep_preload:
            del env["NODE_OPTIONS"]
        params = ServerCommand("github", [str(node), str(targets.npm_bin("mcp-server-github"))], env).stdio_params()
        async with asyncio.timeout(MCP_SECONDS), Client(params, mode="legacy") as client:
            # The stand-in proxy cannot speak TLS, so the call fails after the CONNECT we are looking for.
            with pytest.raises(MCPError):
                await client.call_tool("get_issue", {"owner": "octocat", "repo": "hello-world", "issue_number": 1})
    assert RecordingProxyHandler.seen == ["CONNECT api.github.com:443"]


def test_chromium_starts_headless_and_renders_a_local_page(chromium: Path) -> None:
    with serve(PageHandler) as url, short_tmp_dir() as profile:
        dom = run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url], timeout=60).stdout
    assert "agent-mesh e2e page" in dom


def test_playwright_core_screenshots_a_local_page(
    targets: Targets, node20: Path, chromium: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "page.png"
    script = tmp_path / "shot.cjs"
    script.write_text(
        f"""
const {{ chromium }} = require({json.dumps(str(targets.npm_package("playwright-core")))});
(async () => {{
  const browser = await chromium.launch({{
    executablePath: {json.dumps(str(chromium))},
    args: {json.dumps([f for f in CHROMIUM_FLAGS if f != "--headless"])},
  }});
  try {{
    const page = await browser.newPage();
    await page.goto(process.argv[2]);
    console.log(await page.textContent("h1"));
    await page.screenshot({{ path: process.argv[3] }});
  }} finally {{
    await browser.close();
  }}
}})().catch(e => {{ console.error(e); process.exit(1); }});
""",
        "utf-8",
    )
    with serve(PageHandler) as url:
        out = run([node20, script, url, shot], timeout=60).stdout
    assert out.strip() == "agent-mesh e2e page"
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_missing_target_fails_the_test_with_the_make_targets_hint(tmp_path: Path) -> None:
    empty = Targets(root=tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"run `make targets`"):
        need(lambda: empty.npm_bin("prism"))
    with pytest.raises(pytest.fail.Exception, match=r"mcp-server-time venv is missing"):
        need(lambda: empty.stdio_server("time", tmp_path))
