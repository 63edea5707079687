"""The proxy's own tools/list on the wire (addons/mcp_learn): sent to a real HTTP server on loopback at the
address given, with the Host given; the answer read as JSON or as an event stream; every failure (status,
size, connection, unreadable answer) a LearnFailed; the agent's headers copied without the proxy's own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import addons.mcp_learn as learn
from addons.mcp_learn import Destination, LearnFailed, PageRequest, answer_from, fetch_over_http, listing_headers

Reply = tuple[int, str, bytes]


@contextmanager
def upstream(reply: Reply) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A real HTTP server answering every POST with `reply`; yields its port and what it received."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            seen.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(body)})
            status, kind, content = reply
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def page(port: int, request_id: str = "agent-mesh-learn-1") -> PageRequest:
    where = Destination(f"http://127.0.0.1:{port}/mcp", "notes.example:8080")
    headers = listing_headers(((b"Authorization", b"Bearer t"), (b"X-Note", b"caf\xc3\xa9")), where.host, modern=False)
    return PageRequest(where, headers, request_id, learn.page_body(request_id, {}))


def answer(request_id: str = "agent-mesh-learn-1") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": [{"name": "echo"}]}}


async def test_a_json_answer_is_read_and_the_request_reaches_the_address_under_the_given_host() -> None:
    with upstream((200, "application/json", json.dumps(answer()).encode())) as (port, seen):
        got = await fetch_over_http(page(port))
    assert got == answer()
    ((request,),) = [seen]
    assert request["headers"]["host"] == "notes.example:8080"
    assert request["headers"]["authorization"] == "Bearer t"
    assert request["headers"]["x-note"].encode("latin-1") == b"caf\xc3\xa9"  # the agent's very bytes
    assert request["body"]["method"] == "tools/list"


async def test_an_event_stream_answer_is_read_past_other_events() -> None:
    stream = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message"}\n\n'
    stream += b"data: " + json.dumps(answer()).encode() + b"\n\n"
    with upstream((200, "text/event-stream", stream)) as (port, _seen):
        assert await fetch_over_http(page(port)) == answer()


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ((401, "application/json", b"{}"), "HTTP 401"),
        ((200, "text/html", b"<html>"), "not JSON"),
        ((200, "application/json", json.dumps(answer("another-id")).encode()), "not the JSON-RPC response"),
        ((200, "text/event-stream", b"data: {}\n\n"), "ended without the answer"),
    ],
)
async def test_an_answer_that_is_not_the_listing_is_a_failure(reply: Reply, why: str) -> None:
    with upstream(reply) as (port, _seen), pytest.raises(LearnFailed, match=why):
        await fetch_over_http(page(port))


async def test_a_listing_over_the_size_bound_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learn, "MAX_BYTES", 64)
    big = (200, "application/json", json.dumps(answer()).encode() + b" " * 100)
    with upstream(big) as (port, _seen), pytest.raises(LearnFailed, match="over 64 bytes"):
        await fetch_over_http(page(port))


async def test_a_server_that_is_not_there_is_a_failure() -> None:
    with upstream((200, "application/json", b"{}")) as (port, _seen):
        pass  # closed: nothing listens there now
    with pytest.raises(LearnFailed, match="could not be sent"):
        await fetch_over_http(page(port))


def test_a_json_answer_in_any_case_of_content_type_is_read() -> None:
    assert answer_from(json.dumps(answer()).encode(), "Application/JSON; charset=utf-8", "agent-mesh-learn-1")


NAMES = st.sampled_from(
    ["Proxy-Authorization", "proxy-authorization", "Host", "Content-Length", "Transfer-Encoding", "Mcp-Name",
     "Connection", "Accept", "Authorization", "Cookie", "Mcp-Session-Id", "X-Anything"]
)  # fmt: skip


@given(st.lists(st.tuples(NAMES, st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20))))
def test_the_listing_never_carries_the_proxys_credentials_nor_the_agents_framing(fields: list[tuple[str, str]]) -> None:
    raw = tuple((k.encode(), v.encode()) for k, v in fields)
    sent = listing_headers(raw, "notes.example", modern=False)
    names = [k for k, _ in sent]
    assert "proxy-authorization" not in names
    assert names.count("host") == names.count("content-type") == names.count("accept") == 1
    assert not {"content-length", "transfer-encoding", "connection", "mcp-name"} & set(names)
    assert dict(sent)["host"] == "notes.example"
