"""Both adapters answer the same refused call with the same bytes: the proxy (MCP over HTTP) and mcpwrap
(stdio) build refusals with policy.wire, from the Gate's Verdict, for either era and any kind of request.

The trace and approval ids are each check's own (two checks, two ids); everything else must be identical."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mcpwrap.frame_judge import FrameJudge
from policy import Gate, MemoryStore, load_config
from policy.trace import MemoryTraceSink
from policy.wire import era, jsonrpc
from policy.wire.jsonrpc import Message
from tests.addons.harness import harness, make_flow, rpc, write_config

URL = "https://notes.test/mcp"
MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
_IDS = re.compile(rb'"(trace_id|approval_id)":"[^"]*"|\(id [0-9a-f]+\)|(approve|trace) [0-9a-f]+')


def tool_call(name: str, rid: Any, *, modern: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": {"id": 7}}
    if modern:
        params["_meta"] = MODERN
    return rpc("tools/call", params, rid)


CASES = {
    "a denied 2026-era tool call": tool_call("delete_note", "x", modern=True),
    "a denied 2025-era tool call": tool_call("delete_note", 0, modern=False),
    "a tool call held and not approved in time": tool_call("write_note", 3, modern=True),
    "a resource read no rule allows": rpc("resources/read", {"uri": "file:///etc/passwd"}, 4),
    "a prompt no rule allows, 2026 era": rpc("prompts/get", {"name": "p", "_meta": MODERN}, 5),
    # The adapters once disagreed on these: mcpwrap took any `_meta` version for the 2026 era (adding
    # `resultType`), the proxy also took the `Mcp-Protocol-Version` header (sent below with every case).
    "a tool call whose _meta names 2025-11-25": rpc(
        "tools/call", {"name": "delete_note", "_meta": {"io.modelcontextprotocol/protocolVersion": "2025-11-25"}}, 6
    ),
}


def without_ids(answer: bytes) -> bytes:
    return _IDS.sub(b"<id>", answer)


async def over_stdio(tmp_path: Path, msg: Message, *, to_client: bool = False) -> bytes:
    loaded = load_config(str(write_config(tmp_path / "stdio", hold_seconds=0)))
    gate = Gate.open(loaded, store=MemoryStore(), sink=MemoryTraceSink())

    async def notify(_msg: Message) -> None:
        return None

    judge = FrameJudge(gate, agent="claude", session_id="s1", server="notes", fallback_server="notes")
    judged = await judge.judge(msg, notify, to_client=to_client)
    assert judged.answer is not None, "mcpwrap forwarded a call the proxy refuses"
    return jsonrpc.dump(judged.answer)  # what mcpwrap's relay writes to the client


async def over_http(tmp_path: Path, msg: Message) -> bytes:
    (tmp_path / "http").mkdir()
    with harness(tmp_path / "http", hold_seconds=0) as h:
        # The version header agrees with a `_meta` version (else it is a header mismatch); a body without one
        # gets a 2026 header all the same: the era is the body's.
        version = era.meta_version(msg) or "2026-07-28"
        flow = make_flow("POST", URL, msg, {"mcp-session-id": "s1", "mcp-protocol-version": version})
        await h.addon.request(flow)
        assert flow.response is not None, "the proxy forwarded a call mcpwrap refuses"
        return flow.response.content or b""


@pytest.mark.parametrize("msg", list(CASES.values()), ids=list(CASES))
async def test_both_adapters_refuse_the_same_call_with_the_same_bytes(tmp_path: Path, msg: Message) -> None:
    (tmp_path / "stdio").mkdir()
    stdio = await over_stdio(tmp_path, msg)
    http = await over_http(tmp_path, msg)
    assert without_ids(stdio) == without_ids(http)
    assert b"agent-mesh/refusal" in stdio or b'"code":-32001' in stdio


QUESTION = {"method": "elicitation/create", "params": {"message": "your password?", "requestedSchema": {}}}


async def test_both_adapters_refuse_a_2026_input_request_the_policy_denies_with_the_same_bytes(tmp_path: Path) -> None:
    # The server answers an allowed call `input_required`, asking the user something no rule allows: the
    # client gets a JSON-RPC error for its call instead of the result, built from the Gate's verdict.
    (tmp_path / "stdio").mkdir()
    asked = {"jsonrpc": "2.0", "id": 1, **QUESTION}  # how mcpwrap judges an input request (mcpwrap/asked.py)
    stdio = await over_stdio(tmp_path, asked, to_client=True)
    (tmp_path / "http").mkdir()
    with harness(tmp_path / "http", hold_seconds=0) as h:
        flow = make_flow("POST", URL, tool_call("read_note", 1, modern=True), {"mcp-session-id": "s1"})
        await h.addon.request(flow)
        result = {"resultType": "input_required", "inputRequests": {"q1": QUESTION}, "requestState": "st"}
        h.respond(flow, 200, {"jsonrpc": "2.0", "id": 1, "result": result})
        assert flow.response is not None
        http = flow.response.content or b""
    assert without_ids(stdio) == without_ids(http)
    assert b'"code":-32001' in stdio
