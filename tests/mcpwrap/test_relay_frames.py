"""Frames mcpwrap cannot run: each gets a JSON-RPC error (-32700 / -32600) and the session goes on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.mcpwrap.conftest import Harness, MakeHarness, until


async def still_answers(h: Harness, request_id: Any = "after") -> None:
    h.send({"jsonrpc": "2.0", "id": request_id, "method": "ping"})
    assert (await h.recv())["id"] == request_id


@pytest.mark.parametrize(
    "frame",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "\xff\xfe"}}',
        b"\xef\xbb",
        b'{"jsonrpc": "2.0", "id": 1, "method": "ping"',
    ],
    ids=["deep-array", "deep-params", "bad-utf8", "half-bom", "cut-short"],
)
async def test_a_frame_that_cannot_be_parsed_gets_a_parse_error_and_the_session_goes_on(
    harness: MakeHarness, frame: bytes
) -> None:
    h = harness(name="srv")
    h.send(frame)
    reply = await h.recv()
    assert (reply["id"], reply["error"]["code"]) == (None, -32700)
    await still_answers(h)
    assert h.server.methods() == ["ping"]


async def test_arguments_nested_as_deep_as_the_parser_allows_are_answered_not_fatal(harness: MakeHarness) -> None:
    h = harness(name="srv")
    deep = "[" * 900 + "]" * 900
    h.send(
        f'{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"a":{deep}}}}}}}'.encode()
    )
    reply = await h.recv()
    assert reply["id"] == 1  # judged (and run) or refused, but answered
    await still_answers(h)


@pytest.mark.parametrize(
    ("message", "answer_id"),
    [
        ({"id": 1, "method": "ping"}, 1),
        ({"jsonrpc": "1.0", "id": 2, "method": "ping"}, 2),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": None, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": 3, "method": 7}, 3),
        ({"jsonrpc": "2.0", "id": 4, "method": "ping", "params": "x"}, 4),
        ({"jsonrpc": "2.0", "id": 5}, 5),
        ({"jsonrpc": "2.0", "id": 6, "result": {}, "error": {}}, 6),
        ([], None),
        (7, None),
    ],
)
async def test_a_message_that_is_not_json_rpc_gets_an_invalid_request_error(
    harness: MakeHarness, message: Any, answer_id: Any
) -> None:
    h = harness(name="srv")
    h.send(message)
    reply = await h.recv()
    assert reply["id"] == answer_id
    assert reply["error"]["code"] in (-32600, -32700)
    await still_answers(h)
    assert h.server.methods() == ["ping"]


async def test_invalid_elements_of_a_batch_are_answered_and_the_valid_ones_run(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send([1, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2}])
    replies = await h.recv()
    assert sorted(json.dumps(r.get("id")) for r in replies) == ["1", "2", "null"]
    assert [m["method"] for m in h.server.received[0]] == ["ping"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": st.none() | st.integers() | st.text(max_size=4) | st.booleans(),
        "method": st.sampled_from(["tools/call", "resources/read", "prompts/get", "ping", "x/y", "notifications/z"])
        | JSON,
        "params": JSON,
        "result": JSON,
        "error": JSON,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(MESSAGE | JSON | st.binary(max_size=12), min_size=1, max_size=4))
async def test_whatever_the_client_sends_the_session_goes_on_and_nothing_is_forwarded_unchecked(
    harness: MakeHarness, frames: list[Any]
) -> None:
    h = harness(name="srv")
    for frame in frames:
        h.send(frame.replace(b"\n", b" ") if isinstance(frame, bytes) else json.dumps(frame).encode())
    h.send({"jsonrpc": "2.0", "id": "end-of-case", "method": "ping"})
    while (reply := await h.recv()) != {"jsonrpc": "2.0", "id": "end-of-case", "result": {}}:
        assert isinstance(reply, dict | list)
    forwarded = [m for r in h.server.received for m in (r if isinstance(r, list) else [r])]
    assert all(m.get("jsonrpc") == "2.0" for m in forwarded)
    calls = [m for m in forwarded if "id" in m and m.get("method") not in (None, "ping", "tools/list")]
    # Each forwarded call is recorded once the server has answered it.
    await until(lambda: len([r for r in h.traces() if r["verdict"] == "allow"]) >= len(calls), "the records")


SERVER_METHOD = st.sampled_from(
    ["sampling/createMessage", "elicitation/create", "roots/list", "ping", "tools/call", "x/y", "notifications/m"]
)
SERVER_MESSAGE = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": SERVER_METHOD | JSON},
    optional={"id": st.integers(0, 3) | st.text(max_size=3), "params": JSON},
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(SERVER_MESSAGE | JSON, min_size=1, max_size=4))
async def test_whatever_the_server_sends_the_client_sees_only_judged_requests_and_the_session_goes_on(
    harness: MakeHarness, frames: list[Any]
) -> None:
    h = harness(name="srv")
    for frame in frames:
        h.server.send(frame)
    h.send({"jsonrpc": "2.0", "id": "end-of-case", "method": "ping"})
    seen: list[Any] = []
    while (reply := await h.recv()) != {"jsonrpc": "2.0", "id": "end-of-case", "result": {}}:
        seen.append(reply)
    shown = [m for m in seen if isinstance(m, dict) and isinstance(m.get("method"), str) and "id" in m]
    for msg in shown:  # the client answers what it was shown: that answer is each call's outcome
        h.send({"jsonrpc": "2.0", "id": msg["id"], "result": {}})
    acting = [m for m in shown if m["method"] != "ping"]

    def recorded() -> bool:
        allowed = [r["tool"] for r in h.traces() if r["verdict"] == "allow"]
        return all(allowed.count(f"srv.{m['method']}") >= acting.count(m) for m in acting)

    await until(recorded, "an allow record for every request the client was shown")
