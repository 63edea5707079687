"""Over MCP HTTP, as under mcpwrap, a request naming a lookalike of an MCP method, or a tool call naming a
lookalike of a tool the server listed, is refused: rules written for the real name would miss it, and a
lenient server might still run the real thing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mitmproxy import http

from tests.addons.harness import harness, make_flow, rpc

URL = "https://notes.test/mcp"


def answer(flow: http.HTTPFlow) -> dict[str, Any]:
    assert flow.response is not None
    reply: dict[str, Any] = json.loads(flow.response.content or b"")
    return reply


async def test_a_method_spelled_like_tools_call_but_not_exactly_is_refused_unjudged(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        for n, method in enumerate(["TOOLS/CALL", "tools/call ", "tools/\u200bcall"]):
            flow = make_flow("POST", URL, rpc(method, {"name": "delete_note", "arguments": {}}, n))
            await h.addon.request(flow)
            reply = answer(flow)
            assert (reply["id"], reply["error"]["code"]) == (n, -32600)
            assert "'tools/call' spelled exactly" in reply["error"]["message"]
        assert not h.records  # refused as a malformed request, never judged as an unknown method


async def test_a_call_to_a_lookalike_of_a_listed_tool_is_refused(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        listing = make_flow("POST", URL, rpc("tools/list", {}, 1))
        await h.addon.request(listing)
        tools = [{"name": n, "inputSchema": {"type": "object"}} for n in ("read_note", "write_note")]
        h.respond(listing, 200, {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}})
        flow = make_flow("POST", URL, rpc("tools/call", {"name": "Read_Note\u200b", "arguments": {}}, 2))
        await h.addon.request(flow)
        reply = answer(flow)
        assert (reply["id"], reply["error"]["code"]) == (2, -32602)
        assert "'read_note' spelled exactly" in reply["error"]["message"]
        exact = make_flow("POST", URL, rpc("tools/call", {"name": "read_note", "arguments": {}}, 3))
        await h.addon.request(exact)
        assert exact.response is None  # the listed tool itself is judged and forwarded


async def test_a_server_request_imitating_an_mcp_method_is_withheld_from_the_client() -> None:
    from addons.mcp_asked import AskedRequests

    asked = AskedRequests(lambda _a, _s, _kind, _session: False)  # the policy denies nothing
    ping = asked.passing(rpc("Sampling/CreateMessage", {"messages": []}, 7), "s", ("claude", "notes"))
    assert ping == {"jsonrpc": "2.0", "id": 7, "method": "ping"}
