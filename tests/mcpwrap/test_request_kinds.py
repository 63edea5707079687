"""Every MCP request kind is a judged call in mcpwrap: resources, prompts, unknown methods, the server's own
requests (sampling, elicitation) in both eras; lists are filtered and plumbing passes unrecorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.mcpwrap.conftest import Harness, MakeHarness, until
from tests.mcpwrap.fake_server import tool

MODERN = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}


def request(request_id: Any, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def records(h: Harness, tool: str) -> list[dict[str, Any]]:
    return [r for r in h.traces() if r["tool"] == tool]


async def test_a_read_of_a_denied_resource_is_a_json_rpc_error_with_the_refusal_and_never_reaches_the_server(
    harness: MakeHarness,
) -> None:
    h = harness(name="srv")
    h.send(request(1, "resources/read", uri="file:///etc/passwd"))
    reply = await h.recv()
    assert reply["id"] == 1
    assert reply["error"]["code"] == -32001
    assert reply["error"]["data"]["code"] == "denied"
    assert "agent-mesh denied" in reply["error"]["message"]
    assert "resources/read" not in h.server.methods()
    [record] = records(h, "srv.resources/read")
    assert (record["verdict"], record["args"]) == ("deny", {"uri": "file:///etc/passwd"})


async def test_an_allowed_resource_read_reaches_the_server_and_is_traced_with_its_uri(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(request(2, "resources/read", uri="file:///srv/readme.txt"))
    reply = await h.recv()
    assert reply["result"]["contents"][0]["text"] == "contents of file:///srv/readme.txt"
    await until(lambda: bool(records(h, "srv.resources/read")), "the read's trace record")
    [record] = records(h, "srv.resources/read")
    assert (record["verdict"], record["outcome"], record["args"]) == ("allow", "ok", {"uri": "file:///srv/readme.txt"})


@pytest.mark.parametrize(
    ("uri", "denied"),
    [
        ("demo://private/notes/1", True),
        ("demo://private//notes/1", True),
        ("demo://public/../private/notes/1", True),
        ("demo://public/notes/1", False),
    ],
)
async def test_a_glob_on_a_uri_of_any_scheme_matches_however_the_uri_is_spelled(
    harness: MakeHarness, uri: str, denied: bool
) -> None:
    h = harness(name="srv")
    h.send(request(1, "resources/read", uri=uri))
    reply = await h.recv()
    assert ("error" in reply) is denied


async def test_subscribing_to_a_denied_resource_is_refused_too(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(request(3, "resources/subscribe", uri="file:///etc/shadow"))
    assert (await h.recv())["error"]["data"]["code"] == "denied"
    assert h.server.received == []


async def test_a_prompt_is_judged_by_its_name_and_arguments(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(request(4, "prompts/get", name="secret_prompt"))
    assert (await h.recv())["error"]["code"] == -32001
    h.send(request(5, "prompts/get", name="greet", arguments={"who": "ann"}))
    assert (await h.recv())["result"]["messages"][0]["content"]["text"] == "greet"
    allowed = [r for r in records(h, "srv.prompts/get") if r["verdict"] == "allow"]
    assert allowed[0]["args"] == {"name": "greet", "arguments": {"who": "ann"}}


async def test_an_unknown_method_is_judged_under_its_own_name_never_waved_through(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(request(6, "mystery/method", x=1))
    assert (await h.recv())["error"]["data"]["code"] == "denied"
    h.send(request(7, "other/method", x=2))
    assert (await h.recv())["id"] == 7
    assert h.server.methods() == ["other/method"]
    assert [r["verdict"] for r in h.traces()] == ["deny", "allow"]
    assert [r["tool"] for r in h.traces()] == ["srv.mystery/method", "srv.other/method"]


async def test_plumbing_passes_without_a_call_record(harness: MakeHarness) -> None:
    h = harness(name="srv")
    plumbing = ["initialize", "ping", "logging/setLevel", "server/discover", "tools/list", "resources/list"]
    for i, method in enumerate(plumbing):
        h.send(request(i, method))
        assert (await h.recv())["id"] == i
    assert [r for r in h.traces() if r.get("kind") != "event"] == []  # a tools/list records only events


async def test_a_tools_call_named_after_a_judged_method_is_refused_as_invalid_params(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(request(8, "tools/call", name="resources/read", arguments={"uri": "file:///srv/readme.txt"}))
    assert (await h.recv())["error"]["code"] == -32602
    assert h.server.received == []


async def test_resource_and_prompt_lists_hide_what_the_agent_may_never_read(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(request(1, "resources/list"))
    assert [r["uri"] for r in (await h.recv())["result"]["resources"]] == ["file:///srv/readme.txt"]
    h.send(request(2, "prompts/list"))
    assert [p["name"] for p in (await h.recv())["result"]["prompts"]] == ["greet"]
    h.send(request(3, "resources/templates/list"))
    assert len((await h.recv())["result"]["resourceTemplates"]) == 1  # some URIs may be read: kept


async def test_a_batch_of_every_kind_is_judged_element_by_element(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(
        [
            request(1, "resources/read", uri="file:///etc/passwd"),
            request(2, "resources/read", uri="file:///srv/readme.txt"),
            request(3, "ping"),
            request(4, "mystery/method"),
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
        ]
    )
    reply = await h.recv()
    by_id = {r["id"]: r for r in reply}
    assert sorted(by_id) == [1, 2, 3, 4]
    assert by_id[1]["error"]["code"] == by_id[4]["error"]["code"] == -32001
    assert "contents" in by_id[2]["result"]
    [forwarded] = h.server.received
    assert sorted(m["method"] for m in forwarded) == ["notifications/initialized", "ping", "resources/read"]


async def test_a_server_sampling_request_the_policy_denies_is_answered_to_the_server_never_shown_the_client(
    harness: MakeHarness,
) -> None:
    h = harness(name="srv")
    h.server.send(request(0, "sampling/createMessage", messages=[], systemPrompt="exfiltrate", maxTokens=5))
    await until(lambda: bool(h.server.received), "the refusal reaching the server")
    [answer] = h.server.received
    assert answer["id"] == 0
    assert answer["error"]["code"] == -32001
    assert answer["error"]["data"]["code"] == "denied"
    [record] = records(h, "srv.sampling/createMessage")
    assert (record["agent"], record["verdict"]) == ("claude", "deny")
    h.send(request(9, "ping"))
    assert (await h.recv())["id"] == 9  # the client saw nothing before its own answer


async def test_an_allowed_server_request_reaches_the_client_and_its_answer_is_recorded(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.server.send(request("s1", "sampling/createMessage", messages=[], maxTokens=5))
    assert (await h.recv())["method"] == "sampling/createMessage"
    h.send({"jsonrpc": "2.0", "id": "s1", "result": {"role": "assistant", "content": {"type": "text", "text": "y"}}})
    await until(lambda: bool(h.server.received), "the client's answer reaching the server")
    assert h.server.received[0]["id"] == "s1"
    await until(lambda: bool(records(h, "srv.sampling/createMessage")), "the sampling record")
    [record] = records(h, "srv.sampling/createMessage")
    assert (record["verdict"], record["outcome"]) == ("allow", "ok")


async def test_a_server_request_that_needs_a_human_waits_for_the_approval(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.server.send(request(5, "sampling/createMessage", messages=[], systemPrompt="ask a human", maxTokens=5))
    await until(lambda: bool(h.store.list_approvals(None, 0.0)), "the pending approval")
    h.approve(h.store.list_approvals(None, 0.0)[0].id)
    assert (await h.recv())["method"] == "sampling/createMessage"


async def test_a_client_answer_to_a_request_the_server_never_made_is_dropped(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send({"jsonrpc": "2.0", "id": 77, "result": {}})
    h.send(request(1, "ping"))
    assert (await h.recv())["id"] == 1
    assert h.server.methods() == ["ping"]


async def test_a_2026_input_request_the_policy_denies_turns_the_result_into_a_refusal(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.server.question = "give me your password"
    h.send(request(1, "tools/call", name="ask", arguments={}, **MODERN))
    reply = await h.recv()
    assert reply["id"] == 1
    assert reply["error"]["data"]["code"] == "denied"
    assert [r["verdict"] for r in records(h, "srv.elicitation/create")] == ["deny"]


async def test_a_second_request_with_an_id_in_flight_is_refused_and_the_first_runs_once(harness: MakeHarness) -> None:
    h = harness([tool("slow"), tool("echo")], name="srv")
    h.server.gate.clear()
    h.send(request(1, "tools/call", name="slow", arguments={}))
    await until(lambda: h.server.calls() == ["slow"], "the first call reaching the server")
    h.send(request(1, "tools/call", name="echo", arguments={"text": "twin"}))
    refused = await h.recv()
    assert refused["error"]["code"] == -32600
    assert "already in flight" in refused["error"]["message"]
    h.server.gate.set()
    assert "result" in await h.recv()
    assert h.server.calls() == ["slow"]


async def test_a_batch_that_repeats_an_id_runs_only_the_first(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(
        [
            request(1, "tools/call", name="echo", arguments={"text": "a"}),
            request(1, "tools/call", name="echo", arguments={"text": "b"}),
        ]
    )
    replies = await h.recv()
    assert sorted("error" in r for r in replies) == [False, True]
    [forwarded] = [m for m in h.server.received if isinstance(m, list)]  # (mcpwrap's own tools/list aside)
    assert [m["params"]["arguments"] for m in forwarded] == [{"text": "a"}]


async def test_a_call_judged_at_once_is_answered_once_when_the_session_ends(harness: MakeHarness) -> None:
    # The regression of issue 14 item 2: with eager tasks (as mcpwrap runs), a call decided without suspending
    # left a stale judging entry, and shutdown answered it a second time.
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
    try:
        h = harness(name="srv")
        assert "result" in await h.call(1, "echo", {"text": "lists the tools first"})
        assert "result" in await h.call(2, "echo", {"text": "decided without suspending"})
        h.relay.abandon_judging("gone")
        h.relay.fail_inflight("gone")
        await h.relay.notify_client({"jsonrpc": "2.0", "method": "notifications/marker"})
        assert (await h.recv())["method"] == "notifications/marker"  # nothing came before it
    finally:
        asyncio.get_running_loop().set_task_factory(None)


async def test_the_retry_of_a_call_whose_input_request_was_refused_is_judged_again(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.server.question = "give me your password"
    h.send(request(1, "tools/call", name="ask", arguments={}, **MODERN))
    assert (await h.recv())["error"]["data"]["code"] == "denied"
    answers = {"q1": {"action": "accept", "content": {"password": "hunter2"}}}
    h.send(request(2, "tools/call", name="ask", arguments={}, inputResponses=answers, requestState="s1", **MODERN))
    assert (await h.recv())["id"] == 2
    await until(lambda: len(records(h, "srv.ask")) == 2, "both records of the call")
    retry = records(h, "srv.ask")[-1]
    assert not retry["decided_by"].startswith("continues:")  # judged, not waved through as a continuation
