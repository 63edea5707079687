"""A WebSocket message that a server could run as a JSON-RPC request is judged as that request, whatever
frame carries it: text or binary, UTF-8/16/32 with or without BOM, with or without the "jsonrpc" member,
alone or in a batch. Only what is no request at all is judged as `ws.message`."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from addons.proxy_auth import Identity
from addons.ws_judge import WS_TOOL, WsPeer, message_calls
from policy import HttpInfo

PEER = WsPeer(Identity("claude"), "notes", HttpInfo("GET", "notes.test", "/ws", 443, "https"))
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60), names)
arguments = st.dictionaries(names, scalars, max_size=4)


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A request a lenient server runs, and the tool it must be judged as."""
    msg: dict[str, Any] = {}
    if draw(st.booleans()):
        msg["jsonrpc"] = "2.0"
    if draw(st.booleans()):
        msg["id"] = draw(st.one_of(st.integers(), names))
    if draw(st.booleans()):
        name = draw(names)
        msg["method"] = "tools/call"
        msg["params"] = {"name": name, "arguments": draw(arguments)}
        return msg, name
    method = draw(names)
    msg["method"] = method
    msg["params"] = draw(arguments)
    return msg, method


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(requests(), min_size=1, max_size=3),
    batch=st.booleans(),
    encoding=st.sampled_from(ENCODINGS),
    is_text=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_a_request_in_any_frame_and_encoding_is_judged_as_its_tool(
    items: list[tuple[dict[str, Any], str]], batch: bool, encoding: str, is_text: bool, indent: int | None
) -> None:
    if not batch:
        items = items[:1]
    value: Any = [m for m, _ in items] if batch else items[0][0]
    content = json.dumps(value, indent=indent).encode(encoding)
    calls = message_calls(PEER, content, is_text, "s1")
    assert [call.tool for call, _id in calls] == [tool for _m, tool in items]
    assert all(call.tool != WS_TOOL or tool == WS_TOOL for (call, _i), (_m, tool) in zip(calls, items, strict=True))


def test_a_request_with_a_number_javascript_cannot_hold_is_still_judged_as_a_request() -> None:
    content = b'{"jsonrpc": "2.0", "id": 9007199254740993, "method": "tools/call", "params": {"name": "purge"}}'
    ((call, rid),) = message_calls(PEER, content, True, "s1")
    assert (call.tool, rid) == ("purge", 9007199254740993)


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=256))
def test_bytes_that_are_no_request_are_one_ws_message(content: bytes) -> None:
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, (dict, list)):
        return  # maybe a request: the property above
    (call, rid), *rest = message_calls(PEER, content, False, "s1")
    assert (call.tool, rid, rest) == (WS_TOOL, None, [])
