"""Bytes the proxy cannot read as HTTP never reach a configured server unjudged (H10, issue 13's principle).

mitmproxy forwards a connection as raw TCP (no request hook, no decision, no record) when the first bytes in
a tunnel do not look like an HTTP request line (a blank line first, fewer than three bytes) and after an
upstream's `101 Switching Protocols` to anything but a WebSocket it recognises. An upstream that skips blank
lines before a request line (RFC 9112 §2.2 allows it; Node's http server does, h11 does not) would then run
whatever follows. The upstream here is a small raw-socket HTTP/1.1 server that does what Node does (skips
leading blank lines) and keeps reading requests after it switched protocols."""

from __future__ import annotations

import base64
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.proxy_harness import RunningProxy, running_proxy
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.e2e

IO_SECONDS = 20.0
# mitmproxy parses a request behind a blank line only when more bytes arrive: it never answers this one.
UNANSWERED_SECONDS = 3.0
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  notes: {{base_url: "http://127.0.0.1:{port}"}}
policies:
  - name: all
    agent: "*"
    loop_detection: {{enabled: false}}
    rules:
      - {{name: reads, tools: ["notes.GET *"], action: allow}}
      - {{name: no-root, tools: ["notes.PUT *"], when: {{args.owner: {{eq: root}}}}, action: deny}}
      - {{name: puts, tools: ["notes.PUT *"], action: allow}}
      - {{name: no-writes, tools: ["notes.POST *"], action: deny}}
"""


class _Lenient(socketserver.BaseRequestHandler):
    """HTTP/1.1 as lenient upstreams read it: blank lines before a request line are skipped, an `Upgrade`
    request is answered 101 and the connection keeps being read as requests."""

    def handle(self) -> None:
        seen: list[str] = self.server.seen  # type: ignore[attr-defined]
        buf = b""
        while True:
            buf = buf.lstrip(b"\r\n")
            while b"\r\n\r\n" not in buf:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                buf = (buf + chunk).lstrip(b"\r\n")
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            seen.append(lines[0])
            if any(line.lower().startswith("upgrade:") for line in lines[1:]):
                self.request.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
            else:
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@contextmanager
def lenient_upstream() -> Iterator[tuple[int, list[str]]]:
    port = free_port()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), _Lenient)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=5)
        yield port, server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningProxy, int, list[str]]]:
    folder: Path = tmp_path_factory.mktemp("rawbytes")
    with lenient_upstream() as (port, seen):
        config = folder / "agent-mesh.yaml"
        config.write_text(CONFIG.format(port=port))
        # An operator's streaming option, which would forward a body before it was judged: turned off.
        with running_proxy(config, "--set", "stream_large_bodies=8") as proxy:
            yield proxy, port, seen


AUTH = "Basic " + base64.b64encode(b"claude:s3cret").decode()


def _head(sock: socket.socket) -> bytes:
    """The response head, or b"" when the proxy closed the connection instead."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return b""  # closed, or (mitmproxy after a leading blank line) waiting for more: not answered
        if not chunk:
            return b""
        data += chunk
    return data.partition(b"\r\n\r\n")[0]


def _connect(proxy: RunningProxy, port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_SECONDS)
    target = f"127.0.0.1:{port}"
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {AUTH}\r\n\r\n".encode())
    assert _head(sock).startswith(b"HTTP/1.1 200")
    return sock


@pytest.mark.parametrize("lead", ["\r\n", "\n"])
def test_a_denied_request_behind_blank_lines_in_a_tunnel_never_reaches_the_server(
    setup: tuple[RunningProxy, int, list[str]], lead: str
) -> None:
    proxy, port, seen = setup
    path = f"/v1/notes/purge-{len(seen)}-{len(lead)}"
    with _connect(proxy, port) as sock:
        sock.settimeout(UNANSWERED_SECONDS)
        sock.sendall(f"{lead}POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode())
        head = _head(sock)
    assert not head.startswith(b"HTTP/1.1 200"), head
    assert not any(path in line for line in seen), seen


@pytest.mark.parametrize("tunnel", [True, False])
@pytest.mark.parametrize("upgrade", ["foo", "h2c", "websocket"])
def test_an_allowed_upgrade_to_another_protocol_never_carries_unjudged_requests(
    setup: tuple[RunningProxy, int, list[str]], upgrade: str, tunnel: bool
) -> None:
    """`websocket` here comes without Sec-WebSocket-Version: mitmproxy does not take it for a WebSocket."""
    proxy, port, seen = setup
    path = f"/v1/notes/purge-{upgrade}-{tunnel}-{len(seen)}"
    if tunnel:
        sock, target = _connect(proxy, port), "/up"
        auth = ""
    else:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_SECONDS)
        target, auth = f"http://127.0.0.1:{port}/up", f"Proxy-Authorization: {AUTH}\r\n"
    with sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
            f"Connection: Upgrade\r\nUpgrade: {upgrade}\r\n\r\n".encode()
        )
        head = _head(sock)
        if head.startswith(b"HTTP/1.1 101"):
            try:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode())
                _head(sock)
            except OSError:
                pass
    assert not any(path in line for line in seen), seen


def test_a_large_body_is_judged_whole_even_when_the_operator_asked_mitmproxy_to_stream_bodies(
    setup: tuple[RunningProxy, int, list[str]],
) -> None:
    proxy, port, seen = setup
    path = f"/v1/notes/stream-{len(seen)}"
    body = b'{"owner": "root", "note": "' + b"x" * 64 + b'"}'
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_SECONDS) as sock:
        sock.sendall(
            f"PUT http://127.0.0.1:{port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Proxy-Authorization: {AUTH}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = _head(sock)
    assert head.startswith(b"HTTP/1.1 403"), head
    assert not any(path in line for line in seen), seen


@pytest.mark.parametrize("host_header", ["same", "other", "none"])
def test_an_absolute_url_naming_another_host_inside_a_tunnel_never_reaches_the_tunnelled_server(
    setup: tuple[RunningProxy, int, list[str]], host_header: str
) -> None:
    proxy, port, seen = setup
    other = free_port()
    path = f"/v1/notes/abs-{host_header}-{len(seen)}"
    host = {"same": f"Host: 127.0.0.1:{port}\r\n", "other": f"Host: 127.0.0.1:{other}\r\n", "none": ""}[host_header]
    with _connect(proxy, port) as sock:
        sock.sendall(f"GET http://127.0.0.1:{other}{path} HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n".encode())
        head = _head(sock)
    assert not head.startswith(b"HTTP/1.1 2"), head
    assert not any(path in line for line in seen), seen


@pytest.mark.parametrize("tunnel", [True, False])
def test_a_denied_request_pipelined_behind_an_allowed_one_in_one_packet_is_judged_on_its_own(
    setup: tuple[RunningProxy, int, list[str]], tunnel: bool
) -> None:
    proxy, port, seen = setup
    path = f"/v1/notes/pipelined-{tunnel}-{len(seen)}"
    if tunnel:
        sock, prefix, auth = _connect(proxy, port), "", ""
    else:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_SECONDS)
        prefix, auth = f"http://127.0.0.1:{port}", f"Proxy-Authorization: {AUTH}\r\n"
    host = f"Host: 127.0.0.1:{port}\r\n"
    with sock:
        sock.sendall(
            f"GET {prefix}/v1/notes/1 HTTP/1.1\r\n{host}{auth}\r\n"
            f"POST {prefix}{path} HTTP/1.1\r\n{host}{auth}Content-Length: 0\r\n\r\n".encode()
        )
        data = b""
        while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"}"):  # the 403's problem+json body
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"403"], data
    assert not any(path in line for line in seen), seen


SMUGGLED = "0\r\n\r\nGET /v1/notes/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        f"Transfer-Encoding : chunked\r\nContent-Length: {len(SMUGGLED)}\r\n",
        f"X-Pad: y\r\n Transfer-Encoding: chunked\r\nContent-Length: {len(SMUGGLED)}\r\n",
        f"Content-Length: {len(SMUGGLED)}\r\nTransfer-Encoding: chunked\r\n",
        f"Transfer-Encoding\t: chunked\r\nContent-Length: {len(SMUGGLED)}\r\n",
    ],
    ids=["space-before-colon", "obs-fold", "te-and-cl", "tab-before-colon"],
)
def test_a_request_whose_framing_an_upstream_may_read_otherwise_is_refused(
    setup: tuple[RunningProxy, int, list[str]], framing: str
) -> None:
    proxy, port, seen = setup
    path = f"/v1/notes/framing-{len(seen)}"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_SECONDS) as sock:
        sock.sendall(
            f"PUT http://127.0.0.1:{port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Proxy-Authorization: {AUTH}\r\n{framing}\r\n{SMUGGLED}".encode()
        )
        head = _head(sock)
    assert head.startswith(b"HTTP/1.1 400"), head
    assert not any(path in line or "smuggled" in line for line in seen), seen
