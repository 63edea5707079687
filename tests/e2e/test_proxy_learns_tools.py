"""An agent that calls a tool without ever listing the tools, through the proxy, to a real MCP SDK server that
needs a bearer token, in both eras: the proxy lists the tools itself first (with the agent's token), so a rule
on the tool's annotations refuses the destructive tool as it would after a listing, and the allowed tool runs.
A server whose tools/list fails gets no call at all: the call is refused as "could not learn the server's
tools" and recorded, never judged without what the listing would say."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.proxy_harness import AGENT_MESH, running_proxy
from tests.support.net import free_port
from tests.support.proc import Proc, run

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).with_name("servers") / "learn_server.py"
ERAS = ["legacy", "2026-07-28"]
TOKEN = "t0ken-for-the-server"
CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: s3cret}}}}
servers:
  learn: {{mcp_url: "{url}"}}
policies:
  - name: claude
    agent: claude
    loop_detection: {{enabled: false}}
    rules:
      - name: nothing-destructive
        tools: ["learn.*"]
        when: {{tool.annotations.destructiveHint: {{eq: true}}}}
        action: deny
        reason: destructive tools are not for agents
      - {{name: the-rest, tools: ["learn.*"], action: allow}}
"""


@asynccontextmanager
async def agent(folder: Path, era: str, *server_args: str) -> AsyncIterator[tuple[Client, Path]]:
    """A client of the learn server through the proxy, sending the server's bearer token as agents do."""
    port = free_port()
    with Proc([sys.executable, str(SERVER), str(port), TOKEN, *server_args], name=f"learn-{era}") as server:
        await asyncio.to_thread(server.wait_for_port, port, timeout=20)
        url = f"http://127.0.0.1:{port}/mcp"
        config = folder / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=folder / "state", url=url))
        with running_proxy(config) as proxy:
            proxied = httpx2.AsyncClient(
                proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=httpx2.Timeout(30, read=60),
            )
            async with proxied, Client(streamable_http_client(url, http_client=proxied), mode=era) as c:
                yield c, config


async def call_records(config: Path, calls: int) -> list[dict[str, Any]]:
    """The call records once `calls` of them are written with their outcomes (writers batch)."""
    found: list[dict[str, Any]] = []
    for _ in range(100):
        done = await asyncio.to_thread(run, [AGENT_MESH, "traces", "query", "--config", str(config), "--json"])
        assert done.returncode == 0, done.stderr
        found = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if len(found) >= calls and all(r.get("outcome") for r in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not all {calls} calls were recorded: {found}")


@pytest.mark.parametrize("era", ERAS)
async def test_a_destructive_tool_called_without_listing_is_refused_and_the_allowed_one_runs(
    tmp_path: Path, era: str
) -> None:
    async with agent(tmp_path, era) as (c, config):
        wiped = await c.call_tool("wipe", {})  # the very first request of the session after initialize
        said = await c.call_tool("echo", {"text": "hello"})
    assert wiped.is_error is True
    refusal = (wiped.meta or {})["agent-mesh/refusal"]
    assert (refusal["rule"], refusal["reason"]) == (
        "claude/nothing-destructive",
        "destructive tools are not for agents",
    )
    assert said.is_error is not True
    assert [getattr(block, "text", None) for block in said.content] == ["hello"]
    records = await call_records(config, 2)
    assert [(r["tool"], r["outcome"]) for r in records] == [("learn.wipe", "refused"), ("learn.echo", "ok")]


@pytest.mark.parametrize("era", ERAS)
async def test_a_server_that_cannot_list_its_tools_gets_no_call(tmp_path: Path, era: str) -> None:
    async with agent(tmp_path, era, "broken") as (c, config):
        with pytest.raises(MCPError) as refused:
            await c.call_tool("echo", {"text": "hello"})
    assert refused.value.error.code == -32603
    assert "could not learn the server's tools" in refused.value.error.message
    ((record,),) = [await call_records(config, 1)]
    assert (record["tool"], record["outcome"], record["rule"]) == ("learn.echo", "refused", "mcp.tools_unknown")


async def test_a_2024_11_05_session_is_listed_on_its_event_stream_before_its_first_call(tmp_path: Path) -> None:
    """The listing is POSTed to the endpoint the stream announced; its answer comes on the stream, and is
    taken off it: the client sees only the answers to its own requests."""
    port = free_port()
    with Proc([sys.executable, str(SERVER), str(port), TOKEN, "sse"], name="learn-sse") as server:
        await asyncio.to_thread(server.wait_for_port, port, timeout=20)
        url = f"http://127.0.0.1:{port}/sse"
        config = tmp_path / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=tmp_path / "state", url=url))
        with running_proxy(config) as proxy:

            def factory(
                headers: dict[str, str] | None = None,
                timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None,
            ) -> httpx2.AsyncClient:
                return httpx2.AsyncClient(
                    proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}",
                    headers={**(headers or {}), "Authorization": f"Bearer {TOKEN}"},
                    timeout=timeout,
                    auth=auth,
                )

            async with Client(sse_client(url, httpx_client_factory=factory), mode="legacy") as c:
                wiped = await c.call_tool("wipe", {})
                said = await c.call_tool("echo", {"text": "hello"})
    assert wiped.is_error is True
    assert (wiped.meta or {})["agent-mesh/refusal"]["rule"] == "claude/nothing-destructive"
    assert [getattr(block, "text", None) for block in said.content] == ["hello"]
