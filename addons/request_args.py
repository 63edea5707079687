"""The arguments of a REST call, from path parameters, query and body, read by the body's real content.

JSON (declared, or sent as text or without a type: Starlette's `request.json()` reads it whatever the
type) gives its fields; a form (urlencoded or multipart) gives its fields; other text is `args.body`;
anything else is `args.body_size` and `args.body_sha256`, so approvers and rules see what is sent. Ambiguity is
refused (ValueError): a key in both query and body unless the server declares its precedence, a repeated
key unless the OpenAPI operation declares an array, a path parameter contradicted by a field, a body whose
content disagrees with its declared type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl

from addons.body_decode import MediaType, UnsafeNumber, decode_json, decode_text
from addons.multipart_form import multipart_fields
from addons.request_canon import RequestOptions

_JSON_START = (b"{", b"[", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00")
_WHITESPACE = b" \t\r\n"


def pairs_of(text: str, where: str) -> list[tuple[str, str]]:
    """`a=1&b=x+y` -> [("a", "1"), ("b", "x y")]. Raises ValueError when the escapes are not UTF-8."""
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"the {where} has percent-escapes that are not UTF-8") from None


def fields_of(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Pairs -> fields, a repeated key as the list of its values (`settle` decides whether it may repeat)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


def settle(fields: dict[str, Any], arrays: Collection[str], where: str) -> dict[str, Any]:
    """Query or form fields with their declared arrays as lists. Raises ValueError for any other repeated
    key: Starlette keeps the last value, Flask the first, Express makes a list."""
    for key, value in fields.items():
        if isinstance(value, list):
            if key not in arrays:
                raise ValueError(f"the {where} repeats {key!r}: upstreams keep the first, the last, or all of them")
        elif key in arrays:
            fields[key] = [value]
    return fields


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip(_WHITESPACE).startswith(_JSON_START)


def body_fields(body: bytes, mtype: MediaType) -> dict[str, Any]:
    """The fields a body contributes to the call's arguments (a form's repeated keys as lists, for `settle`).
    Raises ValueError when it cannot be read unambiguously."""
    if not body:
        return {}
    if mtype.is_json:
        return _json_fields(decode_json(body, mtype.charset))
    if mtype.is_form:
        if _looks_like_json(body):
            raise ValueError("the body is declared a form but holds JSON: send it as application/json")
        if not body.isascii():
            # Starlette reads raw form bytes as latin-1, Werkzeug and body-parser as UTF-8.
            raise ValueError("the form body has raw non-ASCII bytes: percent-encode them")
        text = decode_text(body, mtype.charset)
        return fields_of(pairs_of(text, "form body"))
    if mtype.is_multipart_form:
        return multipart_fields(body, mtype.boundary)
    if mtype.essence.startswith("multipart/"):
        return _opaque(body)
    if _looks_like_json(body):
        try:
            # As Starlette's `request.json()` reads it: whatever the declared type and charset.
            value = decode_json(body)
        except UnsafeNumber:
            raise
        except ValueError:
            pass
        else:
            # Judged as the JSON it is: upstreams that read JSON whatever the type act on these fields.
            return _json_fields(value)
    try:
        text = decode_text(body, mtype.charset)
    except ValueError:
        return _opaque(body)
    if "\x00" in text:
        return _opaque(body)
    return {"body": text}


def _json_fields(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"body": value}


def _opaque(body: bytes) -> dict[str, Any]:
    return {"body_size": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}


def merge(
    path_params: Mapping[str, str], query: dict[str, Any], body: dict[str, Any], options: RequestOptions
) -> dict[str, Any]:
    """One argument mapping. Raises ValueError for a key in both query and body (unless the server entry
    declares which one its upstream uses) and for a field that contradicts a path parameter."""
    if query and body:
        both = query.keys() & body.keys()
        if both:
            if options.precedence is None:
                raise ValueError(
                    f"{sorted(both)} in both the query and the body: upstreams disagree on which one wins "
                    "(a server entry can declare `precedence: query` or `precedence: body`)"
                )
            loser = body if options.precedence == "query" else query
            for key in both:
                del loser[key]
    args = {**query, **body} if body else query
    for key, value in path_params.items():
        # Only the identical string agrees: a body's number 1 beside the path's "1" is another value to a
        # handler that reads the body, and a rule `eq: 1` would not fire on the judged "1".
        if key in args and args[key] != value:
            raise ValueError(f"{key!r} is {value!r} in the path but {args[key]!r} in the query or body")
        args[key] = value
    return args
