"""Under the built-in default, `agent-mesh serve`'s proxy refuses every spelling of the control plane's address
(numeric, hex, octal, short, IPv4-mapped IPv6, hosts-file names, 0.0.0.0), plain and through CONNECT, and
every spelling of its own address: an agent cannot reach the approvals it is waiting for."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.serve_support import AGENT_MESH, START_SECONDS, TOKEN
from tests.support.net import free_port
from tests.support.proc import Proc
from tests.support.rawhttp import read_response

pytestmark = pytest.mark.e2e

IO_SECONDS = 10.0
SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "0177.0.0.1",
    "017700000001",
    "localhost",
    "LOCALHOST.",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "0.0.0.0",
    "0",
]


def _hosts_aliases() -> list[str]:
    """Names the hosts file gives 127.0.0.1 on this machine, besides localhost."""
    names: list[str] = []
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "127.0.0.1":
            names += [n for n in fields[1:] if n.lower() != "localhost"]
    return names[:3]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """`agent-mesh serve` with no config anywhere (the built-in default): (proxy port, control port)."""
    home = tmp_path_factory.mktemp("serve-default")
    proxy_port, control_port = free_port(), free_port()
    argv = [AGENT_MESH, "serve", "--listen-proxy", f"127.0.0.1:{proxy_port}",
            "--listen-control", f"127.0.0.1:{control_port}", "--token", TOKEN]  # fmt: skip
    env = {"AGENT_MESH_CONFIG": "", "PYTHONUNBUFFERED": "1"}
    with Proc(argv, name="agent-mesh-serve", env=env, cwd=home) as proc:
        proc.wait_for_line("built-in default|<builtin|default", timeout=START_SECONDS)
        proc.wait_for_line("Ctrl-C stops everything", timeout=START_SECONDS)
        yield proxy_port, control_port
    assert "agent-mesh trace:" not in proc.output(), proc.output()


def _exchange(proxy_port: int, raw: bytes) -> tuple[int, dict[str, object]]:
    """Send one raw request to the proxy: (status, JSON body or {})."""
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=IO_SECONDS) as sock:
        sock.sendall(raw)
        status, body = read_response(sock)
    try:
        parsed = json.loads(body) if body else {}
    except json.JSONDecodeError:
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}


@pytest.mark.parametrize("host", SPELLINGS + _hosts_aliases())
def test_no_spelling_of_the_control_plane_is_reachable_through_the_proxy(serve: tuple[int, int], host: str) -> None:
    proxy_port, control_port = serve
    authority = f"{host}:{control_port}"
    body = b'{"reason": "the agent approves itself"}'
    plain = (
        f"POST http://{authority}/api/approvals/x/approve HTTP/1.1\r\nHost: {authority}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    status, answer = _exchange(proxy_port, plain)
    assert (status, answer.get("code")) == (403, "control_plane")
    tunnel = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
    status, answer = _exchange(proxy_port, tunnel)
    assert (status, answer.get("code")) == (403, "control_plane")


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1", "localhost", "[::ffff:127.0.0.1]"])
def test_no_spelling_of_the_proxy_itself_makes_it_loop(serve: tuple[int, int], host: str) -> None:
    proxy_port, _ = serve
    authority = f"{host}:{proxy_port}"
    status, answer = _exchange(proxy_port, f"GET http://{authority}/ HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    assert (status, answer.get("code")) == (403, "proxy_loop")


def test_a_host_header_naming_the_control_plane_is_refused(serve: tuple[int, int]) -> None:
    proxy_port, control_port = serve
    upstream = f"127.0.0.1:{free_port()}"
    raw = f"GET http://{upstream}/ HTTP/1.1\r\nHost: 127.1:{control_port}\r\n\r\n".encode()
    status, answer = _exchange(proxy_port, raw)
    assert (status, answer.get("code")) == (400, "host_mismatch")
