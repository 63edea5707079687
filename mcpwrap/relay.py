"""The stdio relay: frames flow client <-> server, each request judged by its kind (policy.wire.kinds).

Client -> server: every frame is parsed and checked; one that is not JSON-RPC gets a JSON-RPC error and the
session goes on. Calls (`tools/call`, `resources/read`, `prompts/get`, unknown methods...) are judged, each
in its own task, so a held call never stops other traffic; lists and plumbing are forwarded at once. Every
frame either way is forwarded as mcpwrap parsed it, never as its sender spelled it (duplicate keys must not
read differently to the receiver); a server response to no forwarded request, or a server frame that is not
JSON, is dropped.
A request id already in flight is refused, never run twice. Server -> client: responses are matched to their
requests (outcomes recorded, lists filtered), and the server's own requests are handled by `Asked`
(mcpwrap/asked.py). When the server goes away, every request still in flight gets a JSON-RPC error.
The checks and records of client requests are in mcpwrap/flights.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from mcpwrap.asked import Asked
from mcpwrap.flights import INTERNAL_ID_PREFIX, Batch, InFlight, Judging, Plan, admit, sort_batch, unsent
from mcpwrap.frame_judge import CallTicket, FrameJudge, Judged
from mcpwrap.framing import ByteSink, FrameTooLarge, read_frames, write_frame
from policy import Outcome, RequestKind
from policy.gate.listing import FILTERED
from policy.wire import jsonrpc
from policy.wire.jsonrpc import Message

# An internal request mcpwrap sends the server itself (server/discover, tools/list) waits this long.
INTERNAL_REQUEST_SECONDS = 10.0
SERVER_GONE = "mcpwrap: the MCP server is gone; the call was not run"

log = logging.getLogger("mcpwrap")


class Relay:
    """Relays one client (mcpwrap's stdio) to one server (the child's stdio) under a FrameJudge."""

    def __init__(
        self,
        client_in: asyncio.StreamReader,
        client_out: ByteSink,
        server_in: ByteSink,
        server_out: asyncio.StreamReader,
        frame_judge: FrameJudge,
    ) -> None:
        self._client_in = client_in
        self._client_out = client_out
        self._server_in = server_in
        self._server_out = server_out
        self._frames = frame_judge
        self._inflight: dict[str, InFlight] = {}
        self._judging: dict[str, Judging] = {}
        self._internal: dict[str, asyncio.Future[Message]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server_open = True
        self._drained = asyncio.Event()
        self._drained.set()
        self._asked = Asked(frame_judge, self._to_client, self._to_server_msg, self._spawn)
        frame_judge.bind(self.ask_server)

    # -- writing -----------------------------------------------------------------------------------

    def _to_client(self, msg: Message | list[Any]) -> None:
        write_frame(self._client_out, jsonrpc.dump(msg))

    def _to_server(self, frame: bytes) -> None:
        if self._server_open:
            write_frame(self._server_in, frame)

    def _to_server_msg(self, msg: Message) -> None:
        self._to_server(jsonrpc.dump(msg))

    async def notify_client(self, msg: Message) -> None:
        self._to_client(msg)
        await self._client_out.drain()

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- client -> server --------------------------------------------------------------------------

    async def pump_client(self) -> None:
        """Read the client until EOF; returns once every judged call has been forwarded or answered."""
        try:
            async for frame in read_frames(self._client_in):
                try:
                    self._from_client(frame)
                except Exception as exc:  # one frame must never end the session, let alone silently
                    log.exception("mcpwrap could not handle a client frame")
                    why = f"mcpwrap could not handle this message ({type(exc).__name__}); it was not forwarded"
                    self._to_client(jsonrpc.error(None, jsonrpc.INTERNAL_ERROR, why))
                await self._server_drain()
                await self._client_out.drain()
        except FrameTooLarge as exc:
            log.error("client frame refused: %s", exc)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _server_drain(self) -> None:
        try:
            await self._server_in.drain()
        except (ConnectionError, BrokenPipeError):
            self._server_open = False

    def _from_client(self, frame: bytes) -> None:
        try:
            msg = jsonrpc.parse(frame)
        except ValueError as exc:
            self._to_client(jsonrpc.error(None, jsonrpc.PARSE_ERROR, f"mcpwrap: {exc}"))
            return
        if isinstance(msg, list):
            self._client_batch_arrived(msg, frame)
            return
        why = jsonrpc.invalid(msg)
        if why is not None:
            self._to_client(jsonrpc.error(jsonrpc.id_of(msg), jsonrpc.INVALID_REQUEST, f"mcpwrap: {why}"))
            return
        if "method" not in msg:
            if self._asked.answered(msg):
                self._reencode_to_server(msg)
            return
        if "id" not in msg:
            if self._client_notification(msg):
                self._reencode_to_server(msg)
            return
        admitted = admit(msg, self._busy)
        if not isinstance(admitted, RequestKind):
            self._to_client(admitted)
            return
        if admitted.is_call:
            key = jsonrpc.id_key(msg["id"])
            entry = Judging(msg["id"])
            self._judging[key] = entry  # before the task: an eager task may finish (and unregister) at once
            task = self._spawn(self._client_call(msg, admitted, key, entry))
            if not task.done():
                entry.task = task
            return
        try:
            forward = jsonrpc.dump(msg)
        except ValueError as exc:
            self._to_client(jsonrpc.error(msg["id"], jsonrpc.INVALID_PARAMS, f"mcpwrap: {exc}"))
            return
        self._track(msg, None, None)
        self._to_server(forward)

    def _reencode_to_server(self, msg: Message | list[Any]) -> None:
        """Forward what mcpwrap parsed, never the client's bytes: a frame with duplicate keys or odd escapes
        could read differently to the server's parser than to the judge's (first key wins, say)."""
        try:
            self._to_server(jsonrpc.dump(msg))
        except ValueError as exc:  # a lone surrogate or NaN the parser let in: nothing honest to forward
            log.warning("dropped a client message JSON cannot carry: %s", exc)

    def _busy(self, key: str) -> bool:
        return key in self._inflight or key in self._judging

    def _client_notification(self, msg: Message) -> bool:
        """Whether to forward a client notification (a method sent without an id)."""
        method = msg["method"]
        if not method.startswith("notifications/"):
            # A call without an id cannot be answered, so it cannot be refused readably: it is not run.
            log.warning("dropped a %s without an id: a call is judged only as a request", method)
            return False
        return not (method == "notifications/cancelled" and self._cancel_judging(msg))

    def _track(self, msg: Message, ticket: CallTicket | None, batch: Batch | None) -> None:
        key = jsonrpc.id_key(msg["id"])
        self._inflight[key] = InFlight(msg["id"], msg["method"], ticket, batch)
        self._drained.clear()
        if msg["method"] == "initialize":
            self._frames.learn_protocol_version(jsonrpc.params_of(msg).get("protocolVersion"))

    def _cancel_judging(self, msg: Message) -> bool:
        """A cancellation of a call still being judged or held: the server never saw it, so drop both."""
        key = jsonrpc.id_key(jsonrpc.params_of(msg).get("requestId"))
        judging = self._judging.get(key)
        if judging is None:
            return False
        if not judging.solo:
            judging.cancelled = True  # the batch's task goes on for the others; this one is never forwarded
            return True
        if judging.task is None:
            return False
        del self._judging[key]
        judging.task.cancel()
        return True

    async def _client_call(self, msg: Message, kind: RequestKind, key: str, entry: Judging) -> None:
        try:
            judged = await self._frames.judge(msg, self.notify_client, kind)
        except asyncio.CancelledError:
            return  # the client cancelled it, or the server left: no response is due here (the FrameJudge recorded it)
        except Exception as exc:  # never lose a call: answer it
            log.exception("mcpwrap could not judge request %r", msg.get("id"))
            why = f"agent-mesh could not judge this call ({type(exc).__name__}); it was not run"
            judged = Judged(answer=jsonrpc.error(msg["id"], jsonrpc.INTERNAL_ERROR, why))
        finally:
            if self._judging.get(key) is entry:
                del self._judging[key]
        self._deliver(msg, judged, None)
        await self._server_drain()
        await self._client_out.drain()

    def _deliver(self, msg: Message, judged: Judged, batch: Batch | None) -> None:
        if judged.answer is not None:
            self._to_client(judged.answer)
            return
        if not self._server_open:
            self._answer_gone(msg["id"], judged.ticket, SERVER_GONE)
            return
        self._track(msg, judged.ticket, batch)
        self._to_server(judged.forward or jsonrpc.dump(msg))

    def _client_batch_arrived(self, items: list[Any], frame: bytes) -> None:
        """Check every element now (ids reserved at once); judge the calls in a task, answer the rest."""
        if not items:
            self._to_client(jsonrpc.error(None, jsonrpc.INVALID_REQUEST, "mcpwrap: an empty batch"))
            return
        plan, errors = sort_batch(items, self._busy, self._asked.answered, self._client_notification)
        batch = Batch(answers=errors)
        calls = [(item, kind) for item, kind in plan if kind is not None and kind.is_call]
        if not calls and not batch.answers and len(plan) == len(items):
            try:
                forward = jsonrpc.dump(items)  # what was judged, not the client's bytes (see _reencode_to_server)
            except ValueError as exc:
                self._to_client(jsonrpc.error(None, jsonrpc.INVALID_REQUEST, f"mcpwrap: {exc}"))
                return
            for item, kind in plan:
                if kind is not None:
                    self._track(item, None, None)
            self._to_server(forward)
            return
        for item, kind in plan:
            if kind is not None and not kind.is_call:
                self._track(item, None, batch)  # reserved now; forwarded with the judged calls
        entries = {jsonrpc.id_key(item["id"]): Judging(item["id"], solo=False) for item, _kind in calls}
        self._judging.update(entries)
        task = self._spawn(self._client_batch(plan, batch, entries))
        if not task.done():
            for entry in entries.values():
                entry.task = task

    async def _client_batch(self, plan: Plan, batch: Batch, entries: dict[str, Judging]) -> None:
        """Judge every call (concurrently), forward the rest as one batch, merge mcpwrap's answers."""

        async def judge(item: Message, kind: RequestKind | None) -> Judged | None:
            if kind is None or not kind.is_call:
                return None
            return await self._frames.judge(item, self.notify_client, kind)

        try:
            verdicts = await asyncio.gather(*(judge(item, kind) for item, kind in plan))
        finally:
            for key, entry in entries.items():
                if self._judging.get(key) is entry:
                    del self._judging[key]
        forward: list[Any] = []
        for (item, _kind), judged in zip(plan, verdicts, strict=True):
            mine = entries.get(jsonrpc.id_key(item["id"])) if judged is not None else None
            if judged is None:
                forward.append(item)
            elif mine is not None and mine.cancelled:
                # The client cancelled it while it was judged or held: no answer is due, and it is not run.
                if judged.ticket is not None:
                    self._frames.settle(judged.ticket, Outcome(forwarded=False, error="cancelled by the client"))
            elif judged.answer is not None:
                batch.answers.append(judged.answer)
            else:
                forward.append(item)
                self._track(item, judged.ticket, batch)
        if forward:
            try:
                frame = jsonrpc.dump(forward)
            except ValueError as exc:  # a number JSON cannot carry: answer rather than forward half a batch
                self._refuse_batch(forward, batch, f"mcpwrap: {exc}")
                forward = []
            else:
                self._to_server(frame)
        if batch.answers and not any(isinstance(i, dict) and jsonrpc.is_request(i) for i in forward):
            batch.sent = True
            self._to_client(batch.answers)
        await self._server_drain()
        await self._client_out.drain()

    def _refuse_batch(self, forward: list[Any], batch: Batch, why: str) -> None:
        for item in forward:
            if isinstance(item, dict) and jsonrpc.is_request(item):
                flight = self._inflight.pop(jsonrpc.id_key(item["id"]), None)
                if flight is not None and flight.ticket is not None:
                    self._frames.finish(flight.ticket, jsonrpc.error(item["id"], jsonrpc.INVALID_PARAMS, why))
                batch.answers.append(jsonrpc.error(item["id"], jsonrpc.INVALID_PARAMS, why))
        if not self._inflight:
            self._drained.set()

    # -- server -> client --------------------------------------------------------------------------

    async def pump_server(self) -> None:
        """Read the server until EOF, then fail every request still in flight."""
        try:
            async for frame in read_frames(self._server_out):
                try:
                    await self._from_server(frame)
                except Exception:  # one frame must never end the session; unhandled, it is not passed on
                    log.exception("mcpwrap could not handle a server frame; it was dropped")
                await self._client_out.drain()
        except FrameTooLarge as exc:
            log.error("server frame refused: %s", exc)
        self._server_open = False

    async def _from_server(self, frame: bytes) -> None:
        try:
            msg = jsonrpc.parse(frame)
        except ValueError as exc:
            # The server's bytes are never passed on: a lenient client parser (invalid UTF-8 replaced, say)
            # could read a request in them that nobody judged. Read the way such a client would, the frame is
            # handled (judged, matched) like any other, and what the client gets is what was read.
            try:
                msg = jsonrpc.parse(frame.decode("utf-8", "replace").encode("utf-8"))
            except ValueError:
                log.warning("dropped a server frame that is not JSON-RPC: %s", exc)
                return
            log.warning("a server frame that is not UTF-8 was read with its bad bytes replaced")
        if isinstance(msg, list):
            kept: list[Any] = []
            batches: list[Batch] = []
            answered: list[tuple[InFlight | None, Any]] = []
            for item in msg:
                out, flight = await self._server_item(item) if isinstance(item, dict) else (item, None)
                if out is not None:
                    kept.append(out)
                batches += unsent(flight)
                answered.append((flight, item))
            for batch in batches:
                kept += batch.answers
            if kept:
                self._to_client_or_fail(kept)
            self._record(answered)
            return
        out, flight = await self._server_item(msg)
        if out is not None:
            # Always what mcpwrap parsed and matched, never the server's bytes: duplicate keys ("id", "method")
            # could read differently to the client's parser.
            self._to_client_or_fail(out)
        for batch in unsent(flight):
            # The server answered a batch element on its own: mcpwrap's answers follow as their own array.
            self._to_client(batch.answers)
        self._record([(flight, msg)])

    def _to_client_or_fail(self, out: Message | list[Any]) -> None:
        """Send the server's message on; one JSON cannot carry (NaN, a lone surrogate) becomes an error for each
        response in it, so no client waits forever on a call that ran."""
        try:
            self._to_client(out)
        except ValueError as exc:
            why = f"mcpwrap: the server's answer cannot be passed on: {exc}"
            log.warning("%s", why)
            errors = jsonrpc.undeliverable(out, why)
            if errors is not None:
                self._to_client(errors)

    def _record(self, answered: list[tuple[InFlight | None, Any]]) -> None:
        # After the client has its answer: recording is not on the call's critical path.
        for flight, response in answered:
            if flight is not None and flight.ticket is not None:
                self._frames.finish(flight.ticket, response)

    async def _server_item(self, msg: Message) -> tuple[Message | None, InFlight | None]:
        """What to send the client for one server message (itself, a changed copy, or None) and its request."""
        if jsonrpc.is_request(msg):
            return self._asked.request(msg), None
        if not jsonrpc.is_response(msg):
            method = msg.get("method")
            if method == "notifications/tools/list_changed":
                self._frames.tools_changed()
            elif isinstance(method, str) and not method.startswith("notifications/"):
                # A request without an id is judged by nobody (as from the client): never passed on.
                log.warning("dropped a server %s without an id: a request is judged only with one", method)
                return None, None
            return msg, None
        key = jsonrpc.id_key(msg["id"])
        waiter = self._internal.pop(key, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(msg)
            return None, None
        flight = self._inflight.pop(key, None)
        if flight is None:
            # A response to nothing forwarded (a held or refused call, an id never used, one answered already):
            # passed on, the client would read a call answered that never ran, or answered twice.
            log.warning("dropped a server response to id %r: no request under that id was forwarded", msg["id"])
            return None, None
        if not self._inflight:
            self._drained.set()
        body = msg.get("result")
        if self._frames.needs_server_name:
            self._frames.learn_server(jsonrpc.server_name_from_result(body))
        if flight.method == "initialize":
            self._frames.initialize_answered()
        if isinstance(body, dict):
            if flight.method == "tools/list":
                filtered = await self._frames.filter_tools(body)
            elif flight.method in FILTERED:
                filtered = self._frames.filter_list(flight.method, body)
            else:
                return self._asked.input_required(msg, body, flight.ticket), flight
            if filtered is not body:
                return {**msg, "result": filtered}, flight
        return msg, flight

    # -- internal requests and shutdown --------------------------------------------------------------

    async def ask_server(self, method: str, params: dict[str, Any]) -> Message:
        """Send the server a request of mcpwrap's own and wait for its response (never seen by the client)."""
        request_id = f"{INTERNAL_ID_PREFIX}{next(self._ids)}"
        key = jsonrpc.id_key(request_id)
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._internal[key] = waiter
        self._to_server(jsonrpc.dump({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        await self._server_drain()
        try:
            return await asyncio.wait_for(waiter, INTERNAL_REQUEST_SECONDS)
        finally:
            self._internal.pop(key, None)

    def fail_inflight(self, why: str) -> None:
        """Answer every request the server will never answer, and record the calls' outcome."""
        self._server_open = False
        for waiter in self._internal.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(why))
        self._internal.clear()
        for flight in self._inflight.values():
            self._answer_gone(flight.request_id, flight.ticket, why)
        self._inflight.clear()
        self._asked.close(why)
        self._drained.set()

    def _answer_gone(self, request_id: Any, ticket: CallTicket | None, why: str) -> None:
        response = jsonrpc.error(request_id, jsonrpc.SERVER_EXITED, why)
        if ticket is not None:
            self._frames.finish(ticket, response)
        self._to_client(response)

    async def drained(self, seconds: float) -> bool:
        """Wait until the server has answered every forwarded request (False after `seconds`)."""
        try:
            await asyncio.wait_for(self._drained.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def abandon_judging(self, why: str) -> None:
        """The server is gone: stop judging and holding, and tell the client why (recorded as cancelled).

        Only calls still being judged are here: a call judged at once left this table before its task
        returned, so it is answered once, by the server or by `fail_inflight`, never twice.
        """
        judging, self._judging = self._judging, {}
        for entry in judging.values():
            if entry.task is not None:
                entry.task.cancel()
            self._to_client(jsonrpc.error(entry.request_id, jsonrpc.SERVER_EXITED, why))
        self._asked.abandon()
