"""Following MCP calls to their answers: JSON bodies and SSE streams are read for each tracked call's
outcome, `tools/list` results are filtered, and answers to refused calls are swapped for the refusal."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from addons.mcp_messages import RequestId, encode, filter_tools
from addons.sse_stream import SseParser, format_event
from policy import Outcome, ToolCall, Verdict

Finish = Callable[[ToolCall, Verdict, Outcome], None]
# (agent, server, session, tool) -> whether the agent may see the tool in tools/list.
Visible = Callable[[str, str, str | None, dict[str, Any]], bool]


def id_key(request_id: object) -> str:
    """A dictionary key that keeps 1 and "1" apart, as JSON-RPC does."""
    return f"s:{request_id}" if isinstance(request_id, str) else f"{type(request_id).__name__}:{request_id}"


@dataclass(slots=True)
class Tracked:
    call: ToolCall
    verdict: Verdict
    started: float


class ResponseTracker:
    """The calls of one exchange (or one legacy SSE session) waiting for their JSON-RPC responses."""

    def __init__(self, finish: Finish, visible: Visible) -> None:
        self._finish = finish
        self._visible = visible
        self.calls: dict[str, Tracked] = {}
        self.lists: dict[str, tuple[str, str, str | None]] = {}
        self.substitutes: dict[str, dict[str, Any]] = {}

    def track_call(self, request_id: RequestId | None, call: ToolCall, verdict: Verdict) -> None:
        self.calls[id_key(request_id)] = Tracked(call, verdict, time.perf_counter())

    def track_list(self, request_id: RequestId | None, agent: str, server: str, session: str | None) -> None:
        self.lists[id_key(request_id)] = (agent, server, session)

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
        return bool(self.calls or self.lists or self.substitutes)

    def process(self, msg: Any, status: int | None) -> Any | None:
        """One message from the upstream: record outcomes; return its replacement, or None to keep it."""
        if not isinstance(msg, dict) or "method" in msg or not ("result" in msg or "error" in msg):
            return None
        key = id_key(msg.get("id"))
        swap = self.substitutes.pop(key, None)
        if swap is not None:
            return swap
        tracked = self.calls.pop(key, None)
        if tracked is not None:
            result = msg.get("result")
            is_error = "error" in msg or (isinstance(result, dict) and result.get("isError") is True)
            latency = (time.perf_counter() - tracked.started) * 1000
            self._finish(
                tracked.call, tracked.verdict, Outcome(True, status=status, is_error=is_error, latency_ms=latency)
            )
        listed = self.lists.pop(key, None)
        if listed is not None and "result" in msg:
            agent, server, session = listed
            result, removed = filter_tools(msg["result"], lambda t: self._visible(agent, server, session, t))
            if removed:
                return {**msg, "result": result}
        return None

    def process_body(self, body: bytes, status: int | None) -> bytes | None:
        """A JSON response body (one message or a batch): the rewritten body, or None when unchanged."""
        try:
            value = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if isinstance(value, list):
            new = [self.process(m, status) for m in value]
            if all(n is None for n in new):
                return None
            return encode([n if n is not None else m for n, m in zip(new, value, strict=True)])
        replaced = self.process(value, status)
        return encode(replaced) if replaced is not None else None

    def close(self, error: str) -> None:
        """The exchange ended: every call still waiting gets an outcome saying so."""
        for tracked in self.calls.values():
            latency = (time.perf_counter() - tracked.started) * 1000
            self._finish(tracked.call, tracked.verdict, Outcome(True, error=error, latency_ms=latency))
        self.calls.clear()
        self.lists.clear()
        self.substitutes.clear()


class SseRewriter:
    """A `flow.response.stream` callable: passes events through as they complete, rewriting JSON-RPC
    messages the tracker replaces, and reporting `endpoint` events (the 2024-11-05 transport)."""

    def __init__(
        self,
        tracker: ResponseTracker,
        status: int | None,
        on_endpoint: Callable[[str], None] | None = None,
        prefix: bytes = b"",
    ) -> None:
        self.tracker = tracker
        self._status = status
        self._on_endpoint = on_endpoint
        self._prefix = prefix
        self._parser = SseParser()

    def __call__(self, chunk: bytes) -> bytes:
        out = [self._prefix] if self._prefix else []
        self._prefix = b""
        if not chunk:
            out.append(self._parser.flush())
            return b"".join(out)
        for event in self._parser.feed(chunk):
            if event.event == "endpoint" and self._on_endpoint is not None:
                self._on_endpoint(event.data)
            if event.event != "message" or not event.data or not self.tracker.waiting:
                out.append(event.raw)
                continue
            rewritten = self._rewrite(event.data)
            out.append(format_event(rewritten, event_id=event.id) if rewritten is not None else event.raw)
        return b"".join(out)

    def _rewrite(self, data: str) -> str | None:
        body = self.tracker.process_body(data.encode("utf-8"), self._status)
        return body.decode("utf-8") if body is not None else None
