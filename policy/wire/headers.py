"""MCP's HTTP headers and the rule both eras share: a routing header that disagrees with the body is refused.

2025-11-25 and older carry `Mcp-Session-Id`; 2026-07-28 mirrors each request's protocol version, method and
name into `Mcp-Protocol-Version`, `Mcp-Method` and `Mcp-Name`. The body is what is judged and what the server
runs, so a header naming another method or tool (which a router, a gateway or the server's own dispatch might
read) refuses the request; so does a version header that disagrees with the body's `_meta` version (the MCP
SDK's server picks the era by that header: the era judged would not be the era served).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence

from policy.wire.era import VERSION_HEADER, meta_version
from policy.wire.messages import RpcMessage

METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
SESSION_HEADER = "mcp-session-id"
# Which params key each name-bearing method mirrors into `Mcp-Name` (mcp.shared.inbound.NAME_BEARING_METHODS).
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_B64 = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")


def decode_header_value(value: str) -> str | None:
    """Undo the `=?base64?...?=` wrapping clients use for non-ASCII names; None when malformed."""
    m = _B64.fullmatch(value)
    if m is None:
        return value
    try:
        return base64.b64decode(m.group("payload"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_routing_headers(messages: Sequence[RpcMessage], headers: Mapping[str, str]) -> None:
    """Raise ValueError when `Mcp-Method`, `Mcp-Name` or `Mcp-Protocol-Version` disagrees with a request in the
    body (the version header with a request whose `_meta` names a version).

    Absent headers are fine (older clients send none); a present one must match every request.
    """
    method_h = headers.get(METHOD_HEADER)
    name_h = headers.get(NAME_HEADER)
    version_h = headers.get(VERSION_HEADER)
    if method_h is None and name_h is None and version_h is None:
        return
    requests = [m for m in messages if m.method is not None]
    for msg in requests:
        version = meta_version(msg.raw) if version_h is not None else None
        if version is not None and version != version_h:
            raise ValueError(f"Mcp-Protocol-Version header {version_h!r} does not match the body's version {version!r}")
        if method_h is not None and method_h != msg.method:
            raise ValueError(f"Mcp-Method header {method_h!r} does not match the body's method {msg.method!r}")
        key = NAME_BEARING.get(msg.method or "")
        if name_h is not None:
            body_name = msg.params.get(key) if key else None
            if key is None or decode_header_value(name_h) != body_name:
                raise ValueError(f"Mcp-Name header {name_h!r} does not match the body's {key or 'name'} {body_name!r}")
