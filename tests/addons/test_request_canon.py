"""The canonical request line: decoded paths that every upstream routes the same way, or a refusal; method
overrides only where the server entry opts in."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.request_canon import PLAIN, RequestOptions, canonical_path, method_of

SAFE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and "/" not in s and "\\" not in s and "%" not in s
)


@pytest.mark.parametrize(
    ("target", "path", "segments", "query"),
    [
        ("/v1/notes/1?x=1", "/v1/notes/1", ("v1", "notes", "1"), "x=1"),
        ("/v1/notes/a%20b/", "/v1/notes/a b", ("v1", "notes", "a b"), ""),
        ("/", "/", (), ""),
        ("/caf%C3%A9", "/café", ("café",), ""),
    ],
)
def test_paths_are_decoded_once_and_split(target: str, path: str, segments: tuple[str, ...], query: str) -> None:
    got = canonical_path(target)
    assert (got.path, got.segments, got.query) == (path, segments, query)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/notes/1%2Fpurge",  # Starlette and Flask route on the decoded '/': notes/purge
        "/v1/notes/1%2fpurge",
        "/v1/notes/1%5Cpurge",
        "/v1/notes/1\\purge",
        "/v1/notes/%00",
        "/v1/notes/../admin",
        "/v1/notes/./1",
        "/v1/notes/%2e%2e/admin",
        "/v1/notes/.%2E/admin",
        "/v1/notes/%2e/1",
        "/v1//notes",
        "/v1/notes/1;purge",
        "/v1/notes/%2541",  # decoded once more by a lenient upstream
        "/v1/notes/%zz",
        "/v1/notes/%",
        "/v1/%6Eotes/1",  # an unreserved character needs no encoding: no second spelling of a route
        "/v1/notes/%ff",
        "/v1/notes/%0a",
        "/v1/notes/caf\u00e9",
        "/v1/notes/a b",
        "/v1/notes/1#frag",
        "v1/notes",
        "*",
    ],
)
def test_paths_upstreams_could_route_differently_are_refused(target: str) -> None:
    with pytest.raises(ValueError, match="path"):
        canonical_path(target)


@given(st.lists(SAFE, min_size=1, max_size=6))
def test_any_path_of_plain_segments_round_trips(segments: list[str]) -> None:
    got = canonical_path("/" + "/".join(quote(s, safe="") for s in segments))
    assert got.segments == tuple(segments)


HOSTILE = st.sampled_from(
    ["%2F", "%2f", "%5C", "%5c", "%00", "\\", "..", ".", "%2e%2e", "%2E", ".%2e", "%2e.", ";", ""]
)


@given(
    st.lists(SAFE.map(lambda s: quote(s, safe="")), min_size=0, max_size=4), HOSTILE, st.integers(0, 4), st.booleans()
)
def test_a_hostile_spelling_anywhere_in_the_path_is_refused(
    segments: list[str], hostile: str, at: int, whole: bool
) -> None:
    at = min(at, len(segments))
    if whole or hostile in ("..", ".", "%2e%2e", "%2E", ".%2e", "%2e.", ""):
        parts = [*segments[:at], hostile, *segments[at:], "x"]
    else:
        parts = [*segments[:at], f"a{hostile}b", *segments[at:]]
    with pytest.raises(ValueError, match=r"path|segment"):
        canonical_path("/" + "/".join(parts))


@given(st.text(st.characters(codec="ascii"), max_size=30))
def test_whatever_is_accepted_routes_the_same_decoded_or_not(raw: str) -> None:
    """Accepted paths have one meaning: decoding before or after splitting gives the same segments, and no
    segment resolves as a dot segment."""
    try:
        got = canonical_path("/" + raw)
    except ValueError:
        return
    decoded = unquote("/" + raw.split("?", 1)[0])
    assert [s for s in decoded.split("/") if s] == list(got.segments)
    assert all(s not in (".", "..") and "/" not in s and "\\" not in s and "\x00" not in s for s in got.segments)


def test_method_overrides_are_refused_unless_the_server_opts_in() -> None:
    header = {"x-http-method-override": "DELETE"}
    with pytest.raises(ValueError, match="method_override: true"):
        method_of("POST", header, {}, PLAIN)
    with pytest.raises(ValueError, match="method_override: true"):
        method_of("POST", {}, {"_method": "delete"}, PLAIN)
    opted = RequestOptions(method_override=True)
    assert method_of("POST", header, {}, opted) == "DELETE"
    assert method_of("POST", {"x-method-override": "put"}, {"_method": "PUT"}, opted) == "PUT"
    assert method_of("GET", {}, {}, PLAIN) == "GET"


def test_a_server_can_name_the_override_spellings_its_upstream_honours() -> None:
    express = RequestOptions(method_override=["x-http-method-override", "_method"])
    assert method_of("POST", {"x-http-method-override": "DELETE"}, {}, express) == "DELETE"
    assert method_of("POST", {}, {"_method": "DELETE"}, express) == "DELETE"
    # Express ignores X-HTTP-Method: judging it as DELETE would judge a method that never runs.
    with pytest.raises(ValueError, match="x-http-method\\)"):
        method_of("POST", {"x-http-method": "DELETE"}, {}, express)


def test_the_config_accepts_the_override_spellings() -> None:
    from policy import load_config_text

    text = "version: 1\nservers:\n  a: {base_url: 'https://a.test', method_override: [_method], precedence: body}\n"
    spec = load_config_text(text, "c.yaml").config.servers["a"]
    assert (spec.method_override, spec.precedence) == (["_method"], "body")


@pytest.mark.parametrize(
    ("method", "headers", "fields", "message"),
    [
        ("POST", {"x-http-method": "DELETE, PUT"}, {}, "several override methods"),
        ("POST", {"x-http-method": "DELETE"}, {"_method": "PUT"}, "several override methods"),
        ("GET", {"x-http-method-override": "DELETE"}, {}, "POST only"),
        ("POST", {"x-http-method-override": "DE LETE"}, {}, "not a method name"),
        ("POST", {}, {"_method": ["PUT", "DELETE"]}, "several override methods"),
    ],
)
def test_ambiguous_overrides_are_refused_even_when_allowed(
    method: str, headers: dict[str, str], fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        method_of(method, headers, fields, RequestOptions(method_override=True))
