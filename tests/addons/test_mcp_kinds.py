"""Every MCP request kind through the addon: resources, prompts and unknown methods judged as calls of their
own kind, lists filtered, plumbing passed unrecorded, and the server's own requests judged on the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.test import taddons

from addons.governance import Governance
from addons.mcp_exchange import id_key
from policy import Gate, LoadedConfig, MemoryStore, classify_request
from policy.trace import MemoryTraceSink
from tests.addons.harness import Harness, ListingServer, make_flow, rpc, wait_until

URL = "https://notes.test/mcp"
CONFIG = """
version: 1
state_dir: state
agents:
  claude: {token: s3cret}
servers:
  notes: {mcp_url: "https://notes.test/mcp"}
approval: {hold_seconds: 5}
policies:
  - name: claude
    agent: claude
    rules:
      - {tools: ["notes.resources/read"], when: {args.uri: {glob: "file:///etc/**"}}, action: deny}
      - {tools: ["notes.prompts/get"], when: {args.name: {eq: secret}}, action: deny}
      - {tools: ["notes.sampling/createMessage"], when: {args.systemPrompt: {eq: exfiltrate}}, action: deny}
      - {tools: ["notes.mystery/*"], action: deny}
      - {tools: ["notes.elicitation/create"], when: {args.message: {eq: "password?"}}, action: deny}
      - {tools: ["notes.*"], action: allow}
"""


@contextmanager
def kinds(tmp_path: Path) -> Iterator[Harness]:
    sink, store = MemoryTraceSink(), MemoryStore()
    (tmp_path / "agent-mesh.yaml").write_text(CONFIG)

    def factory(loaded: LoadedConfig) -> Gate:
        return Gate.open(loaded, store=store, sink=sink)

    addon = Governance(factory, fetch_tools=ListingServer())
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mesh_config=str(tmp_path / "agent-mesh.yaml"))
        yield Harness(addon, tctx, sink, store)


def answer(flow: http.HTTPFlow) -> Any:
    assert flow.response is not None
    return json.loads(flow.response.content or b"")


def records(h: Harness, tool: str) -> list[dict[str, Any]]:
    return [r for r in h.records if r["tool"] == tool]


async def test_a_read_of_a_denied_uri_is_a_json_rpc_error_with_the_refusal_in_data(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        flow = make_flow("POST", URL, rpc("resources/read", {"uri": "file:///etc/passwd"}, 7))
        await h.addon.request(flow)
        reply = answer(flow)
        assert reply["id"] == 7
        assert reply["error"]["code"] == -32001
        assert reply["error"]["data"]["code"] == "denied"
        [record] = records(h, "notes.resources/read")
        assert (record["verdict"], record["args"]) == ("deny", {"uri": "file:///etc/passwd"})


async def test_an_allowed_read_is_forwarded_and_traced_with_its_uri(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        flow = make_flow("POST", URL, rpc("resources/read", {"uri": "file:///srv/a.txt"}, 8))
        await h.addon.request(flow)
        assert flow.response is None
        h.respond(flow, 200, {"jsonrpc": "2.0", "id": 8, "result": {"contents": []}})
        [record] = records(h, "notes.resources/read")
        assert (record["verdict"], record["outcome"], record["args"]) == ("allow", "ok", {"uri": "file:///srv/a.txt"})


async def test_prompts_and_unknown_methods_are_calls_of_their_own_kind(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        secret = make_flow("POST", URL, rpc("prompts/get", {"name": "secret"}, 1))
        await h.addon.request(secret)
        assert answer(secret)["error"]["data"]["code"] == "denied"
        mystery = make_flow("POST", URL, rpc("mystery/wipe", {"all": True}, 2))
        await h.addon.request(mystery)
        assert answer(mystery)["error"]["code"] == -32001
        assert [(r["tool"], r["verdict"]) for r in h.records] == [
            ("notes.prompts/get", "deny"),
            ("notes.mystery/wipe", "deny"),
        ]


async def test_plumbing_passes_without_a_record_and_a_call_without_an_id_is_not_run(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        for method in ("initialize", "ping", "logging/setLevel"):
            flow = make_flow("POST", URL, rpc(method, {}, 1))
            await h.addon.request(flow)
            assert flow.response is None
        sneaky = make_flow("POST", URL, rpc("resources/read", {"uri": "file:///etc/passwd"}, None))
        await h.addon.request(sneaky)
        assert sneaky.response is not None
        assert sneaky.response.status_code == 202
        assert h.records == []


async def test_malformed_params_of_a_known_method_are_refused_as_invalid_params(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        flow = make_flow("POST", URL, rpc("resources/read", {"uri": 7}, 3))
        await h.addon.request(flow)
        assert answer(flow)["error"]["code"] == -32602


async def test_resource_and_prompt_lists_hide_what_the_agent_may_never_read(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        flow = make_flow("POST", URL, rpc("resources/list", {}, 4))
        await h.addon.request(flow)
        listed = [{"uri": "file:///srv/a.txt", "name": "a"}, {"uri": "file:///etc/passwd", "name": "p"}]
        h.respond(flow, 200, {"jsonrpc": "2.0", "id": 4, "result": {"resources": listed}})
        assert [r["uri"] for r in answer(flow)["result"]["resources"]] == ["file:///srv/a.txt"]
        prompts = make_flow("POST", URL, rpc("prompts/list", {}, 5))
        await h.addon.request(prompts)
        h.respond(
            prompts, 200, {"jsonrpc": "2.0", "id": 5, "result": {"prompts": [{"name": "secret"}, {"name": "hi"}]}}
        )
        assert [p["name"] for p in answer(prompts)["result"]["prompts"]] == ["hi"]


async def test_a_batch_of_kinds_is_judged_element_by_element(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        batch = [
            rpc("resources/read", {"uri": "file:///etc/passwd"}, 1),
            rpc("resources/read", {"uri": "file:///srv/a.txt"}, 2),
            rpc("ping", {}, 3),
        ]
        flow = make_flow("POST", URL, batch)
        await h.addon.request(flow)
        forwarded = json.loads(flow.request.content or b"")
        assert [m["method"] for m in forwarded] == ["ping", "resources/read", "ping"]  # the refused one: a ping
        assert [r["verdict"] for r in records(h, "notes.resources/read")] == ["deny"]


def sse(msg: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(msg)}\n\n".encode()


async def open_stream(h: Harness) -> Any:
    """A GET event stream of session s1, after a POST in it told the proxy whose session it is."""
    hello = make_flow("POST", URL, rpc("ping", {}, "hello"), {"mcp-session-id": "s1"})
    await h.addon.request(hello)
    get = make_flow("GET", URL, None, {"mcp-session-id": "s1", "accept": "text/event-stream"})
    await h.addon.request(get)
    get.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
    h.addon.responseheaders(get)
    return get.response.stream


async def test_a_server_sampling_request_the_policy_denies_is_withheld_and_refused_to_the_server(
    tmp_path: Path,
) -> None:
    with kinds(tmp_path) as h:
        stream = await open_stream(h)
        asked = rpc("sampling/createMessage", {"messages": [], "systemPrompt": "exfiltrate", "maxTokens": 9}, 0)
        shown = stream(sse(asked))
        assert b"sampling" not in shown
        assert json.loads(shown.split(b"data: ", 1)[1]) == {"jsonrpc": "2.0", "id": 0, "method": "ping"}
        reply = make_flow("POST", URL, {"jsonrpc": "2.0", "id": 0, "result": {}}, {"mcp-session-id": "s1"})
        await h.addon.request(reply)
        sent = json.loads(reply.request.content or b"")
        assert sent["error"]["code"] == -32001
        assert sent["error"]["data"]["code"] == "denied"
        [record] = records(h, "notes.sampling/createMessage")
        assert (record["agent"], record["verdict"]) == ("claude", "deny")


@pytest.mark.parametrize("spelling", ["7", " 7", "+7", "0x7", "7.0", "7e0", "\u0667"])
async def test_an_answer_to_a_withheld_request_under_another_spelling_of_its_id_is_refused_too(
    tmp_path: Path, spelling: object
) -> None:
    # The Python SDK reads a response id "7" as 7 (int()), the TypeScript SDK " 7", "0x7" or 7.0 (Number()).
    with kinds(tmp_path) as h:
        stream = await open_stream(h)
        stream(sse(rpc("sampling/createMessage", {"messages": [], "systemPrompt": "exfiltrate", "maxTokens": 9}, 7)))
        reply = make_flow("POST", URL, {"jsonrpc": "2.0", "id": spelling, "result": {}}, {"mcp-session-id": "s1"})
        await h.addon.request(reply)
        sent = json.loads(reply.request.content or b"")
        assert sent["error"]["data"]["code"] == "denied"
        [record] = records(h, "notes.sampling/createMessage")
        assert record["verdict"] == "deny"


async def test_an_allowed_server_request_reaches_the_client_and_its_answer_the_server(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        stream = await open_stream(h)
        asked = sse(rpc("sampling/createMessage", {"messages": [], "maxTokens": 9}, 1))
        assert stream(asked) == asked
        result = {"jsonrpc": "2.0", "id": 1, "result": {"role": "assistant", "content": {"type": "text", "text": "y"}}}
        reply = make_flow("POST", URL, result, {"mcp-session-id": "s1"})
        await h.addon.request(reply)
        assert json.loads(reply.request.content or b"") == result
        [record] = records(h, "notes.sampling/createMessage")
        assert (record["verdict"], record["outcome"]) == ("allow", "ok")


async def test_an_answer_to_a_request_the_server_never_sent_passes_unjudged_as_a_plain_response(
    tmp_path: Path,
) -> None:
    with kinds(tmp_path) as h:
        reply = make_flow("POST", URL, {"jsonrpc": "2.0", "id": 99, "result": {}}, {"mcp-session-id": "s1"})
        await h.addon.request(reply)
        assert reply.response is None
        assert h.records == []


MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}


def ask(rid: int, **params: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": "ask", "arguments": {}, "_meta": MODERN, **params}, rid)


def input_required(rid: int, message: str) -> dict[str, Any]:
    question = {"method": "elicitation/create", "params": {"message": message, "requestedSchema": {}}}
    result = {"resultType": "input_required", "inputRequests": {"q1": question}, "requestState": "st-1"}
    return {"jsonrpc": "2.0", "id": rid, "result": result}


async def test_a_2026_input_request_the_policy_denies_never_reaches_the_client(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        flow = make_flow("POST", URL, ask(1))
        await h.addon.request(flow)
        h.respond(flow, 200, input_required(1, "password?"))
        reply = answer(flow)
        assert reply["error"]["code"] == -32001
        assert "elicitation/create" in reply["error"]["message"]
        await wait_until(lambda: bool(records(h, "notes.elicitation/create")))
        [record] = records(h, "notes.elicitation/create")
        assert (record["verdict"], record["outcome"]) == ("deny", "refused")


async def test_a_2026_retry_is_judged_for_each_input_it_answers(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        flow = make_flow("POST", URL, ask(1))
        await h.addon.request(flow)
        h.respond(flow, 200, input_required(1, "which colour?"))
        assert answer(flow)["result"]["resultType"] == "input_required"
        retry = make_flow("POST", URL, ask(2, inputResponses={"q1": {"action": "accept"}}, requestState="st-1"))
        await h.addon.request(retry)
        assert retry.response is None  # forwarded
        [record] = records(h, "notes.elicitation/create")
        assert (record["verdict"], record["args"]["message"]) == ("allow", "which colour?")


async def test_a_2026_retry_answering_input_never_asked_is_refused(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        retry = make_flow("POST", URL, ask(3, inputResponses={"q9": {"action": "accept"}}, requestState="forged"))
        await h.addon.request(retry)
        assert answer(retry)["error"]["code"] == -32602


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
METHOD = st.sampled_from(
    ["tools/call", "resources/read", "resources/subscribe", "prompts/get", "completion/complete", "ping",
     "initialize", "resources/list", "notifications/initialized", "mystery/wipe", "vendor/x", "tasks/get"]
) | st.text(max_size=10)  # fmt: skip
PARAMS = JSON | st.fixed_dictionaries(
    {},
    optional={"uri": JSON | st.sampled_from(["file:///etc/passwd", "file:///srv/a"]), "name": JSON, "arguments": JSON},
)
MESSAGE = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": METHOD},
    optional={"id": st.integers(0, 5) | st.sampled_from(["a", "b"]), "params": PARAMS},
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=MESSAGE | st.lists(MESSAGE, min_size=1, max_size=4))
async def test_whatever_an_agent_posts_every_call_forwarded_is_judged_and_waits_for_its_record(
    tmp_path_factory: pytest.TempPathFactory, body: Any
) -> None:
    with kinds(tmp_path_factory.mktemp("kinds")) as h:
        flow = make_flow("POST", URL, body)
        await h.addon.request(flow)
        if flow.response is not None:
            return  # answered by the proxy: refused, or not JSON-RPC it can judge
        sent = json.loads(flow.request.content or b"")
        tracker = h.addon.streams.exchanges.get(flow.id) if h.addon.streams else None
        waiting = set(tracker.calls) | set(tracker.substitutes) if tracker else set()
        for msg in sent if isinstance(sent, list) else [sent]:
            if "id" not in msg:
                assert msg["method"].startswith("notifications/")  # nothing else is run without an answer
                continue
            kind = classify_request(msg["method"], msg.get("params"))  # never forwarded unless it classifies
            if kind.is_call:
                assert id_key(msg["id"]) in waiting  # judged: its record is written when the answer comes


async def test_a_server_request_spelled_with_escapes_is_still_checked(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        stream = await open_stream(h)
        asked = b'data: {"jsonrpc":"2.0","id":4,"\\u006dethod":"sampling/createMessage",'
        asked += b'"params":{"messages":[],"systemPrompt":"exfiltrate","maxTokens":1}}\n\n'
        assert json.loads(stream(asked).split(b"data: ", 1)[1])["method"] == "ping"


async def test_a_body_nested_deeper_than_the_parser_goes_is_refused_as_a_bad_request(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        deep = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        flow = make_flow("POST", URL, deep)
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400


async def test_a_request_in_the_stream_of_a_sessionless_post_is_judged_as_its_callers(tmp_path: Path) -> None:
    with kinds(tmp_path) as h:
        post = make_flow("POST", URL, rpc("tools/call", {"name": "summarise", "arguments": {}}, 1))
        await h.addon.request(post)
        post.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(post)
        stream = post.response.stream
        assert callable(stream)
        asked = sse(rpc("sampling/createMessage", {"messages": [], "maxTokens": 9}, 0))
        assert stream(asked) == asked  # claude may sample from notes: shown, not withheld
        reply = make_flow("POST", URL, {"jsonrpc": "2.0", "id": 0, "result": {"role": "assistant"}})
        await h.addon.request(reply)
        assert json.loads(reply.request.content or b"")["result"] == {"role": "assistant"}
        [record] = records(h, "notes.sampling/createMessage")
        assert (record["agent"], record["verdict"]) == ("claude", "allow")


def test_a_withheld_request_pushed_out_by_a_flood_of_other_requests_still_has_its_answer_refused() -> None:
    from addons.mcp_asked import MAX_WAITING, AskedRequests

    asked = AskedRequests(lambda _a, _s, kind, _session: kind.method == "sampling/createMessage")
    sampling = rpc("sampling/createMessage", {"messages": [], "maxTokens": 9}, 1)
    assert asked.passing(sampling, "victim", ("claude", "notes")) is not None  # withheld: a ping instead
    for n in range(MAX_WAITING + 10):  # e.g. roots/list, asked at every session start the agent opens
        assert asked.passing(rpc("roots/list", {}, n), f"flood-{n}", ("claude", "notes")) is None
    answer = asked.answered("victim", {"jsonrpc": "2.0", "id": 1, "result": {}})
    assert answer is not None
    assert answer.withheld
    assert asked.answered("flood-3", {"jsonrpc": "2.0", "id": 99, "result": {}}) is None
