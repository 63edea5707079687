"""MCP JSON-RPC bodies of both eras parse (one validation for both adapters), headers are checked against the
body, tools/list results filter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy.wire import era
from policy.wire.headers import check_routing_headers, decode_header_value
from policy.wire.messages import RpcMessage, filter_tools, looks_like_jsonrpc, tool_call_of
from policy.wire.messages import parse_body as parse_value

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def parse_body(raw: bytes) -> tuple[list[RpcMessage], bool]:
    """What the HTTP adapter does: decode the bytes, then hand the value (and the bytes) to the wire module."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    return parse_value(value, raw)


def protocol_version_of(msg: RpcMessage, headers: dict[str, str]) -> str | None:
    return era.protocol_version(msg.raw, headers)


def test_a_modern_tools_call_yields_name_arguments_and_version() -> None:
    msgs, batch = parse_body(
        body(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"x": 1}, "_meta": MODERN_META},
            }
        )
    )
    assert not batch
    (msg,) = msgs
    assert msg.is_request
    assert msg.id == 0
    assert tool_call_of(msg) == ("echo", {"x": 1})
    assert protocol_version_of(msg, {}) == "2026-07-28"


def test_legacy_version_comes_from_initialize_or_the_header() -> None:
    (init,), _ = parse_body(
        body({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}})
    )
    assert protocol_version_of(init, {}) == "2025-11-25"
    (call,), _ = parse_body(body({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "t"}}))
    assert protocol_version_of(call, {"mcp-protocol-version": "2025-06-18"}) == "2025-06-18"
    assert tool_call_of(call) == ("t", {})


def test_a_batch_yields_every_element_and_tells_notifications_apart() -> None:
    msgs, batch = parse_body(
        body(
            [
                {"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 3, "result": {}},
            ]
        )
    )
    assert batch
    assert [m.is_request for m in msgs] == [True, False, False]
    assert msgs[2].is_response


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "empty JSON-RPC batch"),
        (b'{"id": 1, "method": "x"}', '"jsonrpc" must be "2.0"'),
        (b'{"jsonrpc": "2.0", "id": 1.5, "method": "x"}', '"id" must be'),
        (b'{"jsonrpc": "2.0", "id": true, "method": "x"}', '"id" must be'),
        (b'{"jsonrpc": "2.0", "method": 3}', '"method" must be a non-empty string'),
        (b'{"jsonrpc": "2.0", "id": 1}', "neither a request"),
        (b'[{"jsonrpc": "2.0", "method": "a"}, 5]', "batch element 1"),
    ],
)
def test_bodies_that_are_not_json_rpc_are_refused_precisely(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError) as err:  # noqa: PT011 - the message is checked below, verbatim
        parse_body(raw)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "params",
    [{}, {"name": ""}, {"name": 5}, {"name": "t", "arguments": [1]}],
)
def test_malformed_tool_calls_are_refused(params: dict[str, Any]) -> None:
    (msg,), _ = parse_body(body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
    with pytest.raises(ValueError, match="tools/call"):
        tool_call_of(msg)


def test_cheap_precheck_recognises_json_rpc() -> None:
    assert looks_like_jsonrpc(b' {"jsonrpc":"2.0"}')
    assert looks_like_jsonrpc(b'[{"jsonrpc":"2.0"}]')
    assert not looks_like_jsonrpc(b'{"name": "x"}')
    assert not looks_like_jsonrpc(b"jsonrpc")


CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_file", "_meta": MODERN_META}}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"mcp-method": "tools/call"},
        {"mcp-method": "tools/call", "mcp-name": "delete_file"},
        {"mcp-name": "=?base64?ZGVsZXRlX2ZpbGU=?="},
    ],
)
def test_headers_that_agree_with_the_body_pass(headers: dict[str, str]) -> None:
    msgs, _ = parse_body(body(CALL))
    check_routing_headers(msgs, headers)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"mcp-method": "tools/list"}, "Mcp-Method header 'tools/list'"),
        ({"mcp-method": "tools/call", "mcp-name": "read_file"}, "Mcp-Name header 'read_file'"),
        ({"mcp-name": "=?base64?!!!?="}, "Mcp-Name header"),
    ],
)
def test_a_header_that_disagrees_with_the_body_is_refused(headers: dict[str, str], message: str) -> None:
    msgs, _ = parse_body(body(CALL))
    with pytest.raises(ValueError, match="does not match") as err:
        check_routing_headers(msgs, headers)
    assert message in str(err.value)


def test_an_mcp_name_header_on_a_method_without_a_name_is_refused() -> None:
    msgs, _ = parse_body(body({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
    with pytest.raises(ValueError, match="Mcp-Name"):
        check_routing_headers(msgs, {"mcp-name": "x"})


def test_non_ascii_names_decode_from_the_base64_form() -> None:
    assert decode_header_value("=?base64?w6lsw6h2ZQ==?=") == "élève"
    assert decode_header_value("plain") == "plain"


def test_tools_list_filtering_removes_only_rejected_tools() -> None:
    result = {"tools": [{"name": "a"}, {"name": "b"}], "nextCursor": "c"}
    filtered, removed = filter_tools(result, lambda t: t["name"] != "b")
    assert filtered == {"tools": [{"name": "a"}], "nextCursor": "c"}
    assert removed == 1
    assert filter_tools(result, lambda t: True) == (result, 0)
    assert filter_tools({"x": 1}, lambda t: False) == ({"x": 1}, 0)


@pytest.mark.parametrize("spelling", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-32-be"])
def test_a_body_holding_nan_or_an_infinity_is_refused_in_any_encoding(spelling: str, encoding: str) -> None:
    # mcpwrap could never forward one (its encoder refuses them) while the proxy judged and passed it on: a
    # JavaScript server's JSON.parse does not read what Python judged. Both refuse it now.
    text = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"n":' + spelling + "}}}"
    raw = text.encode(encoding)
    with pytest.raises(ValueError, match="not a JSON number"):
        parse_value(json.loads(raw), raw)


def test_the_words_nan_and_infinity_inside_strings_are_fine() -> None:
    raw = body(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "NaN", "arguments": {"Inf": 1.5}}}
    )
    (msg,), _ = parse_value(json.loads(raw), raw)
    assert tool_call_of(msg) == ("NaN", {"Inf": 1.5})


@pytest.mark.parametrize(
    ("version_header", "meta_version", "refused"),
    [
        ("2026-07-28", "2026-07-28", False),
        ("2025-11-25", None, False),  # a 2025-era client: the header, no `_meta`
        ("2026-07-28", None, False),  # no version in the body to disagree with (the era is the body's: 2025)
        ("2025-11-25", "2026-07-28", True),  # the SDK's server would serve the 2025 era what was judged as 2026
        ("2026-07-28", "2025-11-25", True),
    ],
)
def test_a_version_header_that_disagrees_with_the_body_meta_is_refused(
    version_header: str, meta_version: str | None, refused: bool
) -> None:
    params: dict[str, Any] = {"name": "t"}
    if meta_version is not None:
        params["_meta"] = {era.META_PROTOCOL_VERSION: meta_version}
    msgs, _ = parse_body(body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
    headers = {era.VERSION_HEADER: version_header}
    if refused:
        with pytest.raises(ValueError, match="Mcp-Protocol-Version header"):
            check_routing_headers(msgs, headers)
    else:
        check_routing_headers(msgs, headers)
