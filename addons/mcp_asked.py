"""Requests an MCP server sends its client through the proxy (sampling, elicitation, roots, any method):
each is a call of its own kind (policy.wire.kinds), judged when the client's answer comes back as a POST.

A server's request reaches the client inside an event stream, where the proxy cannot wait for a human. So
the stream only asks the policy (no store, no hold): a request the policy denies is withheld, and the client
gets a `ping` under the same id instead. The client's answer (to the request, or to the ping) is the HTTP
request that the whole ladder judges; a refused one reaches the server as a JSON-RPC error (-32001, reason
in `data`). The agent is the one whose client holds the session; the tool is the method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from addons.mcp_exchange import id_key
from policy import Direction, RequestKind, RequestRole, classify_request
from policy.model import readonly

# Requests asked and not yet answered, over all sessions; the oldest are forgotten beyond this.
MAX_WAITING = 4096

# (agent, server, kind, session) -> True when the policy denies the call whatever else holds.
type Denies = Callable[[str, str, RequestKind, str | None], bool]


@readonly
class Asked:
    """A server's request the client was given (or that was withheld and replaced by a ping)."""

    kind: RequestKind
    server: str
    withheld: bool


class AskedRequests:
    """The server requests waiting for their client's answer, keyed by MCP session and request id."""

    def __init__(self, denies: Denies) -> None:
        self._denies = denies
        self._sessions: dict[str, tuple[str, str]] = {}
        self._waiting: dict[tuple[str, str], Asked] = {}

    def met(self, session: str, agent: str, server: str) -> None:
        """A client POSTed in this session: requests its server sends on the session's streams are its own."""
        if self._sessions.get(session) != (agent, server):
            self._sessions[session] = (agent, server)
            while len(self._sessions) > MAX_WAITING:
                self._sessions.pop(next(iter(self._sessions)))

    def passing(self, msg: dict[str, Any], session: str) -> dict[str, Any] | None:
        """A server's request in an event stream: None to pass it on, or the ping the client gets instead."""
        request_id = msg.get("id")
        try:
            kind = classify_request(msg.get("method"), msg.get("params"), Direction.TO_CLIENT)
            withheld = False
        except ValueError:
            kind, withheld = RequestKind(str(msg.get("method")), RequestRole.CALL, str(msg.get("method")), {}), True
        if not kind.is_call:
            return None
        agent, server = self._sessions.get(session, ("anonymous", ""))
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
