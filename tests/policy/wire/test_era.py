"""Which era a request is of: one rule for both adapters (they used to disagree on a `_meta` naming an older
or unknown version, and on a request whose only hint was the HTTP header)."""

from __future__ import annotations

from typing import Any

import pytest

from policy.wire import era


def call(version: Any = None, *, method: str = "tools/call", params: Any = None) -> dict[str, Any]:
    body = {"name": "t"} if params is None else params
    if version is not None:
        body = {**body, "_meta": {era.META_PROTOCOL_VERSION: version}}
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": body}


@pytest.mark.parametrize(
    ("msg", "modern"),
    [
        (call("2026-07-28"), True),
        (call("2025-11-25"), False),  # mcpwrap used to call any `_meta` version the 2026 era
        (call("junk"), False),
        (call(20260728), False),
        (call(), False),
        (call(params={"name": "t", "_meta": "2026-07-28"}), False),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ["2026-07-28"]}, False),
    ],
)
def test_a_request_is_of_the_2026_era_exactly_when_its_meta_names_a_2026_version(
    msg: dict[str, Any], modern: bool
) -> None:
    assert era.is_modern_request(msg) is modern


def test_the_version_header_alone_does_not_make_a_request_2026_era() -> None:
    # The proxy used to read the era off `Mcp-Protocol-Version` too: the same body then got another refusal
    # shape over HTTP than over stdio. The header is still what the trace records for a legacy request.
    msg = call()
    assert not era.is_modern_request(msg)
    assert era.protocol_version(msg, {era.VERSION_HEADER: "2026-07-28"}) == "2026-07-28"


def test_the_recorded_version_comes_from_meta_then_initialize_then_the_header() -> None:
    headers = {era.VERSION_HEADER: "2025-06-18"}
    assert era.protocol_version(call("2026-07-28"), headers) == "2026-07-28"
    init = call(method="initialize", params={"protocolVersion": "2025-11-25"})
    assert era.protocol_version(init, headers) == "2025-11-25"
    assert era.protocol_version(call(), headers) == "2025-06-18"
    assert era.protocol_version(call()) is None
