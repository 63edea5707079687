"""What mcpwrap decides with the Gate: judge each call (every request kind policy.wire says is one, either
direction), record its outcome, filter the lists.

The FrameJudge knows who is calling (`--agent`), which server this is (`--server`, else what the server
reports), each tool's annotations and pins. It never decides itself: the Gate does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcpwrap.tools import ToolBook
from policy import (
    Direction,
    Gate,
    Outcome,
    RequestKind,
    ToolCall,
    Verdict,
    VerdictKind,
    classify_request,
    filter_list,
    policy_hides,
)
from policy.core.model import readonly
from policy.wire import era, jsonrpc, refusals, rejects
from policy.wire.jsonrpc import Message

log = logging.getLogger("mcpwrap")

# Seconds between progress keepalives while a call is held (clients reset their timeout on each).
KEEPALIVE_SECONDS = 5.0
# A call sent before the server answered `initialize` waits this long for the answer (the server's name).
INITIALIZE_WAIT_SECONDS = 10.0
# A server that lists more pages than this is cut short: annotations beyond are simply unknown.
MAX_LIST_PAGES = 50

type Notify = Callable[[Message], Awaitable[None]]
type Ask = Callable[[str, dict[str, Any]], Awaitable[Message]]


@readonly
class CallTicket:
    """A call the Gate let through: what to record when the server's response arrives."""

    call: ToolCall
    verdict: Verdict
    started: float


@readonly
class Judged:
    """Either an answer mcpwrap gives the client itself, or the request to forward with its ticket."""

    answer: Message | None = None
    forward: bytes | None = None
    ticket: CallTicket | None = None


class FrameJudge:
    """Turns JSON-RPC frames into ToolCalls for the Gate and the Gate's verdicts into frames."""

    def __init__(
        self,
        gate: Gate,
        *,
        agent: str,
        session_id: str,
        server: str | None,
        fallback_server: str,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._gate = gate
        self._keepalive_seconds = keepalive_seconds
        self._agent = agent
        self._session_id = session_id
        self._server = server
        self._fixed_server = server is not None
        self._fallback_server = fallback_server
        self._protocol_version: str | None = None
        self._ask: Ask | None = None
        self._learning = asyncio.Lock()
        self._initialized = asyncio.Event()
        self._tools = ToolBook(gate, agent=agent, session_id=session_id)

    @property
    def server(self) -> str:
        return self._server or self._fallback_server

    def bind(self, ask: Ask) -> None:
        """Give the FrameJudge a way to send the server requests of its own (server/discover, tools/list)."""
        self._ask = ask

    @property
    def needs_server_name(self) -> bool:
        """True until the server's name is known (from --server or from what the server reported)."""
        return self._server is None

    def learn_server(self, name: str | None) -> None:
        if name and not self._fixed_server and self._server is None:
            self._server = name

    def initialize_answered(self) -> None:
        """The server answered `initialize`: its name is known now, or it gave none (the fallback stands)."""
        self._initialized.set()

    async def _initialize_answered(self) -> bool:
        """Whether `initialize` was answered; when it was sent and not answered yet, wait (bounded) for it."""
        if self._initialized.is_set():
            return True
        if self._protocol_version is None:
            return False  # never sent: nothing to wait for
        try:
            await asyncio.wait_for(self._initialized.wait(), INITIALIZE_WAIT_SECONDS)
        except TimeoutError:
            return False
        return True

    def learn_protocol_version(self, version: Any) -> None:
        if isinstance(version, str):
            self._protocol_version = version

    def tools_changed(self) -> None:
        self._tools.forget()

    async def filter_tools(self, body: dict[str, Any]) -> dict[str, Any]:
        """A tools/list result without the tools this agent may not see (Gate.observe_tools: policy, pins)."""
        return self._tools.filter(self.server, body, for_client=True)

    def filter_list(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """A resources/prompts list result without what this agent may never read (policy.gate.listing)."""
        hidden = policy_hides(
            self._gate, agent=self._agent, surface="mcp_stdio", server=self.server, session=self._session_id
        )
        filtered, _removed = filter_list(method, body, hidden)
        return filtered  # type: ignore[no-any-return]

    # -- calls -------------------------------------------------------------------------------------

    async def judge(
        self, msg: Message, notify: Notify, kind: RequestKind | None = None, *, to_client: bool = False
    ) -> Judged:
        """The whole life of a call before its receiver sees it: check, maybe hold, then forward or refuse.

        `kind` is what policy.wire.classify_request made of the request (classified here when None);
        `to_client` for a request the server sends the client (sampling, elicitation, roots).
        """
        request_id = msg.get("id")
        modern = era.is_modern_request(msg)
        params = jsonrpc.params_of(msg)
        direction = Direction.TO_CLIENT if to_client else Direction.TO_SERVER
        try:
            kind = kind or classify_request(msg.get("method"), msg.get("params"), direction)
            forward = jsonrpc.dump(msg)  # what the receiver gets is exactly what was judged
        except ValueError as exc:
            return Judged(answer=rejects.unreadable(request_id, exc))
        is_tool = kind.method == "tools/call" and not to_client
        name = kind.tool
        if not to_client and not modern and self._server is None and not await self._initialize_answered():
            # Before `initialize` is answered the server's own name is unknown: judged under the command's
            # basename, the call would escape rules written for that name. A 2025-era client waits for it.
            why = "mcpwrap: initialize first (the server's name, which policy rules use, is not known yet)"
            return Judged(answer=jsonrpc.error(request_id, jsonrpc.INVALID_REQUEST, why))
        try:
            if not to_client:
                await self._learn_before_call(msg, list_tools=is_tool)
            lookalike = self._tools.imitated(name) if is_tool else None
            if lookalike is not None:
                # Judged under its odd spelling, rules for the listed tool would miss it; a lenient server
                # might still run that tool. Refused (before the Gate: it is not a call to any listed tool).
                return Judged(answer=rejects.lookalike_tool(request_id, name, lookalike))
            if not to_client and self._server is None and not self._initialized.is_set():
                # A 2026-era `_meta` on a call to a server that cannot answer server/discover: judged under
                # the command's basename, it would escape the rules written for the server's own name.
                why = "mcpwrap: the server did not say who it is (server/discover failed); the call was not run"
                return Judged(answer=jsonrpc.error(request_id, jsonrpc.INVALID_REQUEST, why))
            call = self._call(name, kind.arguments or {}, era.meta_version(msg), tool=is_tool)
            verdict = await self._verdict(call, params, notify)
        except Exception as exc:  # the store or the server failed: fail closed, never forward unjudged
            log.error("could not judge %s: %s: %s", name, type(exc).__name__, exc)
            why = f"agent-mesh could not judge this call ({type(exc).__name__}); it was not run"
            return Judged(answer=jsonrpc.error(request_id, jsonrpc.INTERNAL_ERROR, why))
        if verdict.allowed:
            return Judged(forward=forward, ticket=CallTicket(call, verdict, time.monotonic()))
        self._gate.finish(call, verdict, Outcome(forwarded=False))
        if not is_tool:
            return Judged(answer=refusals.refusal_error(request_id, verdict))
        refuse_as = self._gate.config.mcp.refuse_as
        structured = not self._tools.has_output_schema(name)
        answer = refusals.refusal(request_id, verdict, modern=modern, refuse_as=refuse_as, structured=structured)
        return Judged(answer=answer)

    def _call(self, name: str, arguments: Mapping[str, Any], version: str | None, *, tool: bool) -> ToolCall:
        return ToolCall(
            agent=self._agent,
            surface="mcp_stdio",
            server=self.server,
            tool=name,
            arguments=arguments,
            session_id=self._session_id,
            mcp_protocol_version=version or self._protocol_version,
            # Annotations describe tools; a resource read or a server's request has none to trust.
            annotations=self._tools.annotations(name) if tool else {},
        )

    async def _verdict(self, call: ToolCall, params: dict[str, Any], notify: Notify) -> Verdict:
        if era.is_continuation(params):
            # The retry of a call the server answered `input_required`: the Gate binds it to the original.
            verdict = await self._gate.check_continuation(call)
        else:
            verdict = await self._gate.check(call)  # tool pins included: a rung of the Gate (policy/gate/pins.py)
        if verdict.kind is VerdictKind.PENDING:
            verdict = await self._hold(call, verdict, params, notify)
        return verdict

    async def _hold(self, call: ToolCall, verdict: Verdict, params: dict[str, Any], notify: Notify) -> Verdict:
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        log.warning("%s is waiting for approval %s", call.full_name, verdict.approval_id)
        on_tick = None
        if token is not None:
            waiting = f"agent-mesh: waiting for a human to approve {verdict.approval_id}"

            async def keepalive(elapsed: float) -> None:
                body = {"progressToken": token, "progress": round(elapsed, 3), "message": waiting}
                await notify(jsonrpc.notification("notifications/progress", body))

            on_tick = keepalive
        try:
            return await self._gate.hold(verdict, on_tick=on_tick, tick_seconds=self._keepalive_seconds)
        except asyncio.CancelledError:
            # The client cancelled (or left) while the call was held: it never reached the server.
            self._gate.finish(call, verdict, Outcome(forwarded=False, error="cancelled by the client"))
            raise

    async def _learn_before_call(self, msg: Message, *, list_tools: bool) -> None:
        """Make sure the server's name (and for a tool call, the tool's annotations and pin) are known."""
        if self._ask is None:
            return
        meta = jsonrpc.params_of(msg).get("_meta")
        envelope = {"_meta": meta} if era.is_modern_request(msg) else {}
        if (self._server is None and envelope) or (list_tools and not self._tools.listed):
            async with self._learning:  # concurrent first calls share one discover and one listing
                if self._server is None and envelope:
                    # The stateless era has no initialize: ask the server who it is, as a client would.
                    found = await self._ask("server/discover", envelope)
                    self.learn_server(jsonrpc.server_name_from_result(found.get("result")))
                    if isinstance(found.get("result"), dict):
                        self._initialized.set()  # the server said who it is (perhaps nameless: the fallback)
                if list_tools and not self._tools.listed:
                    await self._list_tools(envelope)

    async def _list_tools(self, envelope: dict[str, Any]) -> None:
        assert self._ask is not None
        params = dict(envelope)
        for _ in range(MAX_LIST_PAGES):
            response = await self._ask("tools/list", params)
            body = response.get("result")
            if not isinstance(body, dict):
                # The server cannot list its tools: judge without annotations rather than ask on every call.
                self._tools.listed = True
                return
            self.learn_server(jsonrpc.server_name_from_result(body))
            self._tools.filter(self.server, body)
            cursor = body.get("nextCursor")
            if not isinstance(cursor, str):
                return
            params = {**envelope, "cursor": cursor}

    # -- outcomes ----------------------------------------------------------------------------------

    def refuse_continuation(self, ticket: CallTicket | None) -> None:
        """The server's input requests for this call were refused: its retry is refused, never continued
        (whether its outcome was recorded already or not)."""
        if ticket is not None:
            self._gate.inputs_refused(ticket.call)

    def settle(self, ticket: CallTicket, outcome: Outcome) -> None:
        """Record a call's outcome known without a response (a server's input request passed on or not)."""
        self._gate.finish(ticket.call, ticket.verdict, outcome)

    def finish(self, ticket: CallTicket, response: Message) -> None:
        """Record what the server did with a forwarded call."""
        latency = (time.monotonic() - ticket.started) * 1000.0
        body = response.get("result")
        err = response.get("error")
        if isinstance(err, dict):
            outcome = Outcome(forwarded=True, error=str(err.get("message", "error")), latency_ms=latency)
        else:
            is_error = bool(body.get("isError")) if isinstance(body, dict) else None
            outcome = Outcome(forwarded=True, is_error=is_error, latency_ms=latency)
            if isinstance(body, dict) and body.get("resultType") == "input_required":
                self._gate.input_required(ticket.call, ticket.verdict)
        self._gate.finish(ticket.call, ticket.verdict, outcome)
