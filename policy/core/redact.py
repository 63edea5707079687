"""Secret redaction for anything recorded: configured key names, auth headers and token-shaped strings.

Pure functions. `redact(value, keys)` returns a JSON-native copy in which secrets read "[REDACTED]".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Header-like names redacted whatever the configuration says.
ALWAYS_REDACTED = ("authorization", "proxy_authorization", "cookie", "set_cookie", "x_api_key", "x_auth_token")

_QUERY_SECRETS = ("password", "passwd", "pwd")

# (triggers, pattern): a pattern runs only on strings holding one of its literal triggers, which keeps
# the common case (no secret at all) to a few substring checks. Group "keep" survives the replacement.
_TOKEN_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("earer", "EARER"), r"(?P<keep>\b(?:[Bb]earer|BEARER)\s+)[A-Za-z0-9\-._~+/]{8,}=*"),
    (
        ("asic", "ASIC"),
        # After `Authorization:`, or as a whole value ("Basic functionality" is prose, not a credential).
        r"(?P<keep>(?:^(?=\w+\s+[A-Za-z0-9+/]+=*$)|[Aa]uthorization:\s*)(?:[Bb]asic|BASIC)\s+)[A-Za-z0-9+/]{8,}=*",
    ),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    (("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    (("AKIA", "ASIA"), r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    (("sk-",), r"\bsk-[A-Za-z0-9_\-]{20,}"),
    (("xox",), r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    (("eyJ",), r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    (("PRIVATE KEY",), r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    (("://",), r"(?P<keep>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]+:)[^/\s@]+(?=@)"),
)
_ANY_TRIGGER = ("=", *(t for triggers, _ in _TOKEN_RULES for t in triggers))

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")


@functools.lru_cache(maxsize=4096)
def key_words(name: str) -> tuple[str, ...]:
    """`X-Api-Key` / `apiKey` / `api_key` -> ("x", "api", "key"): the words a key name is made of."""
    snake = _SEPARATORS.sub("_", _CAMEL.sub("_", name)).lower()
    return tuple(w for w in snake.split("_") if w)


def redaction_keys(names: Iterable[str]) -> frozenset[tuple[str, ...]]:
    """Configured key names plus the always-redacted headers, as word tuples (names without words drop out)."""
    return _keys(tuple(names))


@functools.lru_cache(maxsize=32)
def _keys(names: tuple[str, ...]) -> frozenset[tuple[str, ...]]:
    return frozenset(w for w in map(key_words, (*names, *ALWAYS_REDACTED)) if w)


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str, keys: frozenset[tuple[str, ...]]) -> bool:
    """True when a configured name's words appear, in order and adjacent, among the key's words.

    `token` matches `access_token` and `X-Auth-Token` but not `max_tokens`; `api_key` matches `apiKey`.
    """
    words = key_words(name)
    for key in keys:
        n = len(key)
        if any(words[i : i + n] == key for i in range(len(words) - n + 1)):
            return True
    return False


Rules = tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]


@functools.lru_cache(maxsize=32)
def _string_rules(keys: frozenset[tuple[str, ...]]) -> Rules:
    names = sorted({"_".join(k) for k in keys} | set(_QUERY_SECRETS))
    params = "|".join(re.escape(n).replace("_", "[_-]?") for n in names)
    # `token=` also catches `access_token=`: any word-prefix before a configured name.
    query = rf"(?P<keep>(?<![A-Za-z0-9_])(?:[A-Za-z0-9]+[_-])*(?i:{params})=)[^&\s#;\"']+"
    return (("=",), re.compile(query)), *((t, re.compile(p)) for t, p in _TOKEN_RULES)


def _replace(match: re.Match[str]) -> str:
    keep = match.groupdict().get("keep")
    return REDACTED if keep is None else keep + REDACTED


def redact_text(text: str, keys: frozenset[tuple[str, ...]]) -> str:
    """Replace token-shaped substrings and `password=`-style query values in one string."""
    for trigger in _ANY_TRIGGER:
        if trigger in text:
            break
    else:
        return text
    for triggers, pattern in _string_rules(keys):
        for trigger in triggers:
            if trigger in text:
                text = pattern.sub(_replace, text)
                break
    return text


def redact(value: Any, keys: frozenset[tuple[str, ...]]) -> Any:
    """A JSON-native copy of `value` with secret keys' values and token-shaped strings redacted."""
    kind = type(value)  # exact types first: every call's arguments pass here, and the ABC checks cost more
    if kind is dict:
        return _redact_mapping(value, keys)
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, str):
        return redact_text(value, keys)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return _redact_mapping(value, keys)
    if isinstance(value, list | tuple):
        return _redact_list(value, keys)
    return redact_text(str(value), keys)


def _redact_mapping(value: Mapping[Any, Any], keys: frozenset[tuple[str, ...]]) -> dict[str, Any]:
    return {
        str(k): REDACTED if is_secret_key(str(k), keys) and v is not None else redact(v, keys) for k, v in value.items()
    }


def _redact_list(items: list[Any] | tuple[Any, ...], keys: frozenset[tuple[str, ...]]) -> list[Any]:
    # A header list like [["Authorization", "Bearer x"]] or ["Cookie", "a=b"]: the name marks the value.
    if len(items) == 2 and isinstance(items[0], str) and is_secret_key(items[0], keys):
        return [items[0], REDACTED]
    return [redact(v, keys) for v in items]


__all__ = ["ALWAYS_REDACTED", "REDACTED", "is_secret_key", "key_words", "redact", "redact_text", "redaction_keys"]
