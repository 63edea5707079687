"""Request bodies read the way upstream servers read them: the media type from one or more Content-Type
headers, the text encoding from BOM, charset and RFC 8259's detection, and JSON parsed from that text.

Python's `json.loads(bytes)` (Starlette's `request.json()`, Flask's `get_json()`, the MCP Python SDK)
detects UTF-8/16/32 with or without a BOM and ignores the charset parameter; body-parser (Express)
honours the charset. Where these readings could differ, the body is refused, never guessed at.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from policy.core.model import parse_json, readonly

# Codecs (by their `codecs` name) -> the family json.detect_encoding reports; latin-1 is for text only.
_UTF = {"utf-8": "utf-8", "ascii": "utf-8", "utf-16": "utf-16", "utf-16-le": "utf-16", "utf-16-be": "utf-16"}
_UTF |= {"utf-32": "utf-32", "utf-32-le": "utf-32", "utf-32-be": "utf-32"}
_TEXT = {**_UTF, "iso8859-1": "latin-1", "latin-1": "latin-1"}


def _codec(charset: str) -> str | None:
    """`UTF8`, `utf_16BE`, `latin1` -> the codec's canonical name; None for one Python does not know."""
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


class UnsafeNumber(ValueError):
    """JSON that parses, but holds a number upstreams read differently: refused, never read as text."""


_SAFE_INTEGER = 2**53 - 1
_LONG_NUMBER = re.compile(rb"\d{16}")  # only a body with a 16-digit run can hold an unsafe integer


@readonly
class MediaType:
    """A Content-Type reduced to what decoding needs: `type/subtype` (lower case) and its charset."""

    essence: str
    charset: str | None = None
    boundary: str | None = None  # of multipart types

    @property
    def is_json(self) -> bool:
        return self.essence == "application/json" or (
            self.essence.startswith("application/") and self.essence.endswith("+json")
        )

    @property
    def is_form(self) -> bool:
        return self.essence == "application/x-www-form-urlencoded"

    @property
    def is_multipart_form(self) -> bool:
        return self.essence == "multipart/form-data"

    @property
    def is_text(self) -> bool:
        return self.essence.startswith("text/")


NO_TYPE = MediaType("")


def _split_list(value: str) -> list[str]:
    """Split a header value at commas outside quoted strings (a repeated header arrives joined by ", ")."""
    parts: list[str] = []
    start, quoted, i = 0, False, 0
    while i < len(value):
        ch = value[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and quoted:
            i += 1
        elif ch == "," and not quoted:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_one(value: str) -> MediaType:
    """`application/json; charset=UTF-8` -> MediaType("application/json", "utf-8"). Raises ValueError."""
    essence, *params = value.split(";")
    essence = essence.strip().lower()
    kind, slash, sub = essence.partition("/")
    if not slash or not kind or not sub or any(c in essence for c in ' "\t'):
        raise ValueError(f"Content-Type {value!r} is not a media type")
    found: dict[str, str] = {}
    for param in params:
        name, eq, val = param.strip().partition("=")
        name = name.strip().lower()
        if not eq or name not in ("charset", "boundary"):
            continue
        val = val.strip()
        val = val[1:-1] if len(val) > 1 and val[0] == val[-1] == '"' else val
        if found.setdefault(name, val) != val:
            raise ValueError(f"Content-Type {value!r} names two {name}s")
    charset = found.get("charset")
    return MediaType(essence, charset.lower() if charset else None, found.get("boundary"))


def media_type(header: str | None) -> MediaType:
    """The one media type of a (possibly repeated or listed) Content-Type. Raises ValueError when the
    listed types or charsets disagree: upstreams pick the first, the last, or any one that matches."""
    if header is None or not header.strip():
        return NO_TYPE
    types = {parse_one(part) for part in _split_list(header)}
    if len(types) != 1:
        listed = ", ".join(sorted(f"{t.essence};charset={t.charset}" if t.charset else t.essence for t in types))
        raise ValueError(f"the request names several content types ({listed}): send exactly one")
    return types.pop()


def _detected(body: bytes) -> str:
    """RFC 8259 / json.detect_encoding's reading of a JSON text's first bytes ("utf-8-sig" for a BOM)."""
    return json.detect_encoding(body)


def decode_json(body: bytes, charset: str | None = None) -> Any:
    """The JSON value of a body, decoded as `json.loads(bytes)` would, with the declared charset checked
    against the bytes. Raises ValueError when it does not parse, or the charset disagrees with them."""
    if charset is not None:
        family = _UTF.get(_codec(charset) or "")
        if family is None:
            raise ValueError(f"JSON must be UTF-8, UTF-16 or UTF-32, not charset {charset!r}")
        found = _detected(body)
        if not found.startswith(family):
            raise ValueError(f"the body is {found} but its Content-Type says charset {charset}")
    try:
        # The hot path: UTF-8. A body it parses holds no NUL and no UTF-16/32 BOM (neither is valid UTF-8 JSON
        # outside a string, nor raw inside one), so json.loads(bytes) would have read it as UTF-8 too.
        value = parse_json(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        found = _detected(body)
        if found.startswith("utf-8"):
            raise ValueError(f"body is not JSON: {exc}") from None
        try:
            value = json.loads(body.decode(found))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from None
        _check_integers(value)
        return value
    if _LONG_NUMBER.search(body):
        _check_integers(value)
    return value


def _check_integers(value: Any) -> None:
    """Raise ValueError for an integer JavaScript cannot hold exactly: Python reads 9007199254740993 as is,
    JSON.parse (Express, the TypeScript MCP SDK) as 9007199254740992, so a rule and the upstream would
    see two different numbers."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > _SAFE_INTEGER:
            raise UnsafeNumber(f"the integer {item} is beyond 2^53: JavaScript upstreams read another number")


def decode_text(body: bytes, charset: str | None) -> str:
    """A text body as a str: by its BOM, else its charset, else UTF-8. Raises ValueError when it does not
    decode (the caller then judges it as bytes) or when the BOM and the charset disagree."""
    name = _codec(charset or "utf-8")
    family = _TEXT.get(name or "")
    if name is None or family is None:
        raise ValueError(f"unsupported charset {charset!r}")
    codec = family if family in ("utf-8", "latin-1") else name
    if body[:4].startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        bom = _detected(body)
        if charset is not None and not bom.startswith(family):
            raise ValueError(f"the body starts with a {bom} byte order mark but says charset {charset}")
        codec = bom
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body is not {codec} text: {exc}") from None
    return text[1:] if text[:1] == "\ufeff" else text
