"""multipart/form-data bodies as the fields Flask's and Starlette's `request.form` give: text fields as
strings, files as their name, size and SHA-256. Parsed strictly: what parsers treat differently
(a preamble or epilogue, Content-Transfer-Encoding, RFC 2231 `filename*`, escaped names, bare LF line
ends) is refused with ValueError, so the fields judged are the fields every framework reads.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_DISPOSITION = re.compile(
    r'form-data(?:;\s*name="(?P<name>[^"\\%\r\n]*)")(?:;\s*filename="(?P<filename>[^"\\\r\n]*)")?\s*',
    re.IGNORECASE,
)
_PART_HEADERS = frozenset({"content-disposition", "content-type"})


def multipart_fields(body: bytes, boundary: str | None) -> dict[str, Any]:
    """The fields of a multipart/form-data body (a repeated name as the list of its values). Raises
    ValueError for anything parsers could read differently."""
    if boundary is None or _BOUNDARY.fullmatch(boundary) is None:
        raise ValueError("the multipart body's Content-Type has no usable boundary")
    delimiter = b"--" + boundary.encode("ascii")
    if body.startswith(b"\r\n"):  # RFC 2046: the CRLF before a delimiter belongs to it (Werkzeug sends one)
        body = body[2:]
    if not body.startswith(delimiter + b"\r\n"):
        raise ValueError("the multipart body must start with its boundary (no preamble)")
    chunks = body[len(delimiter) + 2 :].split(b"\r\n" + delimiter)
    closing = chunks.pop()
    if closing not in (b"--", b"--\r\n"):
        raise ValueError("the multipart body must end with its closing boundary (no epilogue)")
    fields: dict[str, Any] = {}
    for i, chunk in enumerate(chunks):
        if i and not chunk.startswith(b"\r\n"):
            raise ValueError("a multipart boundary is followed by something other than a line end")
        name, value = _part(chunk[2:] if i else chunk)
        if name not in fields:
            fields[name] = value
        elif isinstance(fields[name], list):
            fields[name].append(value)
        else:
            fields[name] = [fields[name], value]
    return fields


def _part(chunk: bytes) -> tuple[str, Any]:
    head, sep, content = chunk.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("a multipart part has no blank line after its headers")
    if b"\n" in head.replace(b"\r\n", b"") or not head.isascii():
        raise ValueError("a multipart part's headers must be ASCII lines ending in CRLF")
    headers: dict[str, str] = {}
    for line in head.decode("ascii").split("\r\n"):
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if not colon or key not in _PART_HEADERS or key in headers:
            raise ValueError(f"a multipart part has a header parsers read differently: {line[:60]!r}")
        headers[key] = value.strip()
    m = _DISPOSITION.fullmatch(headers.get("content-disposition", ""))
    if m is None:
        raise ValueError('a multipart part needs `Content-Disposition: form-data; name="..."` (plain quoting)')
    if m.group("filename") is not None:
        file = {"filename": m.group("filename"), "size": len(content)}
        return m.group("name"), file | {"sha256": hashlib.sha256(content).hexdigest()}
    ctype = headers.get("content-type", "text/plain").replace(" ", "").lower()
    if ctype not in ("text/plain", "text/plain;charset=utf-8"):
        raise ValueError(f"the multipart field {m.group('name')!r} is {ctype}: send it as a file or as UTF-8 text")
    try:
        return m.group("name"), content.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"the multipart field {m.group('name')!r} is not UTF-8 text") from None
