"""Over MCP HTTP a 2026-07-28 retry carrying input is judged by the Gate bound to its original call, as under
mcpwrap: an approved call the server answered `input_required` continues without a second approval; a retry
that continues nothing the proxy let through is refused, never judged as a fresh call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http

from policy import Operator
from tests.addons import harness as proxy
from tests.addons.harness import Harness, harness, make_flow, rpc, wait_until

URL = "https://notes.test/mcp"
MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
QUESTION = {"method": "elicitation/create", "params": {"message": "which colour?", "requestedSchema": {}}}


@pytest.fixture(autouse=True)
def elicitation_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's config, with the server's questions to the user allowed (so the answer can pass)."""
    rule = '      - {name: asks, tools: ["notes.elicitation/*"], action: allow}\n'
    monkeypatch.setattr(proxy, "CONFIG", proxy.CONFIG.rstrip("\n") + "\n" + rule)


def write(rid: int, **params: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": "write_note", "arguments": {"id": 1}, "_meta": MODERN, **params}, rid)


def input_required(rid: int) -> dict[str, Any]:
    result = {"resultType": "input_required", "inputRequests": {"q1": QUESTION}, "requestState": "st-1"}
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def answer(flow: http.HTTPFlow) -> dict[str, Any]:
    assert flow.response is not None
    reply: dict[str, Any] = json.loads(flow.response.content or b"")
    return reply


def calls(h: Harness, tool: str) -> list[dict[str, Any]]:
    return [r for r in h.records if r["tool"] == tool and r.get("kind") != "event"]


async def approved_and_asked(h: Harness) -> None:
    """write_note (human_approval) approved by a human, then answered `input_required` by the server."""
    flow = make_flow("POST", URL, write(1))
    held = asyncio.ensure_future(h.addon.request(flow))
    await wait_until(lambda: bool(h.store.list_approvals(None, 0.0)))
    assert h.addon.judge is not None
    gate = h.addon.judge.gate
    Operator(gate.config, h.store).approve(h.store.list_approvals(None, 0.0)[0].id, by="human:alice")
    await held
    assert flow.response is None  # forwarded once approved
    h.respond(flow, 200, input_required(1))
    assert answer(flow)["result"]["resultType"] == "input_required"


async def test_the_retry_of_an_approved_call_continues_it_without_a_second_approval(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        await approved_and_asked(h)
        retry = make_flow("POST", URL, write(2, inputResponses={"q1": {"action": "accept"}}, requestState="st-1"))
        await h.addon.request(retry)
        assert retry.response is None  # forwarded, not held again
        assert len(h.store.list_approvals(None, 0.0)) == 1
        h.respond(retry, 200, {"jsonrpc": "2.0", "id": 2, "result": {"content": [], "isError": False}})
        first, again = calls(h, "notes.write_note")
        assert again["decided_by"] == f"continues:{first['trace_id']}"


async def test_a_retry_that_continues_no_call_is_refused(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        # The server's state names an exchange the proxy never saw: only requestState, no input to check.
        retry = make_flow("POST", URL, write(3, requestState="forged"))
        await h.addon.request(retry)
        refusal = answer(retry)["result"]["structuredContent"]
        assert refusal["rule"] == "mcp.continuation"
        assert not h.store.list_approvals(None, 0.0)  # never judged as a fresh call
