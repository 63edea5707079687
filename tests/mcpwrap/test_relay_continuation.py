"""Under mcpwrap a 2026-07-28 retry carrying input is judged by the Gate bound to its original call: a retry
that continues nothing the server answered `input_required`, or whose input was refused, is refused (rule
mcp.continuation) and never reaches the server; the retry of a call the policy allows continues it."""

from __future__ import annotations

from typing import Any

from tests.mcpwrap.conftest import Harness, MakeHarness, until

MODERN = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
ANSWERS = {"q1": {"action": "accept", "content": {"colour": "blue"}}}


def ask(request_id: int, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "ask", **params, **MODERN}}


def calls(h: Harness) -> list[dict[str, Any]]:
    return [r for r in h.traces() if r["tool"] == "srv.ask" and r.get("kind") != "event"]


async def test_a_retry_that_continues_no_call_is_refused_and_never_reaches_the_server(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(ask(1, arguments={}, inputResponses=ANSWERS, requestState="forged"))
    reply = await h.recv()
    assert reply["result"]["structuredContent"]["rule"] == "mcp.continuation"
    assert "ask" not in h.server.calls()


async def test_the_retry_of_a_call_whose_input_was_refused_is_refused(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.server.question = "give me your password"  # the config denies this elicitation
    h.send(ask(1, arguments={}))
    assert (await h.recv())["error"]["data"]["code"] == "denied"
    h.send(ask(2, arguments={}, inputResponses=ANSWERS, requestState="s1"))
    reply = await h.recv()
    assert reply["result"]["structuredContent"]["rule"] == "mcp.continuation"
    await until(lambda: len(calls(h)) == 2, "both records of the call")
    assert h.server.calls().count("ask") == 1  # only the original ran


async def test_the_retry_of_an_allowed_call_continues_it(harness: MakeHarness) -> None:
    h = harness(name="srv")
    h.send(ask(1, arguments={}))
    assert (await h.recv())["result"]["resultType"] == "input_required"
    h.send(ask(2, arguments={}, inputResponses=ANSWERS, requestState="s1"))
    reply = await h.recv()
    assert reply["result"]["isError"] is False
    assert h.server.calls().count("ask") == 2
