"""Requests the server sends the client (sampling, elicitation, roots, any method it likes): judged before
the client sees them, like the client's own calls; a refused one is answered to the server with a JSON-RPC
error. A 2026-07-28 server asks through an `input_required` result instead: each of its input requests is
judged too, and the client gets the result only when all pass (else a JSON-RPC error for its request).

The agent of such a call is the session's agent (the server asks the agent's client to act), the server is
the wrapped server, and the tool is the method: `<server>.sampling/createMessage`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from mcpwrap.frame_judge import CallTicket, FrameJudge, Judged
from policy import Direction, Outcome, classify_request, input_requests
from policy.wire import jsonrpc
from policy.wire.jsonrpc import Message
from policy.wire.names import misspelled_method

log = logging.getLogger("mcpwrap")

type Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class Asked:
    """The server's requests of one session: being judged, or forwarded and waiting for the client."""

    def __init__(
        self,
        frame_judge: FrameJudge,
        to_client: Callable[[Message], None],
        to_server: Callable[[Message], None],
        spawn: Spawn,
    ) -> None:
        self._frames = frame_judge
        self._to_client = to_client
        self._to_server = to_server
        self._spawn = spawn
        self._waiting: dict[str, CallTicket | None] = {}
        self._judging: dict[str, asyncio.Task[None] | None] = {}

    async def _notify_server(self, msg: Message) -> None:
        self._to_server(msg)

    def request(self, msg: Message) -> Message | None:
        """A request from the server: itself to pass on now, or None (answered, or being judged)."""
        request_id = msg["id"]
        key = jsonrpc.id_key(request_id)
        if key in self._waiting or key in self._judging:
            why = f"mcpwrap: request id {request_id!r} is already in flight; this request was not passed on"
            self._to_server(jsonrpc.error(request_id, jsonrpc.INVALID_REQUEST, why))
            return None
        imitated = misspelled_method(msg["method"])
        if imitated is not None:
            why = f"mcpwrap: method {msg['method']!r} is not {imitated!r} spelled exactly; not passed on"
            self._to_server(jsonrpc.error(request_id, jsonrpc.INVALID_REQUEST, why))
            return None
        try:
            kind = classify_request(msg.get("method"), msg.get("params"), Direction.TO_CLIENT)
        except ValueError as exc:
            self._to_server(jsonrpc.error(request_id, jsonrpc.INVALID_PARAMS, f"mcpwrap: {exc}"))
            return None
        if not kind.is_call:
            self._waiting[key] = None
            return msg
        self._judging[key] = None  # before the task: an eager task may finish (and unregister) at once
        task = self._spawn(self._judge(msg, key))
        if key in self._judging:
            self._judging[key] = task
        return None

    async def _judge(self, msg: Message, key: str) -> None:
        try:
            judged = await self._frames.judge(msg, self._notify_server, to_client=True)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # never leave the server waiting on a request nobody judged
            log.exception("mcpwrap could not judge the server's request %r", msg.get("id"))
            why = f"agent-mesh could not judge this request ({type(exc).__name__}); it was not passed on"
            judged = Judged(answer=jsonrpc.error(msg["id"], jsonrpc.INTERNAL_ERROR, why))
        finally:
            self._judging.pop(key, None)
        if judged.answer is not None:
            self._to_server(judged.answer)
            return
        self._waiting[key] = judged.ticket
        self._to_client(msg)

    def answered(self, msg: Message) -> bool:
        """The client's response to a server request: record it; False when nothing was asked under its id."""
        key = jsonrpc.id_key(msg.get("id"))
        if key not in self._waiting:
            log.warning("dropped a client response to id %r: the server has no request under that id", msg.get("id"))
            return False
        ticket = self._waiting.pop(key)
        if ticket is not None:
            self._frames.finish(ticket, msg)
        return True

    def input_required(self, msg: Message, body: dict[str, Any], ticket: CallTicket | None) -> Message | None:
        """A response to pass on now (itself, or an error), or None while its input requests are judged.

        `ticket` is the call the server answers: refused input means no retry of it continues unjudged.
        """
        try:
            asked = input_requests(body)
            kinds = [classify_request(method, params, Direction.TO_CLIENT) for _key, method, params in asked]
        except ValueError as exc:
            self._frames.refuse_continuation(ticket)
            why = f"mcpwrap: the server asked for input in a form that cannot be judged: {exc}"
            return jsonrpc.error(msg["id"], jsonrpc.INVALID_PARAMS, why)
        calls = [
            {"jsonrpc": "2.0", "id": msg["id"], "method": method, "params": params}
            for (_key, method, params), kind in zip(asked, kinds, strict=True)
            if kind.is_call
        ]
        if not calls:
            return msg
        self._spawn(self._judge_inputs(msg, calls, ticket))
        return None

    async def _judge_inputs(self, msg: Message, calls: list[Message], ticket: CallTicket | None) -> None:
        verdicts = [await self._frames.judge(call, self._notify_server, to_client=True) for call in calls]
        refused = next((j.answer for j in verdicts if j.answer is not None), None)
        if refused is not None:
            self._frames.refuse_continuation(ticket)
        for judged in verdicts:
            if judged.ticket is not None:
                why = None if refused is None else "another input request of the same result was refused"
                self._frames.settle(judged.ticket, Outcome(forwarded=refused is None, error=why))
        self._to_client(refused if refused is not None else msg)

    def close(self, why: str) -> None:
        """The session ends: requests the client never answered are recorded as such."""
        for ticket in self._waiting.values():
            if ticket is not None:
                self._frames.finish(ticket, jsonrpc.error(None, jsonrpc.SERVER_EXITED, why))
        self._waiting.clear()

    def abandon(self) -> None:
        """The server is gone: stop judging its requests (nobody is left to answer)."""
        judging, self._judging = self._judging, {}
        for task in judging.values():
            if task is not None:
                task.cancel()
