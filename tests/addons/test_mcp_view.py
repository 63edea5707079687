"""The MCP content view shows JSON-RPC readably, in JSON bodies and inside SSE streams."""

from __future__ import annotations

from mitmproxy.contentviews import Metadata

from addons.mcp_view import McpView

CALL = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_note"}}'


def test_a_json_rpc_body_is_summarised_and_indented() -> None:
    view = McpView()
    meta = Metadata(content_type="application/json")
    assert view.render_priority(CALL, meta) > 1
    text = view.prettify(CALL, meta)
    assert text.startswith("→ request #3 tools/call read_note\n{")


def test_sse_events_carrying_json_rpc_are_shown_one_by_one() -> None:
    data = b'event: message\nid: 7\ndata: {"jsonrpc":"2.0","id":3,"result":{"isError":true}}\n\n: ping\n\n'
    text = McpView().prettify(data, Metadata(content_type="text/event-stream"))
    assert text.startswith("event: message (id 7)\n← result #3 isError")


def test_other_bodies_are_left_to_other_views() -> None:
    assert McpView().render_priority(b'{"a": 1}', Metadata(content_type="application/json")) < 0
