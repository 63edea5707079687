"""Raw HTTP/1.1 over a socket: the harness must send bytes no client library would (duplicate headers,
undecoded path spellings, odd host forms), so requests are written by hand and answers read to the end."""

from __future__ import annotations

import base64
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

READ_TIMEOUT = 30.0
# A handshake the proxy never finishes (it does not for SNI `localhost.`) is a refusal: do not wait long.
HANDSHAKE_TIMEOUT = 5.0


@dataclass(frozen=True)
class RawRequest:
    """One request as it goes on the wire to the proxy (absolute-form target, headers in order)."""

    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("latin-1") + self.body

    def describe(self) -> str:
        """A reproducible one-block description (the request as Python bytes) for the findings file."""
        return repr(self.encode())


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def proxy_auth(agent: str, session: str) -> tuple[str, str]:
    """A Proxy-Authorization header naming `agent/session`: the proxy tags the call's trace with the session."""
    token = base64.b64encode(f"{agent}/{session}:x".encode()).decode()
    return ("Proxy-Authorization", f"Basic {token}")


def send(port: int, request: RawRequest, *, tls: bool = False) -> RawResponse:
    """Send `request` to 127.0.0.1:port on a fresh connection (TLS, unverified, if `tls`) and read one answer.

    No half-close after sending: mitmproxy takes a half-closed client connection for a gone client. The
    answer ends at its Content-Length, its last chunk, or the close of the connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as raw:
        if not tls:
            return _exchange(raw, request)
        with _unverified().wrap_socket(raw, server_hostname=None) as sock:
            return _exchange(sock, request)


def send_tunnelled(
    port: int, authority: str, auth: tuple[str, str], sni: str | None, request: RawRequest
) -> RawResponse:
    """CONNECT `authority` through the proxy at 127.0.0.1:port, TLS inside (SNI `sni`, the proxy's certificate
    not verified: the harness tests the proxy, not the client), then `request` in origin form. A CONNECT the
    proxy refuses is its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as raw:
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth[0]}: {auth[1]}\r\n\r\n"
        raw.sendall(head.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = raw.recv(65536)
            if not chunk:
                break
            data += chunk
        answer = parse_response(data)
        if answer.status != 200:
            return answer
        raw.settimeout(HANDSHAKE_TIMEOUT)
        with _unverified().wrap_socket(raw, server_hostname=sni) as sock:
            sock.settimeout(READ_TIMEOUT)
            return _exchange(sock, request)


def _unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _exchange(sock: socket.socket, request: RawRequest) -> RawResponse:
    sock.sendall(request.encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        data += chunk
        if not chunk or _complete(data, request.method):
            break
    return parse_response(data)


def _complete(data: bytes, method: str) -> bool:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    lines = head.decode("latin-1").lower().split("\r\n")
    status = lines[0].split(" ")[1] if " " in lines[0] else ""
    if method == "HEAD" or status in {"204", "304"} or status.startswith("1"):
        return True
    fields = dict(line.partition(":")[::2] for line in lines[1:])
    if "chunked" in fields.get("transfer-encoding", ""):
        return rest.endswith(b"0\r\n\r\n")
    length = fields.get("content-length", "").strip()
    return length.isdigit() and len(rest) >= int(length)


def parse_response(data: bytes) -> RawResponse:
    """Status, headers and the (de-chunked) body of one HTTP/1.1 response. Raises ValueError."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"no complete response head in {data[:200]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"bad status line {status_line!r}")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in header_lines)]
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
    return RawResponse(int(parts[1]), headers, _dechunk(rest) if chunked else rest)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)
