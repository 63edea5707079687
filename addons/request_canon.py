"""The canonical form of an HTTP request line: the decoded path the upstream routes on, and the method it
runs after override headers. What upstream frameworks would read differently is refused (ValueError).

Starlette and Flask/Werkzeug decode `%2F` before routing, Express does not; `..` is resolved by some
clients, proxies and servers and not by others; Java servers strip `;params` from segments. So a path
with an encoded `/` or `\\`, a NUL, a control character, a dot segment or an empty segment (raw or
encoded), a `;`, or a needlessly encoded unreserved character is refused: every remaining spelling means
one path to every upstream.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import unquote_to_bytes

from policy.core.model import readonly

Precedence = Literal["query", "body"]
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
OVERRIDE_FIELD = "_method"
_TOKEN = re.compile(r"[A-Za-z]{1,20}")
# RFC 3986 pchar minus "%" (handled apart) and ";" (matrix parameters, stripped by some servers).
_RAW_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/%]*")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_FORBIDDEN_DECODED = frozenset(b"/\\\x00")
_CACHED_LENGTH = 256  # bounds the cache's memory: 4096 entries of at most this many characters


@readonly
class RequestOptions:
    """What a server entry declares about its upstream's parse (`servers.X.method_override`,
    `servers.X.precedence`): absent, overrides and query/body collisions are refused."""

    method_override: bool | Sequence[str] = False  # True: every spelling; a list: the ones the upstream honours
    precedence: Precedence | None = None


PLAIN = RequestOptions()


@readonly
class CanonicalPath:
    """A request target split and decoded: `path` is decoded, `segments` its parts, `query` still raw."""

    path: str
    segments: tuple[str, ...]
    query: str


def canonical_path(target: str) -> CanonicalPath:
    """`/v1/notes/a%20b?x=1` -> CanonicalPath("/v1/notes/a b", ("v1", "notes", "a b"), "x=1").

    Raises ValueError for a target that upstreams could route differently (see the module docstring).
    A trailing slash is dropped (frameworks redirect or strip it).
    """
    # Agents call the same endpoints again and again and the result is immutable: short targets are cached.
    return _cached(target) if len(target) <= _CACHED_LENGTH else _canonical(target)


def _canonical(target: str) -> CanonicalPath:
    raw, _, query = target.partition("?")
    if not query.isascii():
        # Starlette reads raw query bytes as latin-1, Werkzeug and Node as UTF-8: only escapes mean one thing.
        raise ValueError("the query has raw non-ASCII characters: percent-encode them")
    if not raw.startswith("/"):
        raise ValueError(f"the request path {raw[:80]!r} must start with '/'")
    if _RAW_OK.fullmatch(raw) is None:
        bad = next(ch for ch in raw if _RAW_OK.fullmatch(ch) is None)
        raise ValueError(f"the request path has a character upstreams read differently: {bad!r}")
    parts = raw[1:].split("/")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if parts == [""]:
        return CanonicalPath("/", (), query)
    segments: list[str] = []
    for part in parts:
        seg = _decode_segment(part) if "%" in part else part
        if seg in ("", ".", ".."):
            raise ValueError(
                f"the request path has an empty or dot segment ({part!r}): upstreams resolve it differently"
            )
        segments.append(seg)
    return CanonicalPath("/" + "/".join(segments), tuple(segments), query)


_cached = functools.lru_cache(maxsize=4096)(_canonical)


def _decode_segment(part: str) -> str:
    if _ESCAPE.search(part):
        raise ValueError(f"the path segment {part!r} has a '%' that is not a percent-escape")
    data = unquote_to_bytes(part)
    for i in range(len(part) - 2):
        if part[i] == "%":
            byte = int(part[i + 1 : i + 3], 16)
            if byte in _FORBIDDEN_DECODED:
                raise ValueError(f"the path segment {part!r} encodes {chr(byte)!r}: upstreams route on it differently")
            if byte in _UNRESERVED:
                raise ValueError(f"the path segment {part!r} encodes {chr(byte)!r}, which needs no encoding")
    try:
        seg = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"the path segment {part!r} does not decode to UTF-8") from None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in seg):
        raise ValueError(f"the path segment {part!r} encodes a control character")
    if re.search(r"%[0-9A-Fa-f]{2}", seg):
        raise ValueError(f"the path segment {part!r} is encoded twice: an upstream decoding again sees another path")
    return seg


def method_of(method: str, headers: Mapping[str, str], fields: Mapping[str, object], options: RequestOptions) -> str:
    """The method the upstream runs: `method`, or with `options.method_override` the one an override header
    or `_method` field names (POST only). Raises ValueError for an override the entry does not allow,
    several that disagree, or one that is not a method name. `fields`: the query and body fields."""
    named: set[str] = set()
    spellings: set[str] = set()
    for header in OVERRIDE_HEADERS:
        value = headers.get(header)
        if value is not None:
            spellings.add(header)
            named.update(v.strip().upper() for v in value.split(","))
    field_value = fields.get(OVERRIDE_FIELD)
    if field_value is not None:
        spellings.add(OVERRIDE_FIELD)
        values = field_value if isinstance(field_value, list) else [field_value]
        named.update(str(v).strip().upper() for v in values)
    if not named:
        return method
    allowed = options.method_override
    if allowed is not True and not spellings <= {s.lower() for s in allowed or ()}:
        # An override the upstream ignores would be judged as a method it never runs: refused too.
        raise ValueError(
            f"the request overrides its method ({', '.join(sorted(spellings))}) and this server does not declare "
            "method_override: true (or a list naming these spellings)"
        )
    if method != "POST":
        raise ValueError(f"a method override is honoured on POST only, not on {method}")
    if len(named) != 1:
        raise ValueError(f"the request names several override methods: {sorted(named)}")
    wanted = named.pop()
    if _TOKEN.fullmatch(wanted) is None:
        raise ValueError(f"the override method {wanted!r} is not a method name")
    return wanted
