"""A running `agent-mesh serve` for e2e tests: its own process group, free ports, a known operator token,
the login link it printed, and a clean Ctrl-C (SIGINT) stop that reports the exit code."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.support.httpserver import http_server
from tests.support.net import free_port
from tests.support.proc import Proc

AGENT_MESH = Path(sys.executable).with_name("agent-mesh")
MCPWRAP = Path(sys.executable).with_name("mcpwrap")
START_SECONDS = 30.0
STOP_SECONDS = 15.0
TOKEN = "e2e-operator-token-0123456789abcdef"
AGENT_TOKEN = "e2e-agent-token-abcdef0123"
OPERATOR = "alice"


@dataclass
class Serve:
    proc: Proc
    config: Path
    state: Path
    control: str
    proxy_port: int
    login_url: str = ""

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.control, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to serve alone, then its exit code once it has shut down."""
        self.proc.popen.send_signal(signal.SIGINT)
        return self.proc.wait_exit(timeout=STOP_SECONDS)


@contextmanager
def running_serve(tmp: Path, config_text: str, *, extra: list[str] | None = None) -> Iterator[Serve]:
    """Write `config_text` (with {state} and {agent_token} filled in) and run serve on it until the block ends."""
    state = tmp / "state"
    config = tmp / "agent-mesh.yaml"
    config.write_text(config_text.format(state=state, agent_token=AGENT_TOKEN))
    proxy_port, control_port = free_port(), free_port()
    argv = [
        AGENT_MESH, "serve", "--config", config, "--listen-proxy", f"127.0.0.1:{proxy_port}",
        "--listen-control", f"127.0.0.1:{control_port}", "--token", TOKEN, "--operator", OPERATOR, *(extra or []),
    ]  # fmt: skip
    # serve registers the mesh it runs (policy.mesh.active): in this run's folder, never the user's (the
    # screenshots script runs this outside the tests' isolated XDG dirs)
    env = {"PYTHONUNBUFFERED": "1", "XDG_CONFIG_HOME": str(tmp / "xdg-config")}
    with Proc(argv, name="agent-mesh-serve", env=env) as proc:
        m = proc.wait_for_line(r"one-time login link: (\S+)", timeout=START_SECONDS)
        proc.wait_for_line("Ctrl-C stops everything", timeout=START_SECONDS)
        yield Serve(proc, config, state, f"http://127.0.0.1:{control_port}", proxy_port, m.group(1))
    # Every run checks its trace writer too: no record dropped, no worker process lost.
    assert "agent-mesh trace:" not in proc.output(), proc.output()


@dataclass
class Receiver:
    """A local HTTP endpoint that records what it receives; answers the queued statuses, then 200."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} deliveries arrived within {timeout:g}s")
            return [json.loads(body) for _, body in self.received]


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if status == 200:
                with rec.arrived:
                    rec.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    rec.arrived.notify_all()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with http_server(Handler) as base:
        rec.url = f"{base}/hook"
        yield rec


@contextmanager
def upstream() -> Iterator[str]:
    """A plain HTTP JSON upstream on loopback: GET returns {"ok": true, "path": ...}."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"ok": True, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with http_server(Handler) as base:
        yield base
