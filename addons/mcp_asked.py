"""Requests an MCP server sends its client through the proxy (sampling, elicitation, roots, any method):
each is a call of its own kind (policy.wire.kinds), judged when the client's answer comes back as a POST.

A server's request reaches the client inside an event stream, where the proxy cannot wait for a human. So
the stream only asks the policy (no store, no hold): a request the policy denies is withheld, and the client
gets a `ping` under the same id instead. The client's answer (to the request, or to the ping) is the HTTP
request that the whole ladder judges; a refused one reaches the server as a JSON-RPC error (-32001, reason
in `data`). The agent is the one whose client holds the session; the tool is the method.

A 2026-07-28 server asks through an `input_required` result instead. Its `inputRequests` are checked the same
way when the result passes: if the policy denies one, the client gets a JSON-RPC error instead of the result
(the refusal is recorded through the Gate). The client's retry carrying `inputResponses` is judged per input
request with the whole ladder; a retry answering requests the proxy never saw asked is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from addons.mcp_exchange import id_key
from addons.mcp_messages import INVALID_PARAMS, REFUSED
from policy import Direction, RequestKind, RequestRole, ToolCall, classify_request, input_requests
from policy.model import readonly

# Requests asked and not yet answered, over all sessions; the oldest are forgotten beyond this.
MAX_WAITING = 4096

# (agent, server, kind, session) -> True when the policy denies the call whatever else holds.
type Denies = Callable[[str, str, RequestKind, str | None], bool]
# Records a call withheld because the policy denies it (judged by the Gate off the stream, one record).
type Withheld = Callable[[ToolCall], None]


@readonly
class Asked:
    """A server's request the client was given (or that was withheld and replaced by a ping)."""

    kind: RequestKind
    server: str
    withheld: bool


class AskedRequests:
    """The server requests waiting for their client's answer, keyed by MCP session and request id."""

    def __init__(self, denies: Denies, withheld: Withheld | None = None) -> None:
        self._denies = denies
        self._withheld = withheld
        self._sessions: dict[str, tuple[str, str]] = {}
        self._waiting: dict[tuple[str, str], Asked] = {}
        self._inputs: dict[tuple[str, str, str], dict[str, RequestKind]] = {}

    def met(self, session: str, agent: str, server: str) -> None:
        """A client POSTed in this session: requests its server sends on the session's streams are its own."""
        if self._sessions.get(session) != (agent, server):
            self._sessions[session] = (agent, server)
            while len(self._sessions) > MAX_WAITING:
                self._sessions.pop(next(iter(self._sessions)))

    def passing(self, msg: dict[str, Any], session: str, owner: tuple[str, str] | None = None) -> dict[str, Any] | None:
        """A server's request in an event stream: None to pass it on, or the ping the client gets instead.

        `owner` (agent, server) when the stream answers a POST (its caller); else the session's, as learned."""
        request_id = msg.get("id")
        try:
            kind = classify_request(msg.get("method"), msg.get("params"), Direction.TO_CLIENT)
            withheld = False
        except ValueError:
            kind, withheld = RequestKind(str(msg.get("method")), RequestRole.CALL, str(msg.get("method")), {}), True
        if not kind.is_call:
            return None
        agent, server = owner or self._sessions.get(session, ("anonymous", ""))
        withheld = withheld or self._denies(agent, server, kind, session or None)
        self._waiting[(session, id_key(request_id))] = Asked(kind, server, withheld)
        while len(self._waiting) > MAX_WAITING:
            self._waiting.pop(next(iter(self._waiting)))
        return {"jsonrpc": "2.0", "id": request_id, "method": "ping"} if withheld else None

    def answered(self, session: str, msg: dict[str, Any]) -> Asked | None:
        """The request a client's response answers, if the server asked one under its id in this session."""
        if not self._waiting:
            return None
        return self._waiting.pop((session, id_key(msg.get("id"))), None)

    def inputs(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any] | None:
        """A 2026-07-28 `input_required` result of `call`: None to pass it on, else the JSON-RPC error the
        client gets instead (an input request the policy denies, or one that cannot be judged)."""
        try:
            asked = [(key, classify_request(m, p, Direction.TO_CLIENT)) for key, m, p in input_requests(result)]
        except ValueError as exc:
            return {"code": INVALID_PARAMS, "message": f"agent-mesh: the server asked for input it cannot judge: {exc}"}
        kinds = dict(asked)
        for kind in kinds.values():
            if kind.is_call and self._denies(call.agent, call.server, kind, call.session_id):
                probe = ToolCall(
                    call.agent, call.surface, call.server, kind.tool, kind.arguments or {}, call.session_id
                )
                if self._withheld is not None:
                    self._withheld(probe)
                why = f"agent-mesh withheld the server's {kind.method} request: the policy denies {probe.full_name}"
                return {"code": REFUSED, "message": why, "data": {"code": "denied", "tool": probe.full_name}}
        self._inputs[_input_key(call, result.get("requestState"))] = kinds
        while len(self._inputs) > MAX_WAITING:
            self._inputs.pop(next(iter(self._inputs)))
        return None

    def input_responses(self, call: ToolCall, params: Mapping[str, Any]) -> list[RequestKind] | None:
        """The input requests a retry's `inputResponses` answer, each to be judged; None when the proxy never
        saw the server ask them (the retry is then refused: its answers would reach the server unjudged)."""
        responses = params.get("inputResponses")
        if not isinstance(responses, dict):
            return None
        kinds = self._inputs.pop(_input_key(call, params.get("requestState")), None)
        if kinds is None or not set(responses) <= set(kinds):
            return None
        return [kinds[key] for key in responses if kinds[key].is_call]


def _input_key(call: ToolCall, state: Any) -> tuple[str, str, str]:
    # The server's opaque state names the exchange; without it, the call (its hash covers agent and arguments).
    return (call.agent, call.server, state if isinstance(state, str) else call.call_hash)
