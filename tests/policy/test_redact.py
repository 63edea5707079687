"""Redaction: configured keys anywhere in nested JSON, auth headers, and token-shaped strings."""

from __future__ import annotations

from typing import Any

import pytest

from policy.core.redact import REDACTED, is_secret_key, key_words, redact, redact_text, redaction_keys

KEYS = redaction_keys(["authorization", "token", "password", "api_key"])


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("api_key", ("api", "key")),
        ("X-Api-Key", ("x", "api", "key")),
        ("apiKey", ("api", "key")),
        ("access.token", ("access", "token")),
        ("PASSWORD", ("password",)),
    ],
)
def test_key_names_split_into_words_whatever_their_style(name: str, words: tuple[str, ...]) -> None:
    assert key_words(name) == words


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("token", True),
        ("Token", True),
        ("access_token", True),
        ("X-Auth-Token", True),
        ("githubToken", True),
        ("api_key", True),
        ("apiKey", True),
        ("OPENAI_API_KEY", True),
        ("Authorization", True),
        ("Proxy-Authorization", True),
        ("Cookie", True),
        ("set-cookie", True),
        ("x-api-key", True),
        ("password_confirm", True),
        ("max_tokens", False),
        ("tokenizer", False),
        ("path", False),
        ("key", False),
        ("passwords_checked", False),
    ],
)
def test_a_key_is_secret_when_a_configured_name_appears_among_its_words(name: str, secret: bool) -> None:
    assert is_secret_key(name, KEYS) is secret


def test_auth_headers_are_redacted_even_when_the_config_lists_no_keys() -> None:
    keys = redaction_keys([])
    assert redact({"Authorization": "Basic abc", "Cookie": "s=1", "token": "t"}, keys) == {
        "Authorization": REDACTED,
        "Cookie": REDACTED,
        "token": "t",
    }


def test_configured_keys_are_redacted_anywhere_in_nested_json() -> None:
    value = {
        "query": "fine",
        "auth": {"headers": {"Authorization": "x", "Accept": "json"}},
        "items": [{"name": "a", "apiKey": 12345}, {"name": "b", "password": ["p", "q"]}],
    }
    assert redact(value, KEYS) == {
        "query": "fine",
        "auth": {"headers": {"Authorization": REDACTED, "Accept": "json"}},
        "items": [{"name": "a", "apiKey": REDACTED}, {"name": "b", "password": REDACTED}],
    }


def test_a_secret_key_with_a_null_value_stays_null() -> None:
    assert redact({"token": None}, KEYS) == {"token": None}


def test_header_pairs_in_a_list_redact_their_value() -> None:
    assert redact({"headers": [["Authorization", "Basic dXNlcjpwYXNz"], ["Accept", "*/*"]]}, KEYS) == {
        "headers": [["Authorization", REDACTED], ["Accept", "*/*"]]
    }


GHP = "ghp_" + "A1b2C3d4E5" * 4
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer abcdefghijklmnop", f"Bearer {REDACTED}"),
        ("Authorization: Bearer abc.def-ghi_jkl", f"Authorization: Bearer {REDACTED}"),
        ("authorization: Basic dXNlcjpwYXNzd29yZA==", f"authorization: Basic {REDACTED}"),
        (f"token {GHP} here", f"token {REDACTED} here"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", REDACTED),
        ("key AKIAIOSFODNN7EXAMPLE ok", f"key {REDACTED} ok"),
        ("sk-proj-abcdefghijklmnopqrstuvwxyz012345", REDACTED),
        ("xoxb-1234567890-abcdefghij", REDACTED),
        (f"jwt={JWT}", f"jwt={REDACTED}"),
        (
            "https://db.example/x?user=bob&password=hunter2&mode=rw",
            f"https://db.example/x?user=bob&password={REDACTED}&mode=rw",
        ),
        ("https://api.example/v1?access_token=abc123&page=2", f"https://api.example/v1?access_token={REDACTED}&page=2"),
        ("postgres://bob:hunter2@db.local:5432/app", f"postgres://bob:{REDACTED}@db.local:5432/app"),
        ("--api-key=s3cr3t --verbose", f"--api-key={REDACTED} --verbose"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", REDACTED),
    ],
)
def test_token_shaped_strings_are_redacted_in_place(text: str, expected: str) -> None:
    assert redact_text(text, KEYS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "/tmp/some/file.txt",
        "Basic functionality works",
        "max_tokens=512",
        "a=b&c=d",
        "https://example.com/path?q=1",
        "ask for an sk-short key",
        "user@example.com",
    ],
)
def test_ordinary_strings_are_left_alone(text: str) -> None:
    assert redact_text(text, KEYS) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, "two"), [1, "two"]),
        ({1: "one"}, {"1": "one"}),
        (b"bytes", "b'bytes'"),
        (2.5, 2.5),
        (True, True),
    ],
)
def test_redaction_returns_json_native_values(value: Any, expected: Any) -> None:
    assert redact(value, KEYS) == expected


def test_redaction_does_not_change_its_input() -> None:
    value = {"token": "t", "nested": {"password": "p"}}
    redact(value, KEYS)
    assert value == {"token": "t", "nested": {"password": "p"}}
