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

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from policy import Direction, RequestKind, RequestRole, ToolCall, Verdict, classify_request, input_requests
from policy.core.model import readonly
from policy.wire import refusals
from policy.wire.jsonrpc import INVALID_PARAMS, REFUSED, id_key
from policy.wire.names import misspelled_method

# Requests asked and not yet answered, over all sessions; the oldest are forgotten beyond this.
MAX_WAITING = 4096

# (agent, server, kind, session) -> True when the policy denies the call whatever else holds.
type Denies = Callable[[str, str, RequestKind, str | None], bool]
# A server's input request in a response (which cannot wait): the Gate's refusal, recorded, or None to pass it.
type Withheld = Callable[[ToolCall], Verdict | None]
# A call answered `input_required`: its retry may continue it (its verdict), or not (None: input refused).
type Continues = Callable[[ToolCall, Verdict | None], None]


@readonly
class Asked:
    """A server's request the client was given (or that was withheld and replaced by a ping)."""

    kind: RequestKind
    server: str
    withheld: bool


class AskedRequests:
    """The server requests waiting for their client's answer, keyed by MCP session and request id."""

    def __init__(self, denies: Denies, withheld: Withheld | None = None, continues: Continues | None = None) -> None:
        self._denies = denies
        self._withheld = withheld
        self._continues = continues
        self._sessions: dict[str, tuple[str, str]] = {}
        self._waiting: dict[tuple[str, str], Asked] = {}
        # Sessions whose withheld request was forgotten (table full): their unmatched answers count as its.
        self._lost: dict[str, Asked] = {}
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
            method = msg.get("method")
            if isinstance(method, str) and misspelled_method(method) is not None:
                raise ValueError(f"{method!r} imitates an MCP method")  # as mcpwrap: never passed on
            kind = classify_request(method, msg.get("params"), Direction.TO_CLIENT)
            withheld = False
        except ValueError:
            kind, withheld = RequestKind(str(msg.get("method")), RequestRole.CALL, str(msg.get("method")), {}), True
        if not kind.is_call:
            return None
        agent, server = owner or self._sessions.get(session, ("anonymous", ""))
        withheld = withheld or self._denies(agent, server, kind, session or None)
        self._waiting[(session, id_key(request_id))] = Asked(kind, server, withheld)
        while len(self._waiting) > MAX_WAITING:
            (lost, _id), forgotten = _pop_first(self._waiting)
            if forgotten.withheld:
                # Forgetting it would let its answer pass as a plain response: the session's unmatched answers
                # are refused from now on (an agent could flood the table with requests it makes the server ask).
                self._lost[lost] = forgotten
                while len(self._lost) > MAX_WAITING:
                    self._lost.pop(next(iter(self._lost)))
        return {"jsonrpc": "2.0", "id": request_id, "method": "ping"} if withheld else None

    def answered(self, session: str, msg: dict[str, Any]) -> Asked | None:
        """The request a client's response answers, if the server asked one under its id in this session, or
        under any id the server's SDK reads the response's id as: the Python SDK answers request 1 with a
        response id "1" (int()), the TypeScript SDK with "0x1", " 1 " or 1.0 (Number()). A withheld request
        answered under such a spelling would otherwise reach the server unjudged."""
        if not self._waiting and not self._lost:
            return None
        for key in answer_keys(msg.get("id")):
            asked = self._waiting.pop((session, key), None)
            if asked is not None:
                return asked
        return self._lost.get(session)

    def inputs(self, call: ToolCall, result: dict[str, Any], verdict: Verdict | None = None) -> dict[str, Any] | None:
        """A 2026-07-28 `input_required` result of `call` (let through with `verdict`): None to pass it on, else
        the JSON-RPC error the client gets instead (an input request the policy denies, or one that cannot be
        judged). Either way the Gate learns whether the call's retry may continue it."""
        refusal = self._refusal(call, result)
        if self._continues is not None:
            self._continues(call, verdict if refusal is None and verdict is not None else None)
        return refusal

    def _refusal(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any] | None:
        try:
            asked = [(key, classify_request(m, p, Direction.TO_CLIENT)) for key, m, p in input_requests(result)]
        except ValueError as exc:
            return {"code": INVALID_PARAMS, "message": f"agent-mesh: the server asked for input it cannot judge: {exc}"}
        kinds = dict(asked)
        for kind in kinds.values():
            if not kind.is_call:
                continue
            probe = ToolCall(call.agent, call.surface, call.server, kind.tool, kind.arguments or {}, call.session_id)
            if self._withheld is not None:
                refused = self._withheld(probe)
                if refused is not None:  # the same error mcpwrap answers (policy.wire.refusals)
                    error: dict[str, Any] = refusals.refusal_error(None, refused)["error"]
                    return error
            elif self._denies(call.agent, call.server, kind, call.session_id):
                why = f"agent-mesh withheld the server's {kind.method} request: the policy denies {probe.full_name}"
                return {"code": REFUSED, "message": why}
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


# JavaScript's whitespace (String.prototype.trim), around a string Number() reads.
_JS_SPACE = " \t\n\v\f\r\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JS_RADIX = {"0x": 16, "0o": 8, "0b": 2}
_MAX_ID_CHARS = 64  # longer ids are only ever their own spelling (int() of 4300+ digits raises anyway)


def _js_number(text: str) -> float | int | None:
    """What JavaScript's Number(text) is, when finite; None for NaN."""
    t = text.strip(_JS_SPACE)
    if not t:
        return 0
    radix = _JS_RADIX.get(t[:2].lower())
    if radix is not None:
        try:
            return int(t[2:], radix) if t[2:].isascii() and "_" not in t else None
        except ValueError:
            return None
    if _JS_DECIMAL.fullmatch(t):
        value = float(t)
        return value if value == value and abs(value) != float("inf") else None
    return None


def answer_keys(response_id: object) -> list[str]:
    """The id keys a response with this id answers: its own, then the integer an SDK reads it as."""
    keys = [id_key(response_id)]
    numbers: list[float | int] = []
    if isinstance(response_id, bool):
        numbers.append(int(response_id))
    elif isinstance(response_id, float):
        numbers.append(response_id)
    elif isinstance(response_id, str) and len(response_id) <= _MAX_ID_CHARS:
        with contextlib.suppress(ValueError):
            numbers.append(int(response_id))  # the Python SDK's normalisation: " 1", "+1", "1_0", "١"
        js = _js_number(response_id)
        if js is not None:
            numbers.append(js)
    for number in numbers:
        if float(number).is_integer():
            key = id_key(int(number))
            if key not in keys:
                keys.append(key)
    return keys


def _pop_first(table: dict[tuple[str, str], Asked]) -> tuple[tuple[str, str], Asked]:
    key = next(iter(table))
    return key, table.pop(key)
