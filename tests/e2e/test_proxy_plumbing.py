"""Plumbing through a real `agent-mesh proxy` (issue 13, class 7): proxy credentials repeated inside a TLS
tunnel never reach the upstream, and a batch of hundreds of held calls leaves the proxy serving other agents
until a human decides them all."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from policy import Operator, load_config
from policy.store.base import ApprovalState
from policy.store.sqlite import SqliteStore
from tests.e2e.proxy_harness import RunningProxy, make_private_ca, running_proxy
from tests.support.net import free_port, wait_for_port
from tests.support.rawhttp import read_response

pytestmark = pytest.mark.e2e

IO_SECONDS = 20.0
HELD = 400
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}, bot: {{token: other}}}}
servers:
  echo: {{base_url: "{base}"}}
  notes: {{mcp_url: "{base}/mcp"}}
proxy: {{extra_ca: ["{ca}"], max_batch: {held}}}
approval: {{hold_seconds: 60, max_pending_per_agent: {held}}}
policies:
  - name: all
    agent: "*"
    loop_detection: {{enabled: false}}
    rules:
      - {{name: writes-ask, tools: ["notes.write_note"], action: human_approval}}
      - {{name: reads, tools: ["echo.GET *"], action: allow}}
"""


class _Headers(BaseHTTPRequestHandler):
    """Answers with the request's headers as JSON."""

    def do_GET(self) -> None:
        out = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self) -> None:
        """As an MCP server: the proxy lists its tools before a session's first call (addons/mcp_learn)."""
        asked = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        out = json.dumps({"jsonrpc": "2.0", "id": asked.get("id"), "result": {"tools": []}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def header_echo(leaf_pem: Path) -> Iterator[int]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Headers)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf_pem)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=5)
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningProxy, int]]:
    folder = tmp_path_factory.mktemp("plumbing")
    ca, leaf = make_private_ca(folder)
    with header_echo(leaf) as port:
        config = folder / "agent-mesh.yaml"
        config.write_text(CONFIG.format(base=f"https://127.0.0.1:{port}", ca=ca, held=HELD))
        with running_proxy(config) as proxy:
            yield proxy, port


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _tunnel(proxy: RunningProxy, port: int, agent: tuple[str, str] = ("claude", "s3cret")) -> ssl.SSLSocket:
    """CONNECT with the agent's credentials, then TLS to the upstream, trusting the mesh CA."""
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_SECONDS)
    target, auth = f"127.0.0.1:{port}", _basic(*agent)
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {auth}\r\n\r\n".encode())
    status, _ = read_response(raw)
    assert status == 200
    ctx = ssl.create_default_context(cafile=proxy.env("claude")["SSL_CERT_FILE"])
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_proxy_credentials_repeated_inside_a_tunnel_never_reach_the_upstream(
    setup: tuple[RunningProxy, int],
) -> None:
    proxy, port = setup
    with _tunnel(proxy, port) as tls:
        request = (
            f"GET /headers HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Proxy-Authorization: {_basic('claude', 's3cret')}\r\n"
            f"proxy-authorization: {_basic('bot', 'other')}\r\n\r\n"
        )
        tls.sendall(request.encode())
        status, body = read_response(tls)
    assert status == 200
    names = [name.lower() for name, _value in json.loads(body)]
    assert "host" in names
    assert "proxy-authorization" not in names


def test_a_batch_of_held_calls_leaves_the_proxy_serving_other_agents(setup: tuple[RunningProxy, int]) -> None:
    proxy, port = setup
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "write_note", "arguments": {"n": i}}}
        for i in range(HELD)
    ]
    answer: dict[str, Any] = {}

    def send_batch() -> None:
        with _tunnel(proxy, port) as tls:
            body = json.dumps(batch).encode()
            tls.sendall(
                (
                    f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                    f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            tls.settimeout(120)
            answer["status"], answer["body"] = read_response(tls)

    sender = threading.Thread(target=send_batch)
    sender.start()
    loaded = load_config(str(proxy.config))
    state = proxy.config.parent / loaded.config.state_dir
    human = Operator(loaded.config, SqliteStore(state))
    try:
        deadline = time.monotonic() + 60
        pending = []
        while len(pending) < HELD and time.monotonic() < deadline:
            pending = human.store.list_approvals(ApprovalState.PENDING, time.time(), limit=HELD + 1)
        assert len(pending) == HELD
        # Another agent, on its own connection, is served while all of them are held.
        with _tunnel(proxy, port, ("bot", "other")) as tls:
            tls.sendall(f"GET /other HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            status, _ = read_response(tls)
        assert status == 200
        assert sender.is_alive()
        for approval in pending:
            human.deny(approval.id, by="human:e2e", reason="not now")
        sender.join(IO_SECONDS * 3)
        assert not sender.is_alive()
    finally:
        human.store.close()
    assert answer["status"] == 200
    replies = json.loads(answer["body"])
    assert len(replies) == HELD
    assert {r["result"]["_meta"]["agent-mesh/refusal"]["code"] for r in replies} == {"denied"}
