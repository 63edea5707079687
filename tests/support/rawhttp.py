"""Reading one HTTP/1.1 response off a raw socket, for tests that write requests byte by byte."""

from __future__ import annotations

import socket
import ssl


def read_response(sock: socket.socket | ssl.SSLSocket) -> tuple[int, bytes]:
    """(status, body) of the next response: the head up to its blank line, then Content-Length bytes of body
    (none without the header); stops early if the peer closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ", 2)[1]), body[:length]
