"""The errors both adapters answer for a request refused before it is judged: one text whatever the surface
(the parity e2e, tests/e2e/test_one_mesh_parity.py, sends the same requests through mcpwrap and the proxy)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from policy import classify_request
from policy.wire import jsonrpc, rejects


def test_a_misspelt_method_is_an_invalid_request_naming_the_method_meant() -> None:
    answer = rejects.misspelt_method(7, "TOOLS/CALL", "tools/call")
    assert answer == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {
            "code": jsonrpc.INVALID_REQUEST,
            "message": "agent-mesh: method 'TOOLS/CALL' is not 'tools/call' spelled exactly; it was not run",
        },
    }


def test_a_lookalike_tool_is_invalid_params_naming_the_listed_tool() -> None:
    answer = rejects.lookalike_tool("a", "Echo", "echo")
    assert answer["error"] == {
        "code": jsonrpc.INVALID_PARAMS,
        "message": "agent-mesh: tool 'Echo' is not the listed tool 'echo' spelled exactly; it was not run",
    }


def test_params_no_call_can_be_read_from_say_why_with_the_same_prefix() -> None:
    try:
        classify_request("tools/call", {"arguments": {}})
    except ValueError as exc:
        answer = rejects.unreadable(None, exc)
    assert answer["error"]["code"] == jsonrpc.INVALID_PARAMS
    assert answer["error"]["message"] == 'agent-mesh: tools/call: "params.name" must be a non-empty string'


@given(st.text(), st.text())
def test_any_name_however_hostile_gives_a_message_that_dumps_as_json(tool: str, listed: str) -> None:
    for answer in (rejects.lookalike_tool(1, tool, listed), rejects.misspelt_method(1, tool, listed)):
        message = answer["error"]["message"]
        assert message.startswith(rejects.PREFIX)
        assert repr(tool) in message
        json.loads(jsonrpc.dump(answer))  # lone surrogates and controls included: what dump sends is JSON
