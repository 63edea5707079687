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
    keys = {jsonrpc.id_key(i) for i in (1, "1", 0, None, 2**80, "a")}
    assert len(keys) == 6


def test_the_stateless_era_is_recognised_by_the_protocol_version_in_meta() -> None:
    modern = {"params": {"_meta": {jsonrpc.META_PROTOCOL_VERSION: "2026-07-28"}}}
    assert jsonrpc.protocol_version(modern) == "2026-07-28"
    assert jsonrpc.protocol_version({"params": {"name": "x"}}) is None
    assert jsonrpc.protocol_version({"params": "junk"}) is None


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
