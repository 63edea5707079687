"""MCP JSON-RPC over HTTP, both eras: parse bodies, find the tool call, check routing headers, build answers.

2025-11-25 and older negotiate with `initialize` and carry `Mcp-Session-Id`; 2026-07-28 is stateless, with
the protocol version in every request's `params._meta` and `Mcp-Method`/`Mcp-Name` headers mirroring the
body. The body is what is judged; a header that disagrees with it is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from addons.body_decode import decode_json
from policy.core.model import readonly

MODERN_VERSIONS = frozenset({"2026-07-28"})
PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
VERSION_HEADER = "mcp-protocol-version"
SESSION_HEADER = "mcp-session-id"
# Which params key each name-bearing method mirrors into `Mcp-Name` (mcp.shared.inbound.NAME_BEARING_METHODS).
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
INVALID_PARAMS = -32602
HEADER_MISMATCH = -32020
REFUSED = -32001  # the code mcpwrap uses for `mcp.refuse_as: error`
REFUSAL_META_KEY = "agent-mesh/refusal"
_B64 = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")

RequestId = int | str


@readonly
class RpcMessage:
    """One JSON-RPC message. `has_id` separates a request with id 0 or "" from a notification."""

    raw: dict[str, Any]
    method: str | None
    has_id: bool

    @property
    def id(self) -> RequestId | None:
        value = self.raw.get("id")
        return value if isinstance(value, int | str) and not isinstance(value, bool) else None

    @property
    def is_request(self) -> bool:
        return self.method is not None and self.has_id

    @property
    def is_response(self) -> bool:
        return self.method is None and ("result" in self.raw or "error" in self.raw)

    @property
    def params(self) -> Mapping[str, Any]:
        value = self.raw.get("params")
        return value if isinstance(value, Mapping) else {}


def parse_message(obj: Any, where: str = "body") -> RpcMessage:
    """A decoded JSON value -> RpcMessage. Raises ValueError when it is not a JSON-RPC 2.0 message."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: a JSON-RPC message must be an object")
    if obj.get("jsonrpc") != "2.0":
        raise ValueError(f'{where}: "jsonrpc" must be "2.0"')
    method = obj.get("method")
    if method is not None and not isinstance(method, str):
        raise ValueError(f'{where}: "method" must be a string')
    has_id = "id" in obj
    if has_id:
        rid = obj["id"]
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
            raise ValueError(f'{where}: "id" must be a string or an integer')
    if method is None and not ("result" in obj or "error" in obj):
        raise ValueError(f'{where}: neither a request ("method") nor a response ("result"/"error")')
    return RpcMessage(obj, method, has_id)


def parse_body(body: bytes) -> tuple[list[RpcMessage], bool]:
    """A POSTed body -> (messages, is_batch). Raises ValueError when it is not JSON-RPC 2.0."""
    # Decoded as the MCP SDKs do (`json.loads(bytes)`: BOM, UTF-16/32), so what is judged is what they run.
    try:
        value = decode_json(body)
    except RecursionError:
        raise ValueError("body is nested too deeply to judge") from None
    if isinstance(value, list):
        if not value:
            raise ValueError("body is an empty JSON-RPC batch")
        return [parse_message(item, f"batch element {i}") for i, item in enumerate(value)], True
    return [parse_message(value)], False


def looks_like_jsonrpc(body: bytes) -> bool:
    """Cheap pre-check before parsing: a JSON object or array that mentions "jsonrpc"."""
    head = body.lstrip()[:1]
    return head in (b"{", b"[") and b'"jsonrpc"' in body


def tool_call_of(msg: RpcMessage) -> tuple[str, dict[str, Any]]:
    """(tool name, arguments) of a `tools/call` request. Raises ValueError when they are malformed."""
    params = msg.params
    name = params.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError('tools/call: "params.name" must be a non-empty string')
    args = params.get("arguments")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ValueError('tools/call: "params.arguments" must be an object')
    return name, args


def protocol_version_of(msg: RpcMessage, headers: Mapping[str, str]) -> str | None:
    """The request's protocol version: `_meta` (2026-07-28), else `initialize` params, else the header."""
    meta = msg.params.get("_meta")
    if isinstance(meta, Mapping) and isinstance(meta.get(PROTOCOL_VERSION_META_KEY), str):
        return str(meta[PROTOCOL_VERSION_META_KEY])
    if msg.method == "initialize" and isinstance(msg.params.get("protocolVersion"), str):
        return str(msg.params["protocolVersion"])
    return headers.get(VERSION_HEADER)


def is_modern(version: str | None) -> bool:
    return version in MODERN_VERSIONS


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
    """Raise ValueError when `Mcp-Method` or `Mcp-Name` disagrees with a request in the body.

    Absent headers are fine (older clients send none); a present one must match every request.
    """
    method_h = headers.get(METHOD_HEADER)
    name_h = headers.get(NAME_HEADER)
    if method_h is None and name_h is None:
        return
    requests = [m for m in messages if m.method is not None]
    for msg in requests:
        if method_h is not None and method_h != msg.method:
            raise ValueError(f"Mcp-Method header {method_h!r} does not match the body's method {msg.method!r}")
        key = NAME_BEARING.get(msg.method or "")
        if name_h is not None:
            body_name = msg.params.get(key) if key else None
            if key is None or decode_header_value(name_h) != body_name:
                raise ValueError(f"Mcp-Name header {name_h!r} does not match the body's {key or 'name'} {body_name!r}")


def refusal_response(
    request_id: RequestId | None,
    payload: Mapping[str, Any],
    text: str,
    *,
    modern: bool,
    refuse_as: str = "result",
    structured: bool = True,
) -> dict[str, Any]:
    """The JSON-RPC answer to a refused call, in mcpwrap's shape: a CallToolResult with `isError`, the
    text and the payload (`_meta`, and `structuredContent` unless the tool declares an `outputSchema`,
    which clients validate even on errors), or with `refuse_as: error` a JSON-RPC error."""
    if refuse_as == "error":
        return error_response(request_id, REFUSED, text, dict(payload))
    result: dict[str, Any] = {
        "content": [{"type": "text", "text": text}],
        "isError": True,
        "_meta": {REFUSAL_META_KEY: dict(payload)},
    }
    if structured:
        result["structuredContent"] = dict(payload)
    if modern:
        result["resultType"] = "complete"
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def filter_tools(result: Any, keep: Any) -> tuple[Any, int]:
    """`tools/list` result with the tools `keep(tool)` rejects removed -> (new result, number removed)."""
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        return result, 0
    tools = result["tools"]
    kept = [t for t in tools if isinstance(t, dict) and keep(t)]
    if len(kept) == len(tools):
        return result, 0
    return {**result, "tools": kept}, len(tools) - len(kept)


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
