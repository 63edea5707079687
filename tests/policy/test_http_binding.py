"""Calls that arrived over HTTP are bound to their endpoint and body: the call hash, decision-memory keys and
what an approval shows. Calls without HTTP keep the hash they always had."""

from __future__ import annotations

import dataclasses

from policy.core.model import HttpInfo, ToolCall, call_hash
from policy.gate.memory import MemoryKey
from policy.store.base import Approval

STAGING = HttpInfo("POST", "staging.example", "/v1/notes/9", 443, "https", "d1")


def call(http: HttpInfo | None, args: dict[str, object] | None = None) -> ToolCall:
    return ToolCall("claude", "openapi", "notes", "update", args or {"t": 1}, None, http)


def test_the_call_hash_covers_method_host_port_path_scheme_and_digest() -> None:
    variants = [
        STAGING,
        HttpInfo("POST", "prod.example", "/v1/notes/9", 443, "https", "d1"),
        HttpInfo("POST", "staging.example", "/v1/notes/9", 8443, "https", "d1"),
        HttpInfo("PUT", "staging.example", "/v1/notes/9", 443, "https", "d1"),
        HttpInfo("POST", "staging.example", "/v1/notes/8", 443, "https", "d1"),
        HttpInfo("POST", "staging.example", "/v1/notes/9", 443, "http", "d1"),
        HttpInfo("POST", "staging.example", "/v1/notes/9", 443, "https", "d2"),
    ]
    assert len({call(v).call_hash for v in variants}) == len(variants)
    assert (
        call(STAGING).call_hash
        == call(HttpInfo("POST", "staging.example", "/v1/notes/9", 443, "https", "d1")).call_hash
    )


def test_a_call_without_http_hashes_as_before() -> None:
    assert call(None).call_hash == call_hash("claude", "notes.update", {"t": 1})


def test_memory_keys_hold_the_endpoint_and_with_all_args_the_body_digest() -> None:
    whole, one = MemoryKey(["args"]), MemoryKey(["args.t"])
    prod = HttpInfo("POST", "prod.example", "/v1/notes/9", 443, "https", "d1")
    other_body = HttpInfo("POST", "staging.example", "/v1/notes/9", 443, "https", "d2")
    assert whole(call(STAGING)) != whole(call(prod))
    assert one(call(STAGING)) != one(call(prod))
    assert whole(call(STAGING)) != whole(call(other_body))
    assert one(call(STAGING)) == one(call(other_body))  # keyed on args.t only: the body digest is not the key
    assert whole(call(None)) == MemoryKey(["args"])(call(None))


def test_an_approval_shows_its_request_line() -> None:
    base = Approval("a1", "h", "claude", "openapi", "notes", "update", {}, "k", "r", "why", 0.0, 1.0)
    assert base.request_line is None
    shown = {"method": "POST", "scheme": "https", "host": "staging.example", "port": 8443, "path": "/v1/notes/9"}
    assert dataclasses.replace(base, http=shown).request_line == "POST https://staging.example:8443/v1/notes/9"
    default_port = shown | {"port": 443}
    assert dataclasses.replace(base, http=default_port).request_line == "POST https://staging.example/v1/notes/9"
