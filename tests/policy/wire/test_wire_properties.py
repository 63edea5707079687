"""Hypothesis: hostile variants of the wire rules. A body holding NaN or an infinity anywhere, in any UTF
encoding, is refused, and the same words inside strings never are; the era never follows a header."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.wire import era
from policy.wire.messages import parse_body

WORDS = st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "Inf", "N", "a"]) | st.text(max_size=6)
FINITE = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    FINITE | WORDS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORDS, inner, max_size=3),
    max_leaves=10,
)
ENCODINGS = st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])


def request(arguments: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t", "arguments": arguments}}


def plant(value: Any, bad: float, path: list[int]) -> Any:
    """`value` with `bad` put somewhere inside it (the path picks where), or wrapping it."""
    if path and isinstance(value, dict) and value:
        key = list(value)[path[0] % len(value)]
        return {**value, key: plant(value[key], bad, path[1:])}
    if path and isinstance(value, list) and value:
        i = path[0] % len(value)
        return [*value[:i], plant(value[i], bad, path[1:]), *value[i + 1 :]]
    return [value, bad]


@settings(max_examples=300, deadline=None)
@given(
    args=JSON,
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
    path=st.lists(st.integers(0, 5), max_size=4),
    encoding=ENCODINGS,
)
def test_a_non_finite_number_anywhere_in_any_encoding_is_refused(
    args: Any, bad: float, path: list[int], encoding: str
) -> None:
    raw = json.dumps(request(plant(args, bad, path))).encode(encoding)
    with pytest.raises(ValueError, match="not a JSON number"):
        parse_body(json.loads(raw), raw)


@settings(max_examples=300, deadline=None)
@given(args=JSON, encoding=ENCODINGS)
def test_finite_bodies_pass_whatever_words_they_hold(args: Any, encoding: str) -> None:
    raw = json.dumps(request(args)).encode(encoding)
    (msg,), batch = parse_body(json.loads(raw), raw)
    assert not batch
    assert msg.params["arguments"] == args


@settings(max_examples=300, deadline=None)
@given(meta=st.none() | JSON, header=st.none() | WORDS | st.just("2026-07-28"))
def test_the_era_follows_the_meta_version_only(meta: Any, header: str | None) -> None:
    params: dict[str, Any] = {"name": "t"}
    if meta is not None:
        params["_meta"] = {era.META_PROTOCOL_VERSION: meta}
    msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    assert era.is_modern_request(msg) is (meta == "2026-07-28")
    headers = {} if header is None else {era.VERSION_HEADER: header}
    recorded = era.protocol_version(msg, headers)
    assert recorded == (meta if isinstance(meta, str) else header)
