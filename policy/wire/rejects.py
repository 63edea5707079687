"""The JSON-RPC errors both adapters answer for a request they refuse before judging it: a method or a tool
named like a real one but not spelled as it (policy.wire.names), or params no call can be read from
(policy.wire.kinds raises ValueError). One text on every surface: the agent, its transcript and a test see
the same answer whether the request came over stdio (mcpwrap) or MCP HTTP (the proxy)."""

from __future__ import annotations

from typing import Any

from policy.wire import jsonrpc
from policy.wire.jsonrpc import Message

PREFIX = "agent-mesh: "


def misspelt_method(request_id: Any, method: str, meant: str) -> Message:
    """A request naming a look-alike of an MCP method (TOOLS/CALL, tools/call with an invisible character)."""
    why = f"{PREFIX}method {method!r} is not {meant!r} spelled exactly; it was not run"
    return jsonrpc.error(request_id, jsonrpc.INVALID_REQUEST, why)


def lookalike_tool(request_id: Any, tool: str, listed: str) -> Message:
    """A tools/call naming a look-alike of a tool the server listed: rules for the listed tool would miss it."""
    why = f"{PREFIX}tool {tool!r} is not the listed tool {listed!r} spelled exactly; it was not run"
    return jsonrpc.error(request_id, jsonrpc.INVALID_PARAMS, why)


def unreadable(request_id: Any, exc: ValueError) -> Message:
    """A request whose params say no call that can be judged (a tools/call without a name...)."""
    return jsonrpc.error(request_id, jsonrpc.INVALID_PARAMS, f"{PREFIX}{exc}")
