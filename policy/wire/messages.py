"""MCP JSON-RPC bodies as values: a decoded HTTP body -> messages, and the parts of a message an adapter reads
(its tool call, a tools/list result to filter).

The HTTP adapter decodes the body (charset, BOM, unsafe integers: addons/body_decode.py) and hands the value
here with its bytes. What counts as a valid message is policy.wire.jsonrpc.invalid, which mcpwrap applies to
each stdio frame too: one rule for both adapters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from policy.core.model import readonly
from policy.wire.jsonrpc import RequestId, invalid

# A body that may spell NaN or an infinity, in UTF-8 or (NUL bytes between the letters) UTF-16/32.
_NON_FINITE = re.compile(rb"N\x00{0,3}a\x00{0,3}N|I\x00{0,3}n\x00{0,3}f")


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
    why = invalid(obj)
    if why is not None:
        raise ValueError(f"{where}: {why}")
    method = obj.get("method")
    return RpcMessage(obj, method, "id" in obj)


def parse_body(value: Any, raw: bytes = b"") -> tuple[list[RpcMessage], bool]:
    """A decoded body -> (messages, is_batch); `raw` is its bytes. Raises ValueError when it is not JSON-RPC
    2.0 or holds NaN or an infinity (which `dump` cannot carry, and a JavaScript receiver does not read)."""
    if _NON_FINITE.search(raw):
        refuse_non_finite(value)
    if isinstance(value, list):
        if not value:
            raise ValueError("body is an empty JSON-RPC batch")
        return [parse_message(item, f"batch element {i}") for i, item in enumerate(value)], True
    return [parse_message(value)], False


def refuse_non_finite(value: Any) -> None:
    """Raise ValueError when a decoded JSON value holds NaN or an infinity anywhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"the body holds {item!r}, which is not a JSON number")


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


def filter_tools(result: Any, keep: Callable[[dict[str, Any]], bool]) -> tuple[Any, int]:
    """`tools/list` result with the tools `keep(tool)` rejects removed -> (new result, number removed)."""
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        return result, 0
    tools = result["tools"]
    kept = [t for t in tools if isinstance(t, dict) and keep(t)]
    if len(kept) == len(tools):
        return result, 0
    return {**result, "tools": kept}, len(tools) - len(kept)
