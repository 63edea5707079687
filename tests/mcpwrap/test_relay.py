"""The relay in memory: what passes untouched, what is judged, and how refusals look in both eras."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.mcpwrap.conftest import MakeHarness, until
from tests.mcpwrap.fake_server import tool

MODERN = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}


def initialize(request_id: Any = 0) -> dict[str, Any]:
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


async def test_frames_it_does_not_govern_reach_the_server_as_parsed_never_as_the_client_spelled_them(
    harness: MakeHarness,
) -> None:
    h = harness()
    odd = b'{ "jsonrpc" : "2.0", "id": 7, "method": "ping", "params": {"x": "\\u00e9"} }'
    h.send(odd)
    assert (await h.recv())["id"] == 7
    # Re-encoded: the server reads exactly what was judged (a duplicate key cannot read differently there).
    assert h.server.frames == ['{"jsonrpc":"2.0","id":7,"method":"ping","params":{"x":"é"}}'.encode()]


async def test_an_allowed_call_with_id_zero_reaches_the_server_and_its_result_comes_back(harness: MakeHarness) -> None:
    h = harness()
    h.send(initialize(0))
    assert (await h.recv())["result"]["serverInfo"]["name"] == "fake"
    reply = await h.call(1, "echo", {"text": "hi"})
    assert reply["id"] == 1
    assert reply["result"]["content"][0]["text"] == '{"text": "hi"}'
    record = h.traces()[-1]
    assert (record["tool"], record["verdict"], record["outcome"]) == ("fake.echo", "allow", "ok")


async def test_string_and_very_large_ids_come_back_unchanged(harness: MakeHarness) -> None:
    h = harness(name="srv")
    for request_id in ("a-string", 2**70 + 3, 0):
        reply = await h.call(request_id, "echo", {"text": "x"})
        assert reply["id"] == request_id
        assert "result" in reply


async def test_a_denied_call_is_a_tool_error_with_a_stable_code_and_never_reaches_the_server(
    harness: MakeHarness,
) -> None:
    h = harness(name="srv")
    reply = await h.call(3, "forbidden", {})
    result = reply["result"]
    assert result["isError"] is True
    assert result["structuredContent"]["code"] == "denied"
    assert "agent-mesh denied this call" in result["content"][0]["text"]
    assert "resultType" not in result
    assert "forbidden" not in h.server.calls()
    assert h.traces()[-1]["verdict"] == "deny"


async def test_a_denied_call_in_the_stateless_era_carries_result_type_complete(harness: MakeHarness) -> None:
    h = harness(name="srv")
    reply = await h.call(3, "echo", {"text": "bad"}, **MODERN)
    assert reply["result"]["resultType"] == "complete"
    assert reply["result"]["isError"] is True


async def test_refuse_as_error_answers_a_json_rpc_error_with_the_same_payload(harness: MakeHarness) -> None:
    h = harness(name="srv", refuse_as="error")
    reply = await h.call("x", "forbidden", {})
    assert reply["error"]["code"] == -32001
    assert reply["error"]["data"]["code"] == "denied"


async def test_the_server_name_comes_from_initialize_when_no_name_is_given(harness: MakeHarness) -> None:
    h = harness(server_name="notes")
    h.send(initialize())
    await h.recv()
    await h.call(1, "echo", {"text": "a"})
    assert h.traces()[-1]["tool"] == "notes.echo"


async def test_a_stateless_call_without_a_name_asks_the_server_who_it_is_first(harness: MakeHarness) -> None:
    h = harness(server_name="notes")
    reply = await h.call(1, "echo", {"text": "a"}, **MODERN)
    assert reply["result"]["resultType"] == "complete"
    assert h.server.methods()[:2] == ["server/discover", "tools/list"]
    assert h.traces()[-1]["tool"] == "notes.echo"


async def test_a_batch_is_judged_element_by_element_and_answered_as_one_array(harness: MakeHarness) -> None:
    h = harness(name="srv")
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "ok"}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "forbidden", "arguments": {}}},
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}},
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
    ]
    h.send(batch)
    reply = await h.recv()
    by_id = {r["id"]: r for r in reply}
    assert set(by_id) == {1, 2, 3}
    assert by_id[1]["result"]["isError"] is False
    assert by_id[2]["result"]["structuredContent"]["code"] == "denied"
    forwarded = next(m for m in h.server.received if isinstance(m, list))
    assert [m.get("id") for m in forwarded] == [1, None, 3]


async def test_a_batch_whose_every_call_is_refused_is_answered_by_mcpwrap_alone(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send([{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "forbidden", "arguments": {}}}])
    reply = await h.recv()
    assert [r["id"] for r in reply] == [9]
    assert h.server.received == [] or h.server.methods() == ["tools/list"]


async def test_server_requests_and_notifications_reach_the_client_and_its_answer_reaches_the_server(
    harness: MakeHarness,
) -> None:
    h = harness(name="srv")
    h.server.send({"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {"messages": []}})
    h.server.send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}})
    # The request is judged in a task of its own, so the notification may overtake it.
    assert {(await h.recv())["method"], (await h.recv())["method"]} == {
        "sampling/createMessage",
        "notifications/message",
    }
    h.send({"jsonrpc": "2.0", "id": 0, "result": {"role": "assistant", "content": {"type": "text", "text": "y"}}})
    h.send({"jsonrpc": "2.0", "id": 5, "method": "ping"})
    await h.recv()
    assert h.server.received[0] == {
        "jsonrpc": "2.0",
        "id": 0,
        "result": {"role": "assistant", "content": {"type": "text", "text": "y"}},
    }


async def test_frames_of_sixteen_mebibytes_pass_both_ways(harness: MakeHarness) -> None:
    h = harness(name="srv")
    big = "x" * (16 * 1024 * 1024 + 5)
    reply = await h.call(1, "echo", {"text": big})
    assert len(reply["result"]["content"][0]["text"]) == len(big) + len('{"text": ""}')


async def test_a_frame_that_is_not_json_gets_a_parse_error_and_is_not_forwarded(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", ')
    reply = await h.recv()
    assert reply["error"]["code"] == -32700
    assert h.server.received == []


async def test_a_call_with_malformed_params_is_refused_as_invalid_params(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": [1]}})
    assert (await h.recv())["error"]["code"] == -32602
    assert h.server.calls() == []


async def test_every_request_in_flight_gets_an_error_when_the_server_dies(harness: MakeHarness) -> None:
    h = harness([tool("slow")], name="srv")
    h.server.gate.clear()
    h.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {}}})
    h.send({"jsonrpc": "2.0", "id": "two", "method": "tools/call", "params": {"name": "slow", "arguments": {"n": 2}}})
    await until(lambda: len(h.server.calls()) == 2, "both calls reaching the server")
    h.server.die()
    assert h.server_task is not None
    await asyncio.wait_for(h.server_task, 5)
    h.relay.fail_inflight("the server exited with status 1")
    replies = {r["id"]: r for r in [await h.recv(), await h.recv()]}
    assert replies[1]["error"]["code"] == -32000
    assert replies["two"]["error"]["message"] == "the server exited with status 1"
    assert h.traces()[-1]["outcome"] == "error"


async def test_a_call_with_a_number_json_cannot_carry_is_refused_as_invalid_params(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"n": 1e999}}}'
    )
    assert (await h.recv())["error"]["code"] == -32602
    assert h.server.calls() == []


async def test_a_refused_tool_with_an_output_schema_gets_its_payload_in_meta_only(harness: MakeHarness) -> None:
    typed = {**tool("forbidden"), "outputSchema": {"type": "object", "required": ["content"]}}
    h = harness([typed], name="srv")
    reply = await h.call(1, "forbidden", {})
    assert "structuredContent" not in reply["result"]
    assert reply["result"]["_meta"]["agent-mesh/refusal"]["code"] == "denied"


async def test_a_tools_call_without_an_id_is_dropped_never_forwarded(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "forbidden", "arguments": {}}})
    h.send([{"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "forbidden", "arguments": {}}}])
    assert (await h.call(1, "echo", {"text": "after"}))["id"] == 1
    assert h.server.calls() == ["echo"]


async def test_a_batch_with_a_number_json_cannot_carry_is_answered_not_forwarded(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(
        b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}},'
        b' {"jsonrpc": "2.0", "id": 2, "method": "ping", "params": {"n": 1e999}}]'
    )
    reply = await h.recv()
    assert sorted(r["error"]["code"] for r in reply) == [-32602, -32602]
    assert h.server.calls() == []
