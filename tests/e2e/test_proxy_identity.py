"""Servers are identified by address, port and path through `agent-mesh proxy`, with real MCP SDK servers: two
servers on one origin are judged each as itself, numeric and hosts-file aliases of a configured server are that
server even when unknown hosts pass unjudged, and an agent's own server on another port cannot lend its
"read-only" annotation to a configured server's destructive tool."""

from __future__ import annotations

import base64
import json
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.proxy_harness import RunningProxy, running_proxy
from tests.support.net import free_port
from tests.support.proc import Proc

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).with_name("mcp_two_servers.py")
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  notes: {{mcp_url: "http://127.0.0.1:{port}/servers/notes/mcp"}}
  admin: {{mcp_url: "http://127.0.0.1:{port}/servers/admin/mcp"}}
proxy: {{unknown_hosts: allow}}
approval: {{hold_seconds: 1}}
policies:
  - name: claude
    agent: claude
    loop_detection: {{enabled: false}}
    rules:
      - {{name: no-schema-drops, tools: ["admin.drop_schema"], action: deny, reason: schemas stay}}
      - {{name: destructive-asks, tools: ["*"], when: {{tool.annotations.destructiveHint: {{eq: true}}}},
          action: human_approval}}
      - {{name: read-only, tools: ["*"], when: {{tool.annotations.readOnlyHint: {{eq: true}}}}, action: allow}}
      - {{name: rest-asks, tools: ["*"], action: human_approval}}
"""


@pytest.fixture(scope="module")
def ports() -> Iterator[tuple[int, int]]:
    """(the origin with notes and admin, the agent's own server)."""
    origin, rogue = free_port(), free_port()
    with (
        Proc([sys.executable, SERVER, str(origin), "origin"], name="mcp-origin") as a,
        Proc([sys.executable, SERVER, str(rogue), "rogue"], name="mcp-rogue") as b,
    ):
        a.wait_for_port(origin, timeout=20)
        b.wait_for_port(rogue, timeout=20)
        yield origin, rogue


@pytest.fixture(scope="module")
def proxy(ports: tuple[int, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    config = tmp_path_factory.mktemp("identity") / "agent-mesh.yaml"
    config.write_text(CONFIG.format(port=ports[0]))
    with running_proxy(config) as running:
        yield running


@asynccontextmanager
async def client(proxy: RunningProxy, url: str) -> AsyncIterator[Client]:
    proxied = httpx2.AsyncClient(proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}", timeout=30)
    async with proxied, Client(streamable_http_client(url, http_client=proxied), mode="legacy") as c:
        yield c


def refusal(result: Any) -> str | None:
    meta = result.meta or {}
    found = meta.get("agent-mesh/refusal")
    return None if found is None else str(found["code"])


async def test_two_servers_on_one_origin_are_judged_each_as_itself(proxy: RunningProxy, ports: tuple[int, int]) -> None:
    base = f"http://127.0.0.1:{ports[0]}/servers"
    async with client(proxy, f"{base}/notes/mcp") as notes:
        assert [t.name for t in (await notes.list_tools()).tools] == ["read_note"]
        read = await notes.call_tool("read_note", {"name": "a"})
    async with client(proxy, f"{base}/admin/mcp") as admin:
        await admin.list_tools()
        dropped = await admin.call_tool("drop_schema", {"name": "public"})
    assert not read.is_error
    assert dropped.is_error
    assert refusal(dropped) == "denied"


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "localhost"])
async def test_an_alias_of_a_configured_server_is_that_server(
    proxy: RunningProxy, ports: tuple[int, int], host: str
) -> None:
    async with client(proxy, f"http://{host}:{ports[0]}/servers/admin/mcp") as admin:
        dropped = await admin.call_tool("drop_schema", {"name": "public"})
    assert dropped.is_error
    assert refusal(dropped) == "denied"
    assert "schemas stay" in dropped.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("host", ["0177.0.0.1", "127.1", "0x7f.1", "017700000001", "LOCALHOST."])
def test_spellings_clients_will_not_send_are_that_server_too(
    proxy: RunningProxy, ports: tuple[int, int], host: str
) -> None:
    """Raw requests, for spellings an SDK's URL parser refuses or rewrites before the proxy sees them."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "drop_schema", "arguments": {"name": "x"}},
        }
    ).encode()
    authority = f"{host}:{ports[0]}"
    auth = base64.b64encode(b"claude:s3cret").decode()
    raw = (
        f"POST http://{authority}/servers/admin/mcp HTTP/1.1\r\nHost: {authority}\r\n"
        f"Proxy-Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    reply = json.loads(payload)
    assert reply["id"] == 7
    assert reply["result"]["isError"] is True
    assert reply["result"]["_meta"]["agent-mesh/refusal"]["code"] == "denied"


async def test_a_read_only_claim_from_another_port_does_not_cover_a_configured_server(
    proxy: RunningProxy, ports: tuple[int, int]
) -> None:
    async with client(proxy, f"http://127.0.0.1:{ports[1]}/mcp") as own:
        claimed = {t.name: t.annotations for t in (await own.list_tools()).tools}
    assert claimed["drop_table"] is not None
    assert claimed["drop_table"].read_only_hint is True
    async with client(proxy, f"http://127.0.0.1:{ports[0]}/servers/admin/mcp") as admin:
        result = await admin.call_tool("drop_table", {"name": "users"})
    assert result.is_error
    assert refusal(result) == "approval_pending"
