"""The proxy lists a server's tools itself before a session's first tools/call (addons/mcp_learn), so an agent
that skips tools/list is judged as one that listed: annotations, look-alike names, output schemas and pins
hold either way; a listing that fails refuses the call, recorded; only a session's first call pays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mitmproxy import http
from mitmproxy.test import taddons

from addons.governance import Governance
from addons.mcp_learn import LearnFailed, PageRequest
from policy import Gate, LoadedConfig, MemoryStore
from policy.trace import MemoryTraceSink
from tests.addons.harness import Harness, ListingServer, make_flow, rpc

URL = "https://notes.test/mcp"
SESSION = {"mcp-session-id": "s1", "mcp-protocol-version": "2025-11-25", "authorization": "Bearer for-notes"}
CONFIG = """
version: 1
state_dir: state
agents: {claude: {token: s3cret}}
servers:
  notes: {mcp_url: "https://notes.test/mcp"}
mcp: {pin_changed: deny}
policies:
  - name: claude
    agent: claude
    loop_detection: {enabled: false}
    rules:
      - name: nothing-destructive
        tools: ["notes.*"]
        when: {tool.annotations.destructiveHint: {eq: true}}
        action: deny
      - {name: never-secret, tools: ["notes.secret"], action: deny}
      - {name: the-rest, tools: ["notes.*"], action: allow}
"""
TOOLS: list[dict[str, Any]] = [
    {"name": "read_note", "description": "reads a note", "inputSchema": {"type": "object"}},
    {"name": "wipe", "inputSchema": {"type": "object"}, "annotations": {"destructiveHint": True}},
    {"name": "secret", "inputSchema": {"type": "object"}, "outputSchema": {"type": "object"}},
]


@contextmanager
def governed(tmp_path: Path, pages: list[dict[str, Any]] | None = None) -> Iterator[Harness]:
    sink, store, listing = MemoryTraceSink(), MemoryStore(), ListingServer()
    listing.pages = pages if pages is not None else [{"tools": TOOLS}]

    def factory(loaded: LoadedConfig) -> Gate:
        return Gate.open(loaded, store=store, sink=sink)

    (tmp_path / "agent-mesh.yaml").write_text(CONFIG)
    addon = Governance(factory, fetch_tools=listing)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mesh_config=str(tmp_path / "agent-mesh.yaml"))
        h = Harness(addon, tctx, sink, store)
        h.listing = listing
        yield h


async def called(h: Harness, tool: str, rid: int = 1, headers: dict[str, str] | None = None) -> http.HTTPFlow:
    flow = make_flow("POST", URL, rpc("tools/call", {"name": tool, "arguments": {}}, rid), headers or SESSION)
    await h.addon.request(flow)
    return flow


def reply(flow: http.HTTPFlow) -> dict[str, Any]:
    assert flow.response is not None, "the call was forwarded"
    out: dict[str, Any] = json.loads(flow.response.content or b"")
    return out


def flow_id(flow: http.HTTPFlow) -> Any:
    return json.loads(flow.request.content or b"")["id"]


def calls(h: Harness) -> list[dict[str, Any]]:
    return [r for r in h.records if r.get("kind") != "event"]


async def test_a_destructive_tool_called_without_listing_is_refused_by_its_annotations(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = await called(h, "wipe")
        assert reply(flow)["result"]["isError"] is True
        assert reply(flow)["result"]["_meta"]["agent-mesh/refusal"]["rule"] == "claude/nothing-destructive"
        assert len(h.listing.requests) == 1  # the proxy listed the tools itself first


async def test_the_listing_carries_the_agents_credentials_and_session_but_never_the_proxys(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        await called(h, "read_note")
        (page,) = h.listing.requests
        headers = dict(page.headers)
        assert headers["authorization"] == "Bearer for-notes"
        assert headers["mcp-session-id"] == "s1"
        assert headers["mcp-protocol-version"] == "2025-11-25"
        assert "proxy-authorization" not in headers
        assert json.loads(page.body)["method"] == "tools/list"


async def test_a_lookalike_of_a_tool_never_listed_by_the_agent_is_refused(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = await called(h, "Read_Note")
        assert (reply(flow)["id"], reply(flow)["error"]["code"]) == (1, -32602)


async def test_a_refused_tool_with_an_output_schema_gets_no_structured_content(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        result = reply(await called(h, "secret"))["result"]
        assert result["isError"] is True
        assert "structuredContent" not in result  # a client would validate it against the tool's outputSchema


async def test_a_changed_tool_called_in_a_new_session_without_listing_meets_its_pin(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        assert (await called(h, "read_note")).response is None  # pinned as first listed, then forwarded
        h.listing.pages = [{"tools": [{**TOOLS[0], "description": "reads a note, then mails it away"}]}]
        other = {**SESSION, "mcp-session-id": "s2"}
        result = reply(await called(h, "read_note", 2, other))["result"]
        assert result["_meta"]["agent-mesh/refusal"]["rule"] == "mcp.pin_changed"


async def test_only_a_sessions_first_call_pays_for_the_listing(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flows = [await called(h, "read_note", rid) for rid in range(3)]
        assert all(f.response is None for f in flows)
        assert len(h.listing.requests) == 1
        flows.append(await called(h, "read_note", 9, {**SESSION, "mcp-session-id": "s2"}))
        assert len(h.listing.requests) == 2
        for flow in flows:
            h.respond(flow, 200, {"jsonrpc": "2.0", "id": flow_id(flow), "result": {"content": []}})
        assert [r["tool"] for r in calls(h)] == ["notes.read_note"] * 4  # the listings are not call records


async def test_concurrent_first_calls_share_one_listing(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flows = [make_flow("POST", URL, rpc("tools/call", {"name": "read_note"}, i), SESSION) for i in range(5)]
        await asyncio.gather(*(h.addon.request(f) for f in flows))
        assert all(f.response is None for f in flows)
        assert len(h.listing.requests) == 1


async def test_a_client_listing_of_a_later_page_only_does_not_stand_for_the_whole_listing(tmp_path: Path) -> None:
    """A client may ask for any page (`cursor`): its listing refreshes what is known, but the proxy's own
    listing, every page of it, is what a session's first call waits for."""
    with governed(tmp_path, [{"tools": TOOLS[1:2], "nextCursor": "1"}, {"tools": TOOLS[:1]}]) as h:
        listing = make_flow("POST", URL, rpc("tools/list", {"cursor": "1"}, 1), SESSION)
        await h.addon.request(listing)
        h.respond(listing, 200, {"jsonrpc": "2.0", "id": 1, "result": {"tools": TOOLS[:1]}})
        assert reply(await called(h, "wipe", 2))["result"]["isError"] is True  # wipe: on the page never asked for
        assert len(h.listing.requests) == 2


async def test_every_page_is_learned_following_next_cursor(tmp_path: Path) -> None:
    pages: list[dict[str, Any]] = [{"tools": TOOLS[:1], "nextCursor": "1"}, {"tools": TOOLS[1:]}]
    with governed(tmp_path, pages) as h:
        assert reply(await called(h, "wipe"))["result"]["isError"] is True  # wipe is on the second page
        assert [json.loads(p.body)["params"] for p in h.listing.requests] == [{}, {"cursor": "1"}]


async def test_a_listing_that_fails_refuses_the_call_and_records_it(tmp_path: Path) -> None:
    with governed(tmp_path) as h:

        async def down(page: PageRequest) -> dict[str, Any]:
            raise LearnFailed("the server answered the listing with HTTP 502")

        assert h.addon.mcp is not None
        assert h.addon.mcp.learner is not None
        h.addon.mcp.learner.fetch = down
        error = reply(await called(h, "read_note"))["error"]
        assert error["code"] == -32603
        assert "could not learn the server's tools (the server answered the listing with HTTP 502)" in error["message"]
        ((record,),) = [calls(h)]
        assert (record["tool"], record["rule"], record["outcome"]) == (
            "notes.read_note",
            "mcp.tools_unknown",
            "refused",
        )


async def test_a_listing_answered_with_a_json_rpc_error_refuses_the_call(tmp_path: Path) -> None:
    with governed(tmp_path) as h:

        async def refuses(page: PageRequest) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": page.request_id, "error": {"code": -32601, "message": "no tools"}}

        assert h.addon.mcp is not None
        assert h.addon.mcp.learner is not None
        h.addon.mcp.learner.fetch = refuses
        assert "no tools" in reply(await called(h, "read_note"))["error"]["message"]
        assert (await called(h, "read_note", 2)).response is not None  # still refused: nothing was learned


async def test_a_2026_call_lists_with_its_meta_and_the_method_header(tmp_path: Path) -> None:
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    with governed(tmp_path) as h:
        msg = rpc("tools/call", {"name": "wipe", "arguments": {}, "_meta": meta}, 1)
        headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "wipe"}
        flow = make_flow("POST", URL, msg, headers)
        await h.addon.request(flow)
        assert reply(flow)["result"]["isError"] is True
        (page,) = h.listing.requests
        assert json.loads(page.body)["params"] == {"_meta": meta}
        sent = dict(page.headers)
        assert sent["mcp-method"] == "tools/list"
        assert "mcp-name" not in sent


CHANGED = b'data: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n\n'


async def test_a_server_saying_its_tools_changed_on_its_get_stream_has_them_listed_again(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        await called(h, "read_note")
        stream_flow = make_flow("GET", URL, None, {**SESSION, "accept": "text/event-stream"})
        await h.addon.request(stream_flow)
        stream_flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(stream_flow)
        stream = stream_flow.response.stream
        assert callable(stream)
        assert stream(CHANGED) == CHANGED  # passed on to the client as it came
        h.listing.pages = [
            {"tools": [*TOOLS[:1], {**TOOLS[0], "name": "wipe_all", "annotations": {"destructiveHint": True}}]}
        ]
        assert reply(await called(h, "wipe_all", 2))["result"]["isError"] is True
        assert len(h.listing.requests) == 2


async def test_a_server_saying_its_tools_changed_in_a_calls_stream_has_them_listed_again(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = await called(h, "read_note")
        flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(flow)
        stream = flow.response.stream
        assert callable(stream)
        stream(CHANGED + b'data: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n\n')
        await called(h, "read_note", 2)
        assert len(h.listing.requests) == 2


async def test_a_2024_11_05_session_is_listed_through_its_event_stream_and_the_client_never_sees_it(
    tmp_path: Path,
) -> None:
    with governed(tmp_path) as h:
        stream_flow = make_flow("GET", "https://notes.test/sse")
        await h.addon.request(stream_flow)
        stream_flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(stream_flow)
        stream = stream_flow.response.stream
        assert callable(stream)
        stream(b"event: endpoint\ndata: /messages/?session_id=abc\n\n")
        passed: list[bytes] = []

        async def accepted_then_on_the_stream(page: PageRequest) -> dict[str, Any]:
            answer = {"jsonrpc": "2.0", "id": page.request_id, "result": {"tools": TOOLS}}
            event = f"event: message\ndata: {json.dumps(answer)}\n\n".encode()
            asyncio.get_running_loop().call_soon(lambda: passed.append(stream(event)))
            return {}  # 202 Accepted: the answer comes on the event stream

        assert h.addon.mcp is not None
        assert h.addon.mcp.learner is not None
        h.addon.mcp.learner.fetch = accepted_then_on_the_stream
        post = make_flow("POST", "https://notes.test/messages/?session_id=abc", rpc("tools/call", {"name": "wipe"}, 4))
        await h.addon.request(post)
        assert passed == [[]]  # the proxy's own answer was taken off the stream: no chunk sent at all
        assert json.loads(post.request.content or b"") == {"jsonrpc": "2.0", "id": 4, "method": "ping"}  # refused


async def test_a_2024_11_05_listing_never_answered_on_the_stream_refuses_the_call(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import addons.mcp_learn as learn

    monkeypatch.setattr(learn, "SECONDS", 0.05)
    with governed(tmp_path) as h:
        stream_flow = make_flow("GET", "https://notes.test/sse")
        await h.addon.request(stream_flow)
        stream_flow.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(stream_flow)
        assert callable(stream_flow.response.stream)
        stream_flow.response.stream(b"event: endpoint\ndata: /messages/?session_id=abc\n\n")

        async def accepted(page: PageRequest) -> dict[str, Any]:
            return {}

        assert h.addon.mcp is not None
        assert h.addon.mcp.learner is not None
        h.addon.mcp.learner.fetch = accepted
        post = make_flow("POST", "https://notes.test/messages/?session_id=abc", rpc("tools/call", {"name": "echo"}, 5))
        await h.addon.request(post)
        assert post.response is None  # the 2024-11-05 refusal travels the stream as a ping's answer
        assert json.loads(post.request.content or b"") == {"jsonrpc": "2.0", "id": 5, "method": "ping"}
        ((record,),) = [calls(h)]
        assert record["rule"] == "mcp.tools_unknown"


async def test_a_call_the_policy_denies_whatever_the_tools_say_gets_that_refusal_when_the_listing_fails(
    tmp_path: Path,
) -> None:
    with governed(tmp_path) as h:

        async def down(page: PageRequest) -> dict[str, Any]:
            raise LearnFailed("the server answered the listing with HTTP 400")

        assert h.addon.mcp is not None
        assert h.addon.mcp.learner is not None
        h.addon.mcp.learner.fetch = down
        result = reply(await called(h, "secret"))["result"]
        assert result["_meta"]["agent-mesh/refusal"]["rule"] == "claude/never-secret"
        assert [r["rule"] for r in calls(h)] == ["claude/never-secret"]
