"""JSON-RPC 2.0 messages as MCP uses them, for both adapters: parse, validate, key ids, build responses.

Pure functions on plain dicts. Which era a request belongs to is policy.wire.era's; its results must then
carry `resultType`. JSON that holds NaN, an infinity or a lone surrogate cannot be carried: `dump` raises
ValueError, and neither adapter forwards such a message (RFC 8259 has no such values; JavaScript's
`JSON.parse` refuses them where Python's `json.loads` reads them, so a receiver would not read what was judged).
"""

from __future__ import annotations

import json
from typing import Any

from policy.core.model import parse_json

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Implementation-defined server errors (-32000..-32099): the wrapped server is gone.
SERVER_EXITED = -32000
# The mesh refused the call (used when config.mcp.refuse_as is "error", and for every refused non-tool call).
REFUSED = -32001
# A 2026-07-28 request whose Mcp-Method / Mcp-Name header disagrees with its body (the SDK's own code).
HEADER_MISMATCH = -32020

META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"

type Message = dict[str, Any]
type Id = int | str | None
type RequestId = int | str


def parse(frame: bytes) -> Message | list[Any]:
    """Decode one frame. Raises ValueError when it is not JSON or not an object or array."""
    try:
        value = parse_json(frame)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ValueError("not JSON this process can read: nested too deeply") from None
    if not isinstance(value, dict | list):
        raise ValueError(f"a JSON-RPC message is an object or an array, not {type(value).__name__}")
    return value


def dump(message: Message | list[Any]) -> bytes:
    """Encode compactly on one line (JSON escapes every newline inside strings). Raises ValueError."""
    try:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except RecursionError:
        raise ValueError("the message is nested too deeply to encode") from None


def invalid(msg: Any) -> str | None:
    """Why `msg` is not a JSON-RPC 2.0 request, notification or response (None when it is one)."""
    if not isinstance(msg, dict):
        return "a JSON-RPC message is an object"
    if msg.get("jsonrpc") != "2.0":
        return '"jsonrpc" must be "2.0"'
    if "id" in msg:
        rid = msg["id"]
        if isinstance(rid, bool) or not isinstance(rid, int | str | None):
            return '"id" must be a string, an integer or null'
    if "method" in msg:
        if not isinstance(msg["method"], str) or not msg["method"]:
            return '"method" must be a non-empty string'
        if "params" in msg and not isinstance(msg["params"], dict | list):
            return '"params" must be an object or an array'
        if "id" in msg and msg["id"] is None:
            return 'a request\'s "id" must not be null'
        return None
    if "id" not in msg or ("result" in msg) == ("error" in msg):
        return 'neither a request ("method") nor a response ("id" with "result" or "error")'
    return None


def id_of(msg: Any) -> Id:
    """The id to answer an invalid message with: its own when that is a valid id, else null."""
    rid = msg.get("id") if isinstance(msg, dict) else None
    return rid if isinstance(rid, int | str) and not isinstance(rid, bool) else None


def is_request(msg: Message) -> bool:
    return isinstance(msg.get("method"), str) and "id" in msg


def is_response(msg: Message) -> bool:
    return "method" not in msg and "id" in msg and ("result" in msg or "error" in msg)


def id_key(request_id: object) -> str:
    """A dict key that keeps `1`, `"1"`, `1.0` and `true` apart (as JSON-RPC does) for any JSON id."""
    return f"s:{request_id}" if isinstance(request_id, str) else f"{type(request_id).__name__}:{request_id}"


def params_of(msg: Message) -> dict[str, Any]:
    params = msg.get("params")
    return params if isinstance(params, dict) else {}


def result(request_id: Id, body: dict[str, Any], *, modern: bool = False) -> Message:
    """A success response; `resultType: complete` is added for the stateless era (`modern`)."""
    if modern and "resultType" not in body:
        body = {**body, "resultType": "complete"}
    return {"jsonrpc": "2.0", "id": request_id, "result": body}


def error(request_id: Id, code: int, message: str, data: Any = None) -> Message:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": err}


def undeliverable(out: Message | list[Any], why: str) -> Message | list[Any] | None:
    """What a receiver gets instead of responses `dump` cannot carry: an error for each response's id (so no
    one waits forever on a call that ran), in the same shape (one or a batch); None when none is a response."""
    items = out if isinstance(out, list) else [out]
    errors = [error(id_of(i), INTERNAL_ERROR, why) for i in items if isinstance(i, dict) and is_response(i)]
    if not errors:
        return None
    return errors if isinstance(out, list) else errors[0]


def notification(method: str, params: dict[str, Any]) -> Message:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def server_name_from_result(body: Any) -> str | None:
    """The server's name from an initialize result (`serverInfo`) or a 2026-era result's `_meta` stamp."""
    if not isinstance(body, dict):
        return None
    info = body.get("serverInfo")
    if not isinstance(info, dict):
        meta = body.get("_meta")
        info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
    name = info.get("name") if isinstance(info, dict) else None
    return name if isinstance(name, str) and name else None
