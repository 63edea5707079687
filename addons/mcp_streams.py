"""Where MCP answers arrive, per flow and per session: a POST's own response (JSON or SSE), the 2024-11-05
event stream its endpoint belongs to, or the GET stream a client resumes after an SSE stream ended early."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from mitmproxy import http

from addons.mcp_asked import AskedRequests
from addons.mcp_exchange import Finish, Hides, ResponseTracker, SseRewriter, ToolsChanged, Visible, unanswered
from addons.mcp_flow import header_value
from addons.upstream import asked_url
from policy.wire.headers import SESSION_HEADER

# Sessions whose unanswered calls wait for a resumed stream; the oldest are given up beyond this.
PARKED_SESSIONS = 1024
Endpoint = tuple[str, int, str]


class McpStreams:
    """The trackers of MCP exchanges in flight, keyed by flow id, legacy endpoint or Mcp-Session-Id."""

    def __init__(
        self, finish: Finish, visible: Visible, hides: Hides | None = None, asked: AskedRequests | None = None
    ) -> None:
        self._finish = finish
        self._visible = visible
        self._hides = hides
        self.asked = asked
        self.exchanges: dict[str, ResponseTracker] = {}
        self.legacy: dict[Endpoint, ResponseTracker] = {}
        self.parked: dict[str, ResponseTracker] = {}
        self._endpoints: dict[str, list[Endpoint]] = {}
        self._gets: dict[str, tuple[ResponseTracker, str | None]] = {}
        self.tools_changed: ToolsChanged | None = None  # the proxy lists a server's tools again (mcp_learn)

    def new_tracker(self) -> ResponseTracker:
        tracker = ResponseTracker(self._finish, self._visible, self._hides, self.asked)
        tracker.tools_changed = self.tools_changed
        return tracker

    def legacy_session(self, host: str, port: int, path: str) -> ResponseTracker | None:
        """The event stream a POST to a 2024-11-05 endpoint belongs to, if any."""
        return self.legacy.get((host, port, path)) if self.legacy else None

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Stream every SSE response; read the ones that can carry answers to tracked calls."""
        assert flow.response is not None
        status = flow.response.status_code
        tracker = self.exchanges.get(flow.id)
        session_id = header_value(flow.request.headers, SESSION_HEADER)
        if tracker is not None:
            flow.response.stream = SseRewriter(tracker, status, session=session_id or "")
        elif flow.request.method == "GET":
            stream = self.new_tracker()
            parked = self.parked.pop(session_id, None) if session_id else None
            if parked is not None:
                stream.adopt(parked)
            self._gets[flow.id] = (stream, session_id)
            flow.response.stream = SseRewriter(
                stream, status, lambda data: self._endpoint(flow, data, stream), session=session_id or ""
            )
        else:
            flow.response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        assert flow.response is not None
        tracker = self.exchanges.pop(flow.id, None)
        if tracker is not None:
            resp = flow.response
            status = resp.status_code
            if not resp.stream and resp.raw_content:
                # Without a content-encoding, the content is the raw content: skip mitmproxy's header lookup.
                encoded = header_value(resp.headers, "content-encoding")
                body = (resp.content if encoded else resp.raw_content) or b""
                if not tracker.finish_later(body, status):
                    rewritten = tracker.process_body(body, status)
                    if rewritten is not None:
                        resp.content = rewritten
            session_id = header_value(flow.request.headers, SESSION_HEADER) if resp.stream and tracker.calls else None
            if session_id:
                self._park(session_id, tracker)
            elif tracker.waiting:
                tracker.close(unanswered(status))
        if self._endpoints or self._gets:
            self._end(flow.id, "the event stream ended")

    def error(self, flow: http.HTTPFlow, message: str) -> None:
        tracker = self.exchanges.pop(flow.id, None)
        if tracker is not None:
            tracker.close(message)
        self._end(flow.id, message)

    def close(self, message: str) -> None:
        gets = [tracker for tracker, _session in self._gets.values()]
        for tracker in [*self.exchanges.values(), *self.legacy.values(), *gets, *self.parked.values()]:
            tracker.close(message)

    def _endpoint(self, flow: http.HTTPFlow, data: str, stream: ResponseTracker) -> None:
        """A 2024-11-05 event stream announced where its client POSTs: calls there belong to this stream."""
        # Read against the URL the agent asked for: the client posts there, whatever upstream the GET went to.
        asked = urlsplit(asked_url(flow))
        url = urlsplit(urljoin(asked.geturl(), data.strip()))
        key = (
            url.hostname or asked.hostname or flow.request.host,
            url.port or asked.port or flow.request.port,
            url.path + (f"?{url.query}" if url.query else ""),
        )
        self.legacy[key] = stream
        self._endpoints.setdefault(flow.id, []).append(key)

    def _end(self, flow_id: str, message: str) -> None:
        for key in self._endpoints.pop(flow_id, []):
            tracker = self.legacy.pop(key, None)
            if tracker is not None:
                tracker.close(message)
        got = self._gets.pop(flow_id, None)
        if got is not None:
            tracker, session_id = got
            if session_id and tracker.calls:
                self._park(session_id, tracker)
            else:
                tracker.close(message)

    def _park(self, session_id: str, tracker: ResponseTracker) -> None:
        """Calls whose stream ended unanswered wait for the client to resume (GET with Last-Event-ID)."""
        held = self.parked.setdefault(session_id, tracker)
        if held is not tracker:
            held.adopt(tracker)
        while len(self.parked) > PARKED_SESSIONS:
            oldest = next(iter(self.parked))
            self.parked.pop(oldest).close("the session's stream ended and was never resumed")
