"""JSON-RPC helpers: parsing, ids as keys, era detection, responses of either era."""

from __future__ import annotations

import pytest

from policy.wire import jsonrpc


@pytest.mark.parametrize(
    ("frame", "message"),
    [(b"{", "not JSON"), (b"42", "not int"), (b'"x"', "not str"), (b"\xff", "not JSON")],
)
def test_frames_that_are_not_messages_are_refused_precisely(frame: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jsonrpc.parse(frame)


def test_ids_that_look_alike_stay_apart_as_keys() -> None:
    keys = {jsonrpc.id_key(i) for i in (1, "1", 0, None, 2**80, "a", 1.0, True, "None")}
    assert len(keys) == 9


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (b'{"jsonrpc":"2.0","id":null,"method":"tools/call"}', "must not be null"),
        (b'{"jsonrpc":"2.0","id":1,"method":""}', '"method" must be a non-empty string'),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":3}', '"params" must be an object or an array'),
        (b'{"jsonrpc":"2.0","result":{}}', "neither a request"),
        (b'{"jsonrpc":"2.0","id":1,"result":{},"error":{}}', "neither a request"),
    ],
)
def test_messages_both_adapters_once_read_differently_are_invalid_for_both(frame: bytes, why: str) -> None:
    # The proxy's own parser took these (a null-id request, an empty method, scalar params, a response
    # without an id); mcpwrap refused them. One rule now: policy.wire.messages.parse_message uses `invalid`.
    from policy.wire.messages import parse_message

    assert why in (jsonrpc.invalid(jsonrpc.parse(frame)) or "")
    with pytest.raises(ValueError, match=why.replace('"', ".")):
        parse_message(jsonrpc.parse(frame))


def test_responses_json_cannot_carry_become_errors_for_their_ids() -> None:
    one = {"jsonrpc": "2.0", "id": 4, "result": {"x": float("nan")}}
    assert jsonrpc.undeliverable(one, "why") == jsonrpc.error(4, jsonrpc.INTERNAL_ERROR, "why")
    batch = [one, {"jsonrpc": "2.0", "id": float("nan"), "result": {}}, {"jsonrpc": "2.0", "method": "ping"}]
    assert jsonrpc.undeliverable(batch, "why") == [
        jsonrpc.error(4, jsonrpc.INTERNAL_ERROR, "why"),
        jsonrpc.error(None, jsonrpc.INTERNAL_ERROR, "why"),
    ]
    assert jsonrpc.undeliverable({"jsonrpc": "2.0", "method": "ping"}, "why") is None


def test_a_stateless_result_gets_result_type_and_a_legacy_one_does_not() -> None:
    assert jsonrpc.result(1, {}, modern=True)["result"] == {"resultType": "complete"}
    assert jsonrpc.result(1, {})["result"] == {}


def test_the_server_name_comes_from_server_info_or_the_meta_stamp() -> None:
    assert jsonrpc.server_name_from_result({"serverInfo": {"name": "a"}}) == "a"
    assert jsonrpc.server_name_from_result({"_meta": {jsonrpc.META_SERVER_INFO: {"name": "b"}}}) == "b"
    assert jsonrpc.server_name_from_result({"serverInfo": {"name": ""}}) is None
    assert jsonrpc.server_name_from_result([]) is None


def test_dump_refuses_numbers_json_cannot_carry() -> None:
    with pytest.raises(ValueError, match="Out of range"):
        jsonrpc.dump({"x": float("inf")})
