"""MCP over HTTP through the addon: tools/call judged from the body, refusals as JSON-RPC results, batches
per element, SSE rewritten as it streams, tools/list filtered, and the 2024-11-05 event-stream transport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mitmproxy import http

from addons.mcp_exchange import SseRewriter
from tests.addons.harness import harness, make_flow, rpc

URL = "https://notes.test/mcp"
MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


def call(name: str, rid: Any = 1, meta: bool = False, **args: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": args}
    if meta:
        params["_meta"] = MODERN
    return rpc("tools/call", params, rid)


def result(rid: Any, text: str = "ok", is_error: bool = False) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}], "isError": is_error}}


async def test_an_allowed_call_is_forwarded_and_its_outcome_traced(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", URL, call("read_note", rid=0, id="a"), {"mcp-session-id": "s1"})
        await h.addon.request(flow)
        assert flow.response is None
        h.respond(flow, 200, result(0, is_error=True))
        (rec,) = h.records
        assert (rec["surface"], rec["tool"], rec["verdict"]) == ("mcp_http", "notes.read_note", "allow")
        assert rec["session_id"] == "s1"
        assert rec["outcome"] == "upstream_error"


async def test_a_denied_call_is_answered_with_a_tool_error_carrying_the_request_id(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", URL, call("delete_note", rid="x", meta=True))
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 200
        reply = json.loads(flow.response.content or b"")
        assert reply["id"] == "x"
        assert reply["result"]["isError"] is True
        assert reply["result"]["resultType"] == "complete"
        assert reply["result"]["structuredContent"]["code"] == "denied"
        (rec,) = h.records
        assert rec["verdict"] == "deny"
        assert rec["outcome"] == "refused"


async def test_the_tool_name_comes_from_the_body_and_a_disagreeing_header_is_refused(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow(
            "POST", URL, call("delete_note", meta=True), {"mcp-method": "tools/call", "mcp-name": "read_note"}
        )
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400
        assert json.loads(flow.response.content or b"")["error"]["code"] == -32020
        (rec,) = h.records  # the refusal's one record; the tool was never judged on the header's name
        assert (rec["rule"], rec["verdict"], rec["outcome"]) == ("proxy.header_mismatch", "deny", "refused")


async def test_a_batch_is_judged_per_element_and_refused_elements_never_reach_the_upstream(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        batch = [call("read_note", rid=1), call("delete_note", rid=2), rpc("notifications/initialized", rid=None)]
        flow = make_flow("POST", URL, batch)
        await h.addon.request(flow)
        assert flow.response is None
        sent = json.loads(flow.request.content or b"")
        assert [m.get("method") for m in sent] == ["tools/call", "ping", "notifications/initialized"]
        assert sent[1]["id"] == 2
        h.respond(flow, 200, [result(1), {"jsonrpc": "2.0", "id": 2, "result": {}}])
        replies = json.loads(flow.response.content or b"")  # type: ignore[union-attr]
        assert replies[0] == result(1)
        assert replies[1]["result"]["structuredContent"]["code"] == "denied"
        assert sorted(r["verdict"] for r in h.records) == ["allow", "deny"]


async def test_a_batch_of_refused_calls_is_answered_without_the_upstream(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", URL, [call("delete_note", rid=1), call("delete_all", rid=2)])
        await h.addon.request(flow)
        assert flow.response is not None
        assert [r["id"] for r in json.loads(flow.response.content or b"")] == [1, 2]


async def test_an_sse_response_streams_and_its_result_is_recorded(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", URL, call("read_note", rid=5, progressToken="p"))
        await h.addon.request(flow)
        flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(flow)
        stream = flow.response.stream
        assert isinstance(stream, SseRewriter)
        progress = b'data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n'
        assert stream(progress[:20]) == []  # nothing sent: an empty chunk would end a chunked response
        assert stream(progress[20:]) == progress
        assert h.records == []
        final = f"data: {json.dumps(result(5))}\n\n".encode()
        assert stream(final) == final
        assert stream(b"") == b""
        h.addon.response(flow)
        (rec,) = h.records
        assert rec["outcome"] == "ok"


async def test_tools_list_hides_tools_the_agent_may_never_call(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", URL, rpc("tools/list", {}, 3))
        await h.addon.request(flow)
        tools = [{"name": "read_note"}, {"name": "delete_note"}, {"name": "write_note"}]
        h.respond(flow, 200, {"jsonrpc": "2.0", "id": 3, "result": {"tools": tools}})
        listed = json.loads(flow.response.content or b"")["result"]["tools"]  # type: ignore[union-attr]
        assert [t["name"] for t in listed] == ["read_note", "write_note"]


async def test_the_legacy_event_stream_transport_delivers_refusals_on_the_stream(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        stream_flow = make_flow("GET", "https://notes.test/sse")
        await h.addon.request(stream_flow)
        stream_flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(stream_flow)
        stream = stream_flow.response.stream
        assert callable(stream)
        endpoint = b"event: endpoint\ndata: /messages/?session_id=abc\n\n"
        assert stream(endpoint) == endpoint

        post = make_flow("POST", "https://notes.test/messages/?session_id=abc", call("delete_note", rid=9))
        await h.addon.request(post)
        assert post.response is None
        assert json.loads(post.request.content or b"") == {"jsonrpc": "2.0", "id": 9, "method": "ping"}
        h.respond(post, 202, b"Accepted", "text/plain")

        allowed = make_flow("POST", "https://notes.test/messages/?session_id=abc", call("read_note", rid=10))
        await h.addon.request(allowed)
        h.respond(allowed, 202, b"Accepted", "text/plain")

        out = stream(f"event: message\ndata: {json.dumps({'jsonrpc': '2.0', 'id': 9, 'result': {}})}\n\n".encode())
        refusal = json.loads(out.split(b"data: ", 1)[1])
        assert refusal["id"] == 9
        assert refusal["result"]["structuredContent"]["code"] == "denied"
        raw = f"event: message\ndata: {json.dumps(result(10))}\n\n".encode()
        assert stream(raw) == raw
        assert sorted((r["tool"], r["outcome"]) for r in h.records) == [
            ("notes.delete_note", "refused"),
            ("notes.read_note", "ok"),
        ]
        h.addon.response(stream_flow)
        assert h.addon.streams is not None
        assert h.addon.streams.legacy == {}


async def test_a_call_without_a_response_is_traced_as_an_error(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", URL, call("read_note", rid=1))
        await h.addon.request(flow)
        h.respond(flow, 500, b"boom", "text/plain")
        (rec,) = h.records
        assert rec["outcome"] == "error"


async def test_json_rpc_to_an_unknown_host_is_judged_as_the_http_call_it_is(tmp_path: Path) -> None:
    # Only a configured MCP server's POSTs are JSON-RPC; elsewhere the body is just an HTTP body (issue 13).
    with harness(tmp_path) as h:
        flow = make_flow("POST", "http://127.0.0.1:9999/mcp", call("delete_note", rid=1))
        await h.addon.request(flow)
        (rec,) = h.records
        assert (rec["server"], rec["tool"], rec["surface"]) == ("127.0.0.1", "127.0.0.1.POST /mcp", "http")
        assert rec["args"]["method"] == "tools/call"


async def test_a_refusal_leaves_out_structured_content_when_the_tool_declares_an_output_schema(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        listing = make_flow("POST", URL, rpc("tools/list", {}, 1))
        await h.addon.request(listing)
        tool = {"name": "delete_note", "outputSchema": {"type": "object"}}
        h.respond(listing, 200, {"jsonrpc": "2.0", "id": 1, "result": {"tools": [tool]}})
        flow = make_flow("POST", URL, call("delete_note", rid=2))
        await h.addon.request(flow)
        result = json.loads(flow.response.content or b"")["result"]  # type: ignore[union-attr]
        assert "structuredContent" not in result
        assert result["_meta"]["agent-mesh/refusal"]["code"] == "denied"


async def test_a_call_whose_stream_ends_unanswered_is_answered_on_the_resumed_get_stream(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        post = make_flow("POST", URL, call("read_note", rid=4), {"mcp-session-id": "s9"})
        await h.addon.request(post)
        post.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(post)
        assert callable(post.response.stream)
        post.response.stream(b"id: e1\nretry: 500\ndata: \n\n")
        post.response.stream(b"")
        h.addon.response(post)
        assert h.records == []

        resumed = make_flow("GET", URL, headers={"mcp-session-id": "s9", "last-event-id": "e1"})
        await h.addon.request(resumed)
        resumed.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(resumed)
        assert callable(resumed.response.stream)
        resumed.response.stream(f"event: message\nid: e2\ndata: {json.dumps(result(4))}\n\n".encode())
        (rec,) = h.records
        assert (rec["tool"], rec["outcome"]) == ("notes.read_note", "ok")
