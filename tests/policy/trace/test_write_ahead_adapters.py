"""Both adapters go through the Gate, so both inherit write-ahead: a process SIGKILLed right after an allowed
call reached its upstream leaves that call's decision record, chained once by the next trace writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from tests.e2e.proxy_harness import AGENT_MESH
from tests.policy.trace.test_write_ahead import adopt, chained, wait_until_unlocked
from tests.support.net import free_port, wait_for_port
from tests.support.proc import Proc, pid_gone

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).parents[2] / "mcpwrap" / "stdio_server.py"
TIMEOUT = 30.0
ALLOW_ALL = """
version: 1
state_dir: {state}
policies:
  - name: all
    agent: "*"
    loop_detection: {{enabled: false}}
    rules:
      - {{tools: ["*"], action: allow}}
"""


def records_with(state: Path, nonce: str) -> list[dict[str, Any]]:
    return [r for r in chained(state) if nonce in json.dumps(r)]


def test_mcpwrap_killed_right_after_an_allowed_call_ran_leaves_its_decision_record(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(ALLOW_ALL.format(state=tmp_path / "state"))
    argv = [sys.executable, "-m", "mcpwrap", "--config", str(config), "--", sys.executable, str(SERVER)]
    wrap = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    assert wrap.stdin is not None
    assert wrap.stdout is not None
    try:
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"nonce": "n-mcpwrap-1"}}}  # fmt: skip
        for message in (init, call):
            wrap.stdin.write(json.dumps(message).encode() + b"\n")
            wrap.stdin.flush()
            answer = json.loads(wrap.stdout.readline())
        assert "n-mcpwrap-1" in answer["result"]["content"][0]["text"]  # the server ran it
        os.killpg(wrap.pid, signal.SIGKILL)  # mcpwrap and its server, before the trace batch is written
        wrap.wait(TIMEOUT)
    finally:
        if wrap.poll() is None:
            os.killpg(wrap.pid, signal.SIGKILL)
            wrap.wait(TIMEOUT)
        wrap.stdin.close()
        wrap.stdout.close()

    state = tmp_path / "state"
    wait_until_unlocked(state)
    adopt(state)
    found = records_with(state, "n-mcpwrap-1")
    assert [(r["tool"], r["verdict"]) for r in found] == [("stdlib.echo", "allow")]


class _Logging(BaseHTTPRequestHandler):
    """An upstream that logs every request it executed, then answers it."""

    def do_GET(self) -> None:
        self.server.executed.append(self.path)  # type: ignore[attr-defined]
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def logging_upstream() -> Iterator[tuple[int, list[str]]]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Logging)
    server.executed = []  # type: ignore[attr-defined]
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=5)
        yield port, server.executed  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_proxy_killed_right_after_an_allowed_call_ran_leaves_its_decision_record(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(ALLOW_ALL.format(state=tmp_path / "state"))
    port = free_port()
    argv = [str(AGENT_MESH), "proxy", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    with logging_upstream() as (upstream, executed), Proc(argv, name="proxy", cwd=tmp_path) as proxy:
        proxy.wait_for_port(port, timeout=TIMEOUT)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        with opener.open(f"http://127.0.0.1:{upstream}/items?nonce=n-proxy-1", timeout=TIMEOUT) as response:
            assert response.status == 200
        assert executed == ["/items?nonce=n-proxy-1"]
        os.killpg(proxy.pid, signal.SIGKILL)  # the proxy, before its trace batch is sent to its worker
        assert pid_gone(proxy.pid, TIMEOUT)

    state = tmp_path / "state"
    wait_until_unlocked(state)  # the proxy's trace worker writes what it was sent, then exits
    adopt(state)
    found = records_with(state, "n-proxy-1")
    assert len(found) == 1
    assert found[0]["verdict"] == "allow"
