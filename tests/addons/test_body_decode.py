"""Bodies are read as upstream servers read them (the MCP SDK's `json.loads(bytes)`, Starlette, Flask,
body-parser), and refused where those readings could differ."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.body_decode import MediaType, decode_json, decode_text, media_type
from addons.request_args import body_fields, fields_of, merge, pairs_of, settle
from addons.request_canon import PLAIN, RequestOptions, canonical_path

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(JSON_VALUES, st.sampled_from(ENCODINGS), st.sampled_from(["", " ", "\n\t"]))
def test_every_json_encoding_reads_as_python_json_reads_it(value: Any, encoding: str, space: str) -> None:
    body = (space + json.dumps(value, ensure_ascii=False) + space).encode(encoding)
    assert decode_json(body) == json.loads(body)


def test_escaped_keys_are_just_json() -> None:
    assert decode_json(b'{"\\u006asonrpc": "2.0"}') == {"jsonrpc": "2.0"}


@pytest.mark.parametrize(
    ("body", "charset", "message"),
    [
        ('{"a": 1}'.encode("utf-16-le"), "utf-8", "says charset utf-8"),
        (b'{"a": 1}', "utf-16", "says charset utf-16"),
        (b'{"a": 1}', "iso-8859-1", "must be UTF-8"),
        (b"{nope", None, "not JSON"),
        (b"\xff\xfe\x00", None, "not JSON"),
    ],
)
def test_bodies_whose_encoding_is_in_doubt_are_refused(body: bytes, charset: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_json(body, charset)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", MediaType("application/json")),
        ("Application/JSON; charset=UTF-8", MediaType("application/json", "utf-8")),
        ("application/json, application/json", MediaType("application/json")),
        ('text/plain; charset="utf-16"', MediaType("text/plain", "utf-16")),
        (None, MediaType("")),
    ],
)
def test_media_types(header: str | None, expected: MediaType) -> None:
    assert media_type(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "application/json, text/plain",
        "text/plain, application/json",
        "application/json;charset=utf-8, application/json;charset=utf-16",
        "json",
    ],
)
def test_content_types_that_disagree_are_refused(header: str) -> None:
    with pytest.raises(ValueError, match=r"content types|media type"):
        media_type(header)


def test_json_x_is_not_json() -> None:
    assert not media_type("application/json-x").is_json
    assert media_type("application/problem+json").is_json


@pytest.mark.parametrize(
    ("body", "ctype", "fields"),
    [
        (b'{"id": "1", "purge": true}', "text/plain", {"id": "1", "purge": True}),
        (b'{"id": "1", "purge": true}', None, {"id": "1", "purge": True}),
        (b'{"id": "1"}', "application/octet-stream", {"id": "1"}),
        ('{"q": "a"}'.encode("utf-32"), "text/plain; charset=utf-8", {"q": "a"}),  # json.loads(bytes) reads it
        ('{"q": "a"}'.encode("utf-16-be"), "application/x-custom; charset=latin-1", {"q": "a"}),
        (b"hello", "text/plain", {"body": "hello"}),
        ("caf\u00e9".encode("latin-1"), "text/plain; charset=iso-8859-1", {"body": "caf\u00e9"}),
        (b"name=rex&tag=a", "application/x-www-form-urlencoded", {"name": "rex", "tag": "a"}),
        (b"\x00\x01\x02", "application/octet-stream", {"body_size": 3, "body_sha256": (
            "ae4b3280e56e2faf83f414a6e3dabe9d5fbe18976544c05fed121accb85b53fc")}),
        (b"\xff\xfe\xfd", "text/plain", {"body_size": 3, "body_sha256": (
            "b0d5e9bd3d6f7bca5d1a7d7e8ee3fa12a4e9d1d8c6d9b8ebfa8ba0ca9d6f4a31")}),
    ],
)  # fmt: skip
def test_bodies_are_judged_by_their_content(body: bytes, ctype: str | None, fields: dict[str, Any]) -> None:
    got = body_fields(body, media_type(ctype))
    if "body_sha256" in fields:
        import hashlib

        fields = {**fields, "body_sha256": hashlib.sha256(body).hexdigest()}
    assert got == fields


def test_a_form_holding_json_is_refused() -> None:
    with pytest.raises(ValueError, match="declared a form but holds JSON"):
        body_fields(b'{"a": 1}', media_type("application/x-www-form-urlencoded"))


def test_text_decoding_follows_bom_then_charset() -> None:
    assert decode_text("\ufeffhi".encode("utf-16-le"), None) == "hi"
    assert decode_text("hi".encode("utf-16-be"), "utf-16-be") == "hi"
    with pytest.raises(ValueError, match="byte order mark"):
        decode_text("\ufeffhi".encode("utf-16-le"), "utf-8")


def test_repeated_keys_are_refused_unless_declared_arrays() -> None:
    fields = fields_of(pairs_of("a=1&a=2&b=3", "query"))
    assert settle(dict(fields), {"a"}, "query") == {"a": ["1", "2"], "b": "3"}
    with pytest.raises(ValueError, match="repeats 'a'"):
        settle(dict(fields), (), "query")


@given(st.text(min_size=1, max_size=5), st.text(max_size=5), st.text(max_size=5))
def test_a_key_in_both_query_and_body_is_refused_unless_precedence_is_declared(key: str, q: str, b: str) -> None:
    with pytest.raises(ValueError, match="both the query and the body"):
        merge({}, {key: q}, {key: b}, PLAIN)
    assert merge({}, {key: q}, {key: b}, RequestOptions(precedence="query")) == {key: q}
    assert merge({}, {key: q}, {key: b}, RequestOptions(precedence="body")) == {key: b}


def test_raw_non_ascii_in_a_form_or_query_is_refused() -> None:
    with pytest.raises(ValueError, match="raw non-ASCII"):
        body_fields("name=caf\u00e9".encode(), media_type("application/x-www-form-urlencoded"))
    with pytest.raises(ValueError, match="raw non-ASCII"):
        canonical_path("/a?name=caf\u00e9")


def test_query_escapes_must_be_utf8() -> None:
    with pytest.raises(ValueError, match="not UTF-8"):
        pairs_of("a=%ff", "query")


NON_JSON_TYPES = [
    None, "text/plain", "text/plain; charset=utf-8", "text/plain; charset=latin-1",
    "application/octet-stream", "application/json-x", "application/jsonp", "x/y; charset=utf-16",
]  # fmt: skip


@given(
    st.dictionaries(st.text(max_size=5), JSON_VALUES, min_size=1, max_size=4),
    st.sampled_from(ENCODINGS),
    st.sampled_from(NON_JSON_TYPES),
)
def test_a_json_object_under_any_other_type_is_judged_as_starlette_reads_it(
    value: dict[str, Any], encoding: str, ctype: str | None
) -> None:
    """Starlette's `request.json()` is `json.loads(bytes)` whatever the type: the judged fields are those."""
    body = json.dumps(value, ensure_ascii=False).encode(encoding)
    assert body_fields(body, media_type(ctype)) == json.loads(body)


@pytest.mark.parametrize("number", [2**53, -(2**53), 12345678901234567890])
def test_an_integer_javascript_cannot_hold_is_refused(number: int) -> None:
    for body in (json.dumps({"a": [{"id": number}]}).encode(), json.dumps({"id": number}).encode("utf-16")):
        with pytest.raises(ValueError, match="beyond 2"):
            decode_json(body)
    assert decode_json(json.dumps({"id": 2**53 - 1, "s": "12345678901234567890"}).encode())["id"] == 2**53 - 1
    with pytest.raises(ValueError, match="beyond 2"):  # JSON sent as text is still JSON to Starlette: refused
        body_fields(json.dumps({"id": number}).encode(), media_type("text/plain"))
