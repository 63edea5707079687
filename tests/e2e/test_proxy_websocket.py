"""WebSocket through `agent-mesh proxy` to a real upstream (Starlette/uvicorn): every message the agent sends is
a judged, traced call; a refused one never reaches the upstream, and a refused JSON-RPC request is answered."""

from __future__ import annotations

import base64
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, Request, TextMessage

from tests.e2e.proxy_harness import AGENT_MESH, RunningProxy, running_proxy
from tests.support.net import free_port
from tests.support.proc import Proc, run

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).with_name("ws_echo_server.py")
IO_SECONDS = 15.0
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  chat: {{base_url: "http://127.0.0.1:{port}"}}
policies:
  - name: claude
    agent: claude
    loop_detection: {{enabled: false}}
    rules:
      - {{name: open, tools: ["chat.GET /ws"], action: allow}}
      - {{name: greetings, tools: ["chat.ws.message"], when: {{args.text: {{startswith: hello}}}}, action: allow}}
      - {{name: no-deletes, tools: ["chat.delete"], action: deny, reason: nothing is deleted}}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    port = free_port()
    with Proc([sys.executable, SERVER, str(port)], name="ws-echo") as proc:
        proc.wait_for_port(port, timeout=20)
        yield port


@pytest.fixture(scope="module")
def proxy(upstream: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    config = tmp_path_factory.mktemp("websocket") / "agent-mesh.yaml"
    config.write_text(CONFIG.format(port=upstream))
    with running_proxy(config) as running:
        yield running


class Socket:
    """A wsproto client over a plain socket to the proxy (absolute-form upgrade with proxy credentials)."""

    def __init__(self, proxy_port: int, upstream: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=IO_SECONDS)
        self.ws = WSConnection(ConnectionType.CLIENT)
        auth = "Basic " + base64.b64encode(b"claude:s3cret").decode()
        target = f"http://127.0.0.1:{upstream}/ws"
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{upstream}", target=target,
                                               extra_headers=[(b"proxy-authorization", auth.encode())])))  # fmt: skip
        assert isinstance(self.next_event(), AcceptConnection)

    def next_event(self) -> Event:
        while True:
            for event in self.ws.events():
                return event
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the proxy closed the connection")
            self.ws.receive_data(data)

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(text)))

    def text(self) -> str:
        event = self.next_event()
        assert isinstance(event, TextMessage), event
        return event.data

    def close(self) -> None:
        self.sock.sendall(self.ws.send(CloseConnection(1000)))
        self.sock.close()


def test_each_message_is_judged_and_a_refused_one_never_reaches_the_upstream(
    proxy: RunningProxy, upstream: int
) -> None:
    client = Socket(proxy.port, upstream)
    client.send("hello 1")
    assert client.text() == "echo: hello 1"
    client.send("drop table users")
    delete = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "delete", "arguments": {"id": 1}}}
    client.send(json.dumps(delete))
    refusal = json.loads(client.text())
    client.send("hello 2")
    assert client.text() == "echo: hello 2"  # "drop table users" never echoed: the upstream never saw it
    client.close()
    assert refusal["id"] == 5
    assert refusal["result"]["isError"] is True
    assert refusal["result"]["_meta"]["agent-mesh/refusal"]["code"] == "denied"
    out = run([AGENT_MESH, "traces", "query", "--config", proxy.config, "--json", "--limit", "0"]).stdout
    seen = [(r["tool"], r["verdict"]) for r in map(json.loads, out.splitlines()) if r["server"] == "chat"]
    for _ in range(50):
        if len(seen) >= 5:
            break
        out = run([AGENT_MESH, "traces", "query", "--config", proxy.config, "--json", "--limit", "0"]).stdout
        seen = [(r["tool"], r["verdict"]) for r in map(json.loads, out.splitlines()) if r["server"] == "chat"]
    assert sorted(seen) == sorted(
        [
            ("chat.GET /ws", "allow"),
            ("chat.ws.message", "allow"),
            ("chat.ws.message", "deny"),
            ("chat.delete", "deny"),
            ("chat.ws.message", "allow"),
        ]
    )
