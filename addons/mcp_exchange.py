"""Following MCP calls to their answers: JSON bodies and SSE streams are read for each tracked call's
outcome, list results are filtered, answers to refused calls are swapped for the refusal, and requests the
server sends its client in a stream are checked (addons/mcp_asked.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from addons.sse_stream import SseParser, format_event
from policy import Outcome, ToolCall, Verdict, filter_list
from policy.core.model import parse_json, readonly
from policy.gate.listing import Hidden
from policy.wire.jsonrpc import INTERNAL_ERROR, RequestId, dump, error, id_key, undeliverable

if TYPE_CHECKING:
    from addons.mcp_asked import AskedRequests

Finish = Callable[[ToolCall, Verdict, Outcome | Callable[[], Outcome]], None]
# (agent, server, session, tools/list result) -> (the result as the agent may see it, entries removed):
# Gate.observe_tools through the handler (pins, mcp.hide_denied_tools).
Visible = Callable[[str, str, str | None, Any], tuple[Any, int]]
# (agent, server, session) -> what to hide from that agent's resources/prompts lists (policy.gate.listing).
Hides = Callable[[str, str, str | None], Hidden]
# The server (None: unknown) said its tools changed: what the proxy learned of them is listed again.
ToolsChanged = Callable[[str | None], None]
LIST_CHANGED = "notifications/tools/list_changed"
DROPPED: dict[str, Any] = {}  # process(): the answer to the proxy's own request (mcp_learn), never the client's


@dataclass(slots=True)
class Tracked:
    call: ToolCall
    verdict: Verdict
    started: float


def unanswered(status: int | None) -> str:
    return f"the upstream answered HTTP {status} without a response to this call"


def _answers(msg: Any) -> bool:
    return isinstance(msg, dict) and "method" not in msg and ("result" in msg or "error" in msg)


def _outcome(msg: dict[str, Any], status: int | None, latency: float) -> Outcome:
    result = msg.get("result")
    is_error = "error" in msg or (isinstance(result, dict) and result.get("isError") is True)
    return Outcome(True, status=status, is_error=is_error, latency_ms=latency)


@readonly
class LateAnswer:
    """A call's outcome read from its JSON response body when the trace record is built, off the event loop:
    what `ResponseTracker.process` would find, without parsing the body on the hot path."""

    body: bytes
    key: str
    status: int | None
    latency_ms: float

    def __call__(self) -> Outcome:
        try:
            value = json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            value = None
        for msg in value if isinstance(value, list) else [value]:
            if _answers(msg) and id_key(msg.get("id")) == self.key:
                return _outcome(msg, self.status, self.latency_ms)
        return Outcome(True, error=unanswered(self.status), latency_ms=self.latency_ms)

    def __reduce__(self) -> tuple[type[LateAnswer], tuple[bytes, str, int | None, float]]:
        # The trace worker gets one per call, pickled on the writer's thread while it holds the GIL: a slots
        # dataclass's own pickling (fields() per object) cost that thread three times as much.
        return LateAnswer, (self.body, self.key, self.status, self.latency_ms)


class ResponseTracker:
    """The calls of one exchange (or one legacy SSE session) waiting for their JSON-RPC responses."""

    def __init__(
        self, finish: Finish, visible: Visible, hides: Hides | None = None, asked: AskedRequests | None = None
    ) -> None:
        self._finish = finish
        self._visible = visible
        self._hides = hides
        self.asked = asked
        self.owner: tuple[str, str] | None = None  # (agent, server) of the POST this tracker answers
        self.calls: dict[str, Tracked] = {}
        self.lists: dict[str, tuple[str, str, str | None, str]] = {}
        self.substitutes: dict[str, dict[str, Any]] = {}
        self.tools_changed: ToolsChanged | None = None
        # The proxy's own requests answered on this stream (a 2024-11-05 session's tools/list, addons/mcp_learn).
        self.own: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def track_call(self, request_id: RequestId | None, call: ToolCall, verdict: Verdict) -> None:
        self.calls[id_key(request_id)] = Tracked(call, verdict, time.perf_counter())

    def track_list(
        self, request_id: RequestId | None, agent: str, server: str, session: str | None, method: str = "tools/list"
    ) -> None:
        self.lists[id_key(request_id)] = (agent, server, session, method)

    def substitute(self, request_id: RequestId | None, response: dict[str, Any]) -> None:
        """The upstream's answer to this id (to the ping sent in place of a refused call) becomes `response`."""
        self.substitutes[id_key(request_id)] = response

    def adopt(self, other: ResponseTracker) -> None:
        """Take over what another tracker still waits for (a resumed stream of the same session)."""
        self.calls.update(other.calls)
        self.lists.update(other.lists)
        self.substitutes.update(other.substitutes)
        other.calls, other.lists, other.substitutes = {}, {}, {}

    @property
    def waiting(self) -> bool:
        return bool(self.calls or self.lists or self.substitutes or self.own)

    def process(self, msg: Any, status: int | None) -> Any | None:
        """One message from the upstream: record outcomes; return its replacement, or None to keep it."""
        if not _answers(msg):
            if self.tools_changed is not None and isinstance(msg, dict) and msg.get("method") == LIST_CHANGED:
                self.tools_changed(self.owner[1] if self.owner is not None else None)
            return None
        key = id_key(msg.get("id"))
        own = self.own.pop(key, None) if self.own else None
        if own is not None:
            if not own.done():
                own.set_result(msg)
            return DROPPED
        swap = self.substitutes.pop(key, None)
        if swap is not None:
            return swap
        tracked = self.calls.pop(key, None)
        if tracked is not None:
            latency = (time.perf_counter() - tracked.started) * 1000
            self._finish(tracked.call, tracked.verdict, _outcome(msg, status, latency))
            result = msg.get("result")
            if self.asked is not None and isinstance(result, dict) and result.get("resultType") == "input_required":
                refusal = self.asked.inputs(tracked.call, result, tracked.verdict)
                if refusal is not None:
                    return {"jsonrpc": "2.0", "id": msg.get("id"), "error": refusal}
        listed = self.lists.pop(key, None)
        if listed is not None and "result" in msg:
            agent, server, session, method = listed
            if method == "tools/list":
                result, removed = self._visible(agent, server, session, msg["result"])
            elif self._hides is not None:
                result, removed = filter_list(method, msg["result"], self._hides(agent, server, session))
            else:
                return None
            if removed:
                return {**msg, "result": result}
        return None

    def finish_later(self, body: bytes, status: int | None) -> bool:
        """Finish every waiting call with an outcome read from this JSON body later (LateAnswer); only when
        nothing in the body is to be rewritten (no refused call swapped, no tools/list filtered)."""
        if self.substitutes or self.lists or (self.asked is not None and b'"input_required"' in body):
            return False  # (a server asking for input is read now: its requests are checked before they pass)
        now = time.perf_counter()
        for key, tracked in self.calls.items():
            self._finish(tracked.call, tracked.verdict, LateAnswer(body, key, status, (now - tracked.started) * 1000))
        self.calls.clear()
        return True

    def process_body(self, body: bytes, status: int | None) -> bytes | None:
        """A JSON response body (one message or a batch): the rewritten body, or None when unchanged."""
        try:
            value = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None
        if isinstance(value, list):
            new = [self.process(m, status) for m in value]
            if all(n is None for n in new):
                return None
            kept = [n if n is not None else m for n, m in zip(new, value, strict=True) if n is not DROPPED]
            return _dump(kept) if kept else b""
        replaced = self.process(value, status)
        if replaced is DROPPED:
            return b""  # only the proxy's own answer: nothing for the client
        return _dump(replaced) if replaced is not None else None

    def close(self, error: str) -> None:
        """The exchange ended: every call still waiting gets an outcome saying so."""
        for tracked in self.calls.values():
            latency = (time.perf_counter() - tracked.started) * 1000
            self._finish(tracked.call, tracked.verdict, Outcome(True, error=error, latency_ms=latency))
        self.calls.clear()
        self.lists.clear()
        self.substitutes.clear()
        for own in self.own.values():
            if not own.done():
                own.set_exception(ConnectionError(error))
        self.own.clear()


def _dump(out: Any) -> bytes:
    """The rewritten body; responses JSON cannot carry (NaN, a lone surrogate) become an error for their id,
    as under mcpwrap (policy.wire.jsonrpc), and anything else that cannot be carried a single error."""
    try:
        return dump(out)
    except ValueError as exc:
        why = f"agent-mesh: the server's answer cannot be passed on: {exc}"
        return dump(undeliverable(out, why) or error(None, INTERNAL_ERROR, why))


class SseRewriter:
    """A `flow.response.stream` callable: passes events through as they complete, rewriting JSON-RPC
    messages the tracker replaces, and reporting `endpoint` events (the 2024-11-05 transport)."""

    def __init__(
        self,
        tracker: ResponseTracker,
        status: int | None,
        on_endpoint: Callable[[str], None] | None = None,
        prefix: bytes = b"",
        session: str = "",
    ) -> None:
        self.tracker = tracker
        self._status = status
        self._on_endpoint = on_endpoint
        self._prefix = prefix
        self._session = session
        self._parser = SseParser()

    def __call__(self, chunk: bytes) -> bytes | list[bytes]:
        out = [self._prefix] if self._prefix else []
        self._prefix = b""
        if not chunk:
            out.append(self._parser.flush())
            return b"".join(out)
        for event in self._parser.feed(chunk):
            if event.event == "endpoint" and self._on_endpoint is not None:
                self._on_endpoint(event.data)
            if event.event != "message" or not event.data:
                out.append(event.raw)
                continue
            if "list_changed" in event.data and self.tracker.tools_changed is not None and not self.tracker.waiting:
                self.tracker.process_body(event.data.encode("utf-8"), self._status)  # (GET streams: nothing waits)
            # A server request names its method; an escaped spelling (`"\u006dethod"`) is parsed too, never skipped.
            asks = self.tracker.asked is not None and ('"method"' in event.data or "\\u" in event.data)
            if not asks and not self.tracker.waiting:
                out.append(event.raw)
                continue
            rewritten = self._asks(event.data) if asks else None
            if self.tracker.waiting:
                new = self._rewrite(rewritten or event.data)
                if new == "":
                    continue  # the answer to the proxy's own request: never passed to the client
                rewritten = new or rewritten
            out.append(format_event(rewritten, event_id=event.id) if rewritten is not None else event.raw)
        # Nothing to send (an unfinished event, an answer taken off the stream): no chunk at all, since an empty
        # one is the last chunk of a chunked response and would end the client's stream.
        return b"".join(out) or []

    def _asks(self, data: str) -> str | None:
        """The event's data with each server request the policy denies replaced by a ping (None: unchanged)."""
        assert self.tracker.asked is not None
        try:
            value = parse_json(data.encode("utf-8"))
        except (ValueError, RecursionError):
            return None
        items = value if isinstance(value, list) else [value]
        changed = False
        out: list[Any] = []
        for item in items:
            swap = None
            if isinstance(item, dict) and isinstance(item.get("method"), str) and "id" in item:
                swap = self.tracker.asked.passing(item, self._session, self.tracker.owner)
            changed = changed or swap is not None
            out.append(swap if swap is not None else item)
        if not changed:
            return None
        return _dump(out if isinstance(value, list) else out[0]).decode("utf-8")

    def _rewrite(self, data: str) -> str | None:
        body = self.tracker.process_body(data.encode("utf-8"), self._status)
        return body.decode("utf-8") if body is not None else None
