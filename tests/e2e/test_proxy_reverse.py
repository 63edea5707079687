"""Reverse mode for clients that cannot use a proxy: `agent-mesh proxy --reverse NAME=URL@PORT` serves the
upstream on a local port with the same governance (identity from a Proxy-Authorization header)."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.proxy_harness import make_private_ca, running_proxy, tls_upstream
from tests.support.net import free_port, wait_for_port
from tests.support.proc import Proc

SERVER = Path(__file__).with_name("mcp_notes_server.py")
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  echo: {{base_url: "{echo}"}}
  notes: {{mcp_url: "{notes}"}}
proxy: {{extra_ca: ["{ca}"]}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: reads, tools: ["echo.GET *", "notes.read_note"], action: allow}}
      - {{name: no-deletes, tools: ["echo.DELETE *", "notes.delete_note"], action: deny}}
"""
AUTH = {"proxy-authorization": "Basic " + base64.b64encode(b"claude:s3cret").decode()}


@pytest.fixture(scope="module")
def reverse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("reverse")
    ca, leaf = make_private_ca(folder)
    mcp_port = free_port()
    with (
        tls_upstream(leaf) as (echo, _seen),
        Proc([sys.executable, SERVER, str(mcp_port), "streamable-http", "--json"], name="notes") as notes_proc,
    ):
        notes_proc.wait_for_port(mcp_port, timeout=20)
        notes = f"http://127.0.0.1:{mcp_port}"
        config = folder / "agent-mesh.yaml"
        config.write_text(CONFIG.format(echo=echo, notes=f"{notes}/mcp", ca=ca))
        echo_port, notes_port = free_port(), free_port()
        args = ["--reverse", f"echo={echo}@{echo_port}", "--reverse", f"notes={notes}@{notes_port}"]
        with running_proxy(config, *args):
            wait_for_port(echo_port, timeout=20)
            wait_for_port(notes_port, timeout=20)
            yield {"echo": f"http://127.0.0.1:{echo_port}", "notes": f"http://127.0.0.1:{notes_port}/mcp"}


def test_rest_through_a_reverse_listener_is_governed(reverse: dict[str, str]) -> None:
    with httpx.Client(base_url=reverse["echo"], headers=AUTH) as client:
        ok = client.get("/items?x=reverse")
        no = client.delete("/items/reverse")
    assert ok.status_code == 200
    assert ok.json()["path"] == "/items?x=reverse"
    assert no.status_code == 403
    assert no.json()["rule"] == "claude/no-deletes"


def test_a_reverse_listener_still_requires_the_agent_identity(reverse: dict[str, str]) -> None:
    assert httpx.get(f"{reverse['echo']}/items").status_code == 407


async def test_mcp_through_a_reverse_listener_is_governed(reverse: dict[str, str]) -> None:
    async with (
        httpx2.AsyncClient(headers=AUTH, timeout=30) as http,
        Client(streamable_http_client(reverse["notes"], http_client=http), mode="2026-07-28") as c,
    ):
        read = await c.call_tool("read_note", {"name": "hello"})
        denied = await c.call_tool("delete_note", {"name": "hello"})
    assert read.content[0].text == "world"  # type: ignore[union-attr]
    assert denied.is_error
