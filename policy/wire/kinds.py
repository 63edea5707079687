"""Which MCP requests are calls: one classification of a JSON-RPC request by its method, for both adapters.

Every request is one of three roles. A **call** is judged by the Gate and traced like a tool call: `tools/call`
under its tool's name, every other method under its own name (`resources/read` -> tool `resources/read` with
`{"uri": ...}`, so its full name is `<server>.resources/read`), server-to-client requests included
(`sampling/createMessage`, `elicitation/create`, `roots/list`), and any method this module does not know.
A **list** (`tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`) passes unrecorded and
its result is filtered by policy. **Plumbing** (`initialize`, `ping`, `notifications/*`, `server/discover`,
`subscriptions/listen`, `logging/setLevel`, `tasks/*`) passes unrecorded. All are parsed and checked first:
malformed params raise ValueError, never pass.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from policy.core.model import readonly


class RequestRole(enum.Enum):
    """A call is judged and traced; a list passes with its result filtered; plumbing passes."""

    CALL = "call"
    LIST = "list"
    PLUMBING = "plumbing"


class Direction(enum.Enum):
    """Who sent the request: the agent's client (to the server), or the server (to the agent's client)."""

    TO_SERVER = "to_server"
    TO_CLIENT = "to_client"


# Lists whose results name things a policy may hide: each key of the result holds the listed items.
LISTS: Mapping[str, str] = {
    "tools/list": "tools",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
    "prompts/list": "prompts",
}
# Lifecycle and bookkeeping: no effect beyond the session itself (tasks/* only reach calls judged before).
_PLUMBING_TO_SERVER = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "subscriptions/listen",
        "logging/setLevel",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
    }
)
_PLUMBING_TO_CLIENT = frozenset({"ping", "tasks/get", "tasks/list", "tasks/result", "tasks/cancel"})
# Methods judged under their own name with `{"uri": ...}` as the arguments.
_BY_URI = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
# Known request methods judged under their own name: no `tools/call` may take one of these as a tool name,
# or a call to a tool so named would be judged by the rules written for the method (and the other way round).
JUDGED_METHODS = frozenset(
    {
        *_BY_URI,
        "prompts/get",
        "completion/complete",
        "sampling/createMessage",
        "elicitation/create",
        "roots/list",
    }
)
# Every request method MCP names, in either direction: what a lookalike spelling is checked against.
KNOWN_METHODS = frozenset({"tools/call", *_PLUMBING_TO_SERVER, *LISTS, *JUDGED_METHODS})
# Params that steer the exchange rather than say what to do: a 2026-07-28 retry carries the client's input
# responses and the server's state, the same call continued (its hash must not change).
_ENVELOPE = frozenset({"_meta", "inputResponses", "requestState"})


@readonly
class RequestKind:
    """What a request is: its role, and for a call the tool name and arguments the Gate judges."""

    method: str
    role: RequestRole
    tool: str = ""
    arguments: Mapping[str, Any] | None = None

    @property
    def is_call(self) -> bool:
        return self.role is RequestRole.CALL


def classify_request(method: Any, params: Any, direction: Direction = Direction.TO_SERVER) -> RequestKind:
    """The kind of a JSON-RPC request (one with an id). Raises ValueError when it cannot be judged."""
    if method == "tools/call" and direction is Direction.TO_SERVER and isinstance(params, dict):
        return _tool_call(params)  # nearly every request: straight to it (the proxy's hot path)
    if not isinstance(method, str) or not method:
        raise ValueError('"method" must be a non-empty string')
    if params is not None and not isinstance(params, dict | list):
        raise ValueError(f'{method}: "params" must be an object or an array')
    if method.startswith("notifications/"):
        raise ValueError(f"{method} is a notification: it must not carry an id")
    to_server = direction is Direction.TO_SERVER
    if method in (_PLUMBING_TO_SERVER if to_server else _PLUMBING_TO_CLIENT):
        return RequestKind(method, RequestRole.PLUMBING)
    if to_server and method in LISTS:
        return RequestKind(method, RequestRole.LIST)
    if isinstance(params, list):
        if method in JUDGED_METHODS or method == "tools/call":
            raise ValueError(f'{method}: "params" must be an object')
        # No MCP method takes positional params: an unknown one is judged whole under its name, never skipped.
        return RequestKind(method, RequestRole.CALL, method, {"params": params})
    body: Mapping[str, Any] = params or {}
    if method == "tools/call":
        return _tool_call(body) if to_server else RequestKind(method, RequestRole.CALL, method, _arguments(body))
    if method in _BY_URI:
        uri = body.get("uri")
        if not isinstance(uri, str) or not uri:
            raise ValueError(f'{method}: "params.uri" must be a non-empty string')
        return RequestKind(method, RequestRole.CALL, method, {"uri": uri})
    if method == "prompts/get":
        name, arguments = body.get("name"), body.get("arguments")
        if not isinstance(name, str) or not name:
            raise ValueError('prompts/get: "params.name" must be a non-empty string')
        if arguments is not None and not isinstance(arguments, dict):
            raise ValueError('prompts/get: "params.arguments" must be an object')
        return RequestKind(method, RequestRole.CALL, method, {"name": name, "arguments": arguments or {}})
    return RequestKind(method, RequestRole.CALL, method, _arguments(body))


def _tool_call(params: Mapping[str, Any]) -> RequestKind:
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str) or not name:
        raise ValueError('tools/call: "params.name" must be a non-empty string')
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ValueError('tools/call: "params.arguments" must be an object')
    if name in JUDGED_METHODS or name.startswith("notifications/"):
        raise ValueError(f"tools/call: the tool name {name!r} is an MCP method's name, judged as that method")
    return RequestKind("tools/call", RequestRole.CALL, name, arguments)


def _arguments(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _ENVELOPE}


def input_requests(result: Any) -> list[tuple[str, Any, Any]]:
    """The server-to-client requests inside a 2026-07-28 `input_required` result: (key, method, params).

    Raises ValueError when the result says input is required but the requests are malformed.
    """
    if not isinstance(result, dict) or result.get("resultType") != "input_required":
        return []
    requests = result.get("inputRequests")
    if requests is None:
        return []
    if not isinstance(requests, dict):
        raise ValueError('input_required: "inputRequests" must be an object')
    out: list[tuple[str, Any, Any]] = []
    for key, request in requests.items():
        if not isinstance(request, dict):
            raise ValueError(f"input_required: inputRequests[{key!r}] must be an object")
        out.append((key, request.get("method"), request.get("params")))
    return out
