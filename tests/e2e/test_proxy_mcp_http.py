"""The Python SDK client through `agent-mesh proxy` to an SDK MCPServer over Streamable HTTP, in both
protocol eras, with SSE and with JSON responses: allowed, denied (is_error), held then approved from the
CLI, and progress notifications that reach the client while the call still runs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.proxy_harness import AGENT_MESH, RunningProxy, running_proxy
from tests.support.net import free_port
from tests.support.proc import Proc, run

SERVER = Path(__file__).with_name("mcp_notes_server.py")
MODES = ["legacy", "2026-07-28"]
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  notes_sse: {{mcp_url: "{sse}"}}
  notes_json: {{mcp_url: "{json}"}}
  notes_legacy: {{mcp_url: "{legacy}"}}
approval: {{hold_seconds: 60}}
policies:
  - name: claude
    agent: claude
    loop_detection: {{enabled: false}}
    rules:
      - {{name: reads, tools: ["*.read_note", "*.wait_for_ack"], action: allow}}
      - {{name: no-deletes, tools: ["*.delete_note"], action: deny, reason: notes are kept}}
      - {{name: writes-ask, tools: ["*.write_note"], action: human_approval}}
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    urls: dict[str, str] = {}
    procs = []
    try:
        for kind, args, path in (
            ("sse", ["streamable-http"], "/mcp"),
            ("json", ["streamable-http", "--json"], "/mcp"),
            ("legacy", ["sse"], "/sse"),
        ):
            port = free_port()
            proc = Proc([sys.executable, SERVER, str(port), *args], name=f"notes-{kind}").start()
            procs.append(proc)
            proc.wait_for_port(port, timeout=20)
            urls[kind] = f"http://127.0.0.1:{port}{path}"
        yield urls
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="module")
def proxy(servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    config = tmp_path_factory.mktemp("mcp-http") / "agent-mesh.yaml"
    config.write_text(CONFIG.format(**servers))
    with running_proxy(config) as running:
        yield running


@asynccontextmanager
async def client(proxy: RunningProxy, url: str, mode: str) -> AsyncIterator[Client]:
    proxied = httpx2.AsyncClient(
        proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}", timeout=httpx2.Timeout(30, read=120)
    )
    async with proxied, Client(streamable_http_client(url, http_client=proxied), mode=mode) as c:
        yield c


async def traced(proxy: RunningProxy, server: str, want: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """(tool, verdict, outcome) of the server's traced calls, once `want` shows (the writer is batched)."""
    seen: set[tuple[str, str, str]] = set()
    for _ in range(50):
        argv = [AGENT_MESH, "traces", "query", "--config", proxy.config, "--json", "--limit", "0"]
        out = (await asyncio.to_thread(run, argv)).stdout
        records = [json.loads(line) for line in out.splitlines()]
        seen = {(r["tool"], r["verdict"], r["outcome"]) for r in records if r["server"] == server}
        if want <= seen:
            break
        await asyncio.sleep(0.1)
    return seen


async def approve_when_pending(proxy: RunningProxy, tool: str) -> str:
    """Wait (bounded) for the held call's approval and approve it with `agent-mesh approvals approve`."""
    for _ in range(100):
        out = await asyncio.to_thread(run, [AGENT_MESH, "approvals", "list", "--config", proxy.config, "--json"])
        pending = [a for a in json.loads(out.stdout) if a["tool"] == tool]
        if pending:
            await asyncio.to_thread(
                run, [AGENT_MESH, "approvals", "approve", pending[0]["id"], "--config", proxy.config]
            )
            return str(pending[0]["id"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no approval for {tool} appeared")


@pytest.mark.parametrize("kind", ["sse", "json"])
@pytest.mark.parametrize("mode", MODES)
async def test_allowed_denied_and_held_calls(
    proxy: RunningProxy, servers: dict[str, str], mode: str, kind: str
) -> None:
    async with client(proxy, servers[kind], mode) as c:
        listed = sorted(t.name for t in (await c.list_tools()).tools)
        read = await c.call_tool("read_note", {"name": "hello"})
        denied = await c.call_tool("delete_note", {"name": f"hello-{mode}"})
        held = asyncio.create_task(c.call_tool("write_note", {"name": f"n-{mode}-{kind}", "text": "hi"}))
        await approve_when_pending(proxy, "write_note")
        written = await asyncio.wait_for(held, 60)
    assert listed == ["read_note", "wait_for_ack", "write_note"]
    assert not read.is_error
    assert read.content[0].text == "world"  # type: ignore[union-attr]
    assert denied.is_error
    assert "notes are kept" in denied.content[0].text  # type: ignore[union-attr]
    assert denied.meta is not None
    assert denied.meta["agent-mesh/refusal"]["code"] == "denied"
    assert not written.is_error
    assert written.content[0].text == f"wrote n-{mode}-{kind}"  # type: ignore[union-attr]
    want = {
        (f"notes_{kind}.read_note", "allow", "ok"),
        (f"notes_{kind}.delete_note", "deny", "refused"),
        (f"notes_{kind}.write_note", "allow", "ok"),
    }
    assert want <= await traced(proxy, f"notes_{kind}", want)


@pytest.mark.parametrize("mode", MODES)
async def test_progress_reaches_the_client_while_the_call_runs(
    proxy: RunningProxy, servers: dict[str, str], mode: str, tmp_path: Path
) -> None:
    marker = tmp_path / f"ack-{mode}"
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)
        marker.touch()

    async with client(proxy, servers["sse"], mode) as c:
        result = await c.call_tool("wait_for_ack", {"marker": str(marker)}, progress_callback=on_progress)
    assert result.content[0].text == "acknowledged"  # type: ignore[union-attr]
    assert seen == ["started", "acknowledged"]


async def test_a_header_that_disagrees_with_the_body_is_refused(proxy: RunningProxy, servers: dict[str, str]) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "delete_note",
            "arguments": {"name": "hello"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        "mcp-method": "tools/call",
        "mcp-name": "read_note",
        "mcp-protocol-version": "2026-07-28",
        "accept": "application/json, text/event-stream",
    }
    async with httpx2.AsyncClient(proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}") as http:
        answer = await http.post(servers["json"], json=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32020


async def test_the_deprecated_http_sse_transport_is_governed(proxy: RunningProxy, servers: dict[str, str]) -> None:
    """2024-11-05: calls POSTed to the announced endpoint are judged; a refusal arrives on the event stream."""

    def factory(
        headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: httpx2.Auth | None = None
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}", headers=headers, timeout=timeout, auth=auth
        )

    async with Client(sse_client(servers["legacy"], httpx_client_factory=factory), mode="legacy") as c:
        listed = sorted(t.name for t in (await c.list_tools()).tools)
        read = await c.call_tool("read_note", {"name": "hello"})
        denied = await c.call_tool("delete_note", {"name": "legacy"})
        again = await c.call_tool("read_note", {"name": "hello"})
    assert listed == ["read_note", "wait_for_ack", "write_note"]
    assert read.content[0].text == "world"  # type: ignore[union-attr]
    assert denied.is_error
    assert denied.meta is not None
    assert denied.meta["agent-mesh/refusal"]["code"] == "denied"
    assert not again.is_error
    want = {("notes_legacy.read_note", "allow", "ok"), ("notes_legacy.delete_note", "deny", "refused")}
    assert want <= await traced(proxy, "notes_legacy", want)
