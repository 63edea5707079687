"""classify() judges the canonical request or refuses it: JSON-RPC only to configured MCP servers, in every
encoding the SDKs accept; REST on decoded paths, method after overrides, arguments without ambiguity; the
call hash bound to the endpoint and body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.classify import McpBody, Request, RestCall, ServerMap, classify
from addons.request_canon import RequestOptions
from policy import ToolCall, load_config_text
from policy.wire.messages import tool_call_of

CONFIG = """
version: 1
servers:
  notes: {mcp_url: "https://notes.test/mcp"}
  api: {openapi: spec.json}
"""
SPEC = {
    "openapi": "3.0.0",
    "servers": [{"url": "https://staging.test/v1"}, {"url": "https://prod.test/v1"}],
    "paths": {
        "/notes/{id}": {"post": {"operationId": "notes_update"}},
        "/notes/{id}/purge": {"post": {"operationId": "notes_purge"}},
        "/notes": {
            "get": {
                "operationId": "notes_list",
                "parameters": [{"name": "tag", "in": "query", "schema": {"type": "array", "items": {}}}],
            }
        },
    },
}
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_note", "arguments": {"id": 1}}}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> ServerMap:
    tmp = tmp_path_factory.mktemp("spec")
    (tmp / "spec.json").write_text(json.dumps(SPEC))
    return ServerMap.from_config(load_config_text(CONFIG, "c.yaml").config, tmp)


def req(method: str, url: str, body: bytes = b"", **headers: str) -> Request:
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    hdrs = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return Request(method, scheme, host, 443, "/" + path, hdrs, body)


def run(servers: ServerMap, r: Request, options: RequestOptions | None = None) -> RestCall | McpBody | None:
    return classify(r, servers.lookup(r.host, r.port, r.path), options)


BODY_SPELLINGS = [
    (json.dumps(CALL).encode(), "application/json, text/plain"),
    (json.dumps(CALL).encode(), "application/json, application/json"),
    (json.dumps(CALL).encode(), "application/json-x"),
    (json.dumps(CALL).encode(), ""),
    (b"\xef\xbb\xbf" + json.dumps(CALL).encode(), "application/json"),
    (json.dumps(CALL).encode("utf-16"), "application/json"),
    (json.dumps(CALL).encode("utf-16-be"), "application/json"),
    (json.dumps(CALL).encode("utf-32"), "application/json"),
    (json.dumps(CALL).replace('"jsonrpc"', '"\\u006asonrpc"').encode(), "application/json"),
    (json.dumps(CALL).replace('"name"', '"n\\u0061me"').encode(), "text/plain"),
]


@pytest.mark.parametrize(("body", "ctype"), BODY_SPELLINGS)
def test_every_spelling_the_sdk_accepts_is_judged_as_the_tool_call(servers: ServerMap, body: bytes, ctype: str) -> None:
    got = run(servers, req("POST", "https://notes.test/mcp", body, content_type=ctype))
    assert isinstance(got, McpBody)
    assert tool_call_of(got.messages[0]) == ("delete_note", {"id": 1})


@given(st.binary(max_size=64) | st.from_regex(r'\A[ \t]*[\[{].{0,40}"jsonrpc".{0,40}\Z').map(str.encode))
def test_a_post_to_an_mcp_server_is_json_rpc_or_refused(servers: ServerMap, body: bytes) -> None:
    r = req("POST", "https://notes.test/mcp", body, content_type="application/json")
    try:
        got = run(servers, r)
    except ValueError:
        return
    assert isinstance(got, McpBody)


@given(st.sampled_from(["tools/list", "initialize", "notes/purge", "tools/call"]), st.sampled_from(["", "text/plain"]))
def test_json_rpc_to_any_other_host_is_judged_as_http(method: str, ctype: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}).encode()
    got = classify(req("POST", "https://elsewhere.test/rpc", body, content_type=ctype), None)
    assert isinstance(got, RestCall)
    assert (got.tool, got.arguments["method"]) == ("POST /rpc", method)


@pytest.mark.parametrize(
    ("method", "body", "message"),
    [("PUT", b"{}", "not PUT"), ("PATCH", b"", "not PATCH"), ("GET", b'{"jsonrpc": "2.0"}', "carries no body")],
)
def test_other_requests_to_an_mcp_server_are_refused(
    servers: ServerMap, method: str, body: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run(servers, req(method, "https://notes.test/mcp", body))
    assert run(servers, req("GET", "https://notes.test/mcp")) is None


def test_an_encoded_slash_never_reaches_a_neighbouring_operation(servers: ServerMap) -> None:
    with pytest.raises(ValueError, match="encodes '/'"):
        run(servers, req("POST", "https://staging.test/v1/notes/1%2Fpurge", b"{}", content_type="application/json"))
    purge = run(servers, req("POST", "https://staging.test/v1/notes/1/purge"))
    assert isinstance(purge, RestCall)
    assert purge.tool == "notes_purge"


@pytest.mark.parametrize(
    "url",
    [
        "https://staging.test/v1/notes/1/PURGE",
        "https://staging.test/v1/Notes/1/purge",
        "https://staging.test/V1/notes/1/purge",
    ],
)
def test_a_route_spelled_in_another_letter_case_is_refused(servers: ServerMap, url: str) -> None:
    # Express routes case-insensitively: these would run notes_purge there.
    with pytest.raises(ValueError, match="letter case"):
        run(servers, req("POST", url, json.dumps(CALL).encode()))


@pytest.mark.parametrize("method", ["post", "Post", "PO ST", "POST\x00"])
def test_a_method_not_spelled_in_upper_case_is_refused(servers: ServerMap, method: str) -> None:
    with pytest.raises(ValueError, match="upper-case method"):
        run(servers, req(method, "https://staging.test/v1/notes/1/purge"))


def test_json_sent_as_text_or_untyped_is_visible_to_rules(servers: ServerMap) -> None:
    for ctype in ("text/plain", ""):
        got = run(servers, req("POST", "https://staging.test/v1/notes/1", b'{"text": "rm -rf"}', content_type=ctype))
        assert isinstance(got, RestCall)
        assert got.arguments == {"id": "1", "text": "rm -rf"}


def test_query_body_collisions_and_repeated_keys_are_refused(servers: ServerMap) -> None:
    with pytest.raises(ValueError, match="both the query and the body"):
        run(servers, req("POST", "https://staging.test/v1/notes/1?text=a", b'{"text": "b"}'))
    got = run(
        servers,
        req("POST", "https://staging.test/v1/notes/1?text=a", b'{"text": "b"}'),
        RequestOptions(precedence="query"),
    )
    assert isinstance(got, RestCall)
    assert got.arguments["text"] == "a"
    with pytest.raises(ValueError, match="repeats 'who'"):
        run(servers, req("POST", "https://staging.test/v1/notes/1?who=a&who=b"))
    listed = run(servers, req("GET", "https://staging.test/v1/notes?tag=a&tag=b"))
    assert isinstance(listed, RestCall)
    assert listed.arguments == {"tag": ["a", "b"]}


def test_a_method_override_is_refused_or_judged_as_the_method_it_names(servers: ServerMap) -> None:
    r = req("POST", "https://elsewhere.test/v1/notes/1", x_http_method_override="DELETE")
    with pytest.raises(ValueError, match="method_override"):
        classify(r, None)
    got = classify(r, None, RequestOptions(method_override=True))
    assert isinstance(got, RestCall)
    assert got.tool == "DELETE /v1/notes/1"
    assert got.http is not None
    assert got.http.method == "DELETE"
    with pytest.raises(ValueError, match="method_override"):
        run(servers, req("POST", "https://staging.test/v1/notes/1?_method=DELETE"))


def hash_of(got: Any) -> str:
    assert isinstance(got, RestCall)
    return ToolCall("a", got.surface, got.server, got.tool, got.arguments, None, got.http).call_hash


def test_the_call_hash_binds_host_and_body(servers: ServerMap) -> None:
    staging = hash_of(run(servers, req("POST", "https://staging.test/v1/notes/1", b'{"t": 1}')))
    prod = hash_of(run(servers, req("POST", "https://prod.test/v1/notes/1", b'{"t": 1}')))
    again = hash_of(run(servers, req("POST", "https://staging.test/v1/notes/1", b'{"t": 1}')))
    text_a = hash_of(run(servers, req("POST", "https://staging.test/v1/notes/1", b"\x00a", content_type="x/y")))
    text_b = hash_of(run(servers, req("POST", "https://staging.test/v1/notes/1", b"\x00b", content_type="x/y")))
    assert staging == again
    assert len({staging, prod, text_a, text_b}) == 4


def test_an_identical_retry_matches_however_its_bytes_are_spelled(servers: ServerMap) -> None:
    url = "https://staging.test/v1/notes/1"
    form = {"text": "hi"}, {"f": ("a.txt", b"data")}
    first = httpx.Request("POST", url, data=form[0], files=form[1])
    again = httpx.Request("POST", url, data=form[0], files=form[1])  # a new random boundary
    assert first.read() != again.read()
    hashes = {
        hash_of(run(servers, req("POST", url, r.read(), content_type=r.headers["content-type"])))
        for r in (first, again)
    }
    assert len(hashes) == 1
    spaced = hash_of(run(servers, req("POST", url, b'{ "a" : 1 , "b": 2 }')))
    assert spaced == hash_of(run(servers, req("POST", url, b'{"b":2,"a":1}')))
    assert spaced != hash_of(run(servers, req("POST", url, b'{"b":2,"a":1}', content_type="text/plain")))
    assert spaced != hash_of(run(servers, req("POST", url + "?a=1", b'{"b":2}')))


def test_calls_without_http_hash_as_before() -> None:
    from policy.core.model import call_hash

    assert ToolCall("a", "mcp_stdio", "fs", "read", {"p": 1}).call_hash == call_hash("a", "fs.read", {"p": 1})
