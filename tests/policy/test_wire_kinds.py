"""policy.wire.kinds: one classification of MCP requests by method, for both adapters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.wire.kinds import (
    JUDGED_METHODS,
    LISTS,
    Direction,
    RequestRole,
    classify_request,
    input_requests,
)

TO_CLIENT = Direction.TO_CLIENT


@pytest.mark.parametrize(
    ("method", "params", "tool", "arguments"),
    [
        ("tools/call", {"name": "echo", "arguments": {"a": 1}}, "echo", {"a": 1}),
        ("tools/call", {"name": "echo"}, "echo", {}),
        (
            "resources/read",
            {"uri": "file:///etc/passwd", "_meta": {"x": 1}},
            "resources/read",
            {"uri": "file:///etc/passwd"},
        ),
        ("resources/subscribe", {"uri": "db://rows/7"}, "resources/subscribe", {"uri": "db://rows/7"}),
        ("resources/unsubscribe", {"uri": "db://rows/7"}, "resources/unsubscribe", {"uri": "db://rows/7"}),
        ("prompts/get", {"name": "greet"}, "prompts/get", {"name": "greet", "arguments": {}}),
        ("prompts/get", {"name": "g", "arguments": {"w": "x"}}, "prompts/get", {"name": "g", "arguments": {"w": "x"}}),
        (
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "g"}, "argument": {"name": "w", "value": "a"}},
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "g"}, "argument": {"name": "w", "value": "a"}},
        ),
        ("vendor/reset", {"all": True}, "vendor/reset", {"all": True}),
        ("vendor/reset", None, "vendor/reset", {}),
        ("vendor/reset", [1, 2], "vendor/reset", {"params": [1, 2]}),
    ],
)
def test_a_client_request_that_acts_is_a_call_named_after_what_it_does(
    method: str, params: Any, tool: str, arguments: dict[str, Any]
) -> None:
    kind = classify_request(method, params)
    assert kind.role is RequestRole.CALL
    assert (kind.tool, kind.arguments) == (tool, arguments)


@pytest.mark.parametrize(
    "method", ["initialize", "ping", "server/discover", "subscriptions/listen", "logging/setLevel", "tasks/get"]
)
def test_lifecycle_methods_are_plumbing(method: str) -> None:
    assert classify_request(method, {}).role is RequestRole.PLUMBING


@pytest.mark.parametrize("method", sorted(LISTS))
def test_list_methods_are_lists_to_filter(method: str) -> None:
    assert classify_request(method, {"cursor": "c"}).role is RequestRole.LIST


@pytest.mark.parametrize(
    ("method", "params", "arguments"),
    [
        ("sampling/createMessage", {"messages": [], "maxTokens": 5}, {"messages": [], "maxTokens": 5}),
        (
            "elicitation/create",
            {"message": "sure?", "requestedSchema": {}},
            {"message": "sure?", "requestedSchema": {}},
        ),
        ("roots/list", None, {}),
        ("tools/list", {}, {}),  # not a list the client serves: a server asking it is judged like any unknown
    ],
)
def test_a_server_request_to_the_client_is_a_call_named_after_its_method(
    method: str, params: Any, arguments: dict[str, Any]
) -> None:
    kind = classify_request(method, params, TO_CLIENT)
    assert (kind.role, kind.tool, kind.arguments) == (RequestRole.CALL, method, arguments)


def test_a_server_ping_is_plumbing() -> None:
    assert classify_request("ping", None, TO_CLIENT).role is RequestRole.PLUMBING


def test_a_2026_retry_is_judged_on_the_same_arguments_as_the_first_try() -> None:
    first = classify_request("resources/read", {"uri": "u"})
    retry = classify_request("resources/read", {"uri": "u", "inputResponses": {"q": {}}, "requestState": "s"})
    assert first.arguments == retry.arguments


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        (None, {}, '"method" must be a non-empty string'),
        ("", {}, '"method" must be a non-empty string'),
        ("tools/call", "x", '"params" must be an object or an array'),
        ("tools/call", {"name": ""}, '"params.name" must be a non-empty string'),
        ("tools/call", {"name": "x", "arguments": [1]}, '"params.arguments" must be an object'),
        ("tools/call", {"name": "resources/read", "arguments": {"uri": "u"}}, "is an MCP method's name"),
        ("resources/read", {}, '"params.uri" must be a non-empty string'),
        ("resources/read", {"uri": 7}, '"params.uri" must be a non-empty string'),
        ("prompts/get", {"name": 1}, '"params.name" must be a non-empty string'),
        ("prompts/get", {"name": "g", "arguments": "x"}, '"params.arguments" must be an object'),
        ("notifications/initialized", {}, "is a notification"),
    ],
)
def test_a_request_that_cannot_be_judged_is_a_precise_value_error(method: Any, params: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        classify_request(method, params)


def test_no_tool_may_be_named_after_a_method_judged_on_its_own() -> None:
    for method in JUDGED_METHODS:
        with pytest.raises(ValueError, match="is an MCP method's name"):
            classify_request("tools/call", {"name": method})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
METHODS = st.sampled_from(
    [*JUDGED_METHODS, *LISTS, "tools/call", "initialize", "ping", "notifications/x", "x/y", "tasks/get"]
) | st.text(max_size=12)


@given(method=METHODS, params=JSON, to_client=st.booleans())
def test_every_request_is_classified_or_refused_never_skipped(method: str, params: Any, to_client: bool) -> None:
    direction = TO_CLIENT if to_client else Direction.TO_SERVER
    try:
        kind = classify_request(method, params, direction)
    except ValueError:
        return
    if kind.role is RequestRole.CALL:
        assert kind.tool
        assert isinstance(kind.arguments, dict)
    else:
        assert method not in JUDGED_METHODS
        assert method != "tools/call"


def test_input_requests_of_a_2026_result_are_listed_and_malformed_ones_refused() -> None:
    body = {"resultType": "input_required", "inputRequests": {"q": {"method": "elicitation/create", "params": {}}}}
    assert input_requests(body) == [("q", "elicitation/create", {})]
    assert input_requests({"resultType": "complete"}) == []
    with pytest.raises(ValueError, match="inputRequests"):
        input_requests({"resultType": "input_required", "inputRequests": [1]})
    with pytest.raises(ValueError, match=r"inputRequests\['q'\]"):
        input_requests({"resultType": "input_required", "inputRequests": {"q": 1}})
