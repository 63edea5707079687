"""Undo a request body's Content-Encoding, bounded, so the proxy forwards exactly the bytes it judged.

Why not mitmproxy's own decoding: it inflates without a bound (a 10 MB gzip of zeros is 10 GB in the proxy's
memory), falls back to any Python codec (`base64`, `hex`, `bz2`, ... which no upstream decodes) and ignores
bytes after the end of a compressed stream. And why the decoded body is what goes upstream: Starlette and
Flask never decode a request's Content-Encoding, they parse the raw bytes, so `gzip(owner=alice)` followed
by `&owner=root` would be judged as `owner=alice` and run as `owner=root`. Forwarded decoded, with the
header removed, every upstream reads the judged bytes, whether it decodes or not.
"""

from __future__ import annotations

import zlib
from io import BytesIO

import brotli  # type: ignore[import-untyped]
import zstandard

_CHUNK = 64 * 1024


class TooLarge(ValueError):
    """The decoded body is over the limit (the message says which)."""


def _inflate(raw: bytes, wbits: int, limit: int, name: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    data = raw
    try:
        while data and not inflater.eof:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise TooLarge(f"the body decoded from {name} is over {limit} bytes")
            data = inflater.unconsumed_tail
        if not inflater.eof:
            raise ValueError(f"the {name} body is truncated")
    except zlib.error as exc:
        raise ValueError(f"the body is not valid {name}: {exc}") from None
    if inflater.unused_data:
        raise ValueError(f"{len(inflater.unused_data)} bytes follow the end of the {name} stream")
    return bytes(out)


def _brotli(raw: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray()
    try:
        out += decoder.process(raw, output_buffer_limit=limit + 1)
        while len(out) <= limit and not decoder.is_finished() and not decoder.can_accept_more_data():
            out += decoder.process(b"", output_buffer_limit=limit + 1 - len(out))
    except brotli.error as exc:
        raise ValueError(f"the body is not valid br: {exc}") from None
    if len(out) > limit:
        raise TooLarge(f"the body decoded from br is over {limit} bytes")
    if not decoder.is_finished():
        raise ValueError("the br body is truncated or followed by other bytes")
    return bytes(out)


def _zstd(raw: bytes, limit: int) -> bytes:
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(BytesIO(raw), read_across_frames=True)
        out = reader.read(limit + 1)
        if len(out) <= limit:
            out += reader.read(1)  # a short read is not the end: make sure nothing is left
    except zstandard.ZstdError as exc:
        raise ValueError(f"the body is not valid zstd: {exc}") from None
    if len(out) > limit:
        raise TooLarge(f"the body decoded from zstd is over {limit} bytes")
    return bytes(out)


def _one(raw: bytes, coding: str, limit: int) -> bytes:
    if coding == "identity":
        return raw
    if coding in ("gzip", "x-gzip"):
        return _inflate(raw, 16 + 15, limit, coding)
    if coding == "deflate":
        # RFC 9110 deflate is zlib-wrapped; a raw stream is what some clients send (and Express accepts).
        wbits = 15 if raw[:1] and (raw[0] & 0x0F) == 8 and int.from_bytes(raw[:2]) % 31 == 0 else -15
        return _inflate(raw, wbits, limit, coding)
    if coding == "br":
        return _brotli(raw, limit)
    if coding == "zstd":
        return _zstd(raw, limit)
    raise ValueError(f"unknown content coding {coding!r}: send identity, gzip, deflate, br or zstd")


def decode_body(raw: bytes, header: str, limit: int) -> bytes:
    """The body `raw` sent with `Content-Encoding: header`, decoded (codings undone last first). ValueError
    when a coding is unknown or does not decode exactly; TooLarge when any stage is over `limit` bytes."""
    codings = [c.strip().lower() for c in header.split(",")]
    if any(not c for c in codings):
        raise ValueError(f"Content-Encoding {header!r} has an empty coding")
    if len(codings) > 4:
        raise ValueError(f"Content-Encoding {header!r} lists more than 4 codings")
    body = raw
    for coding in reversed(codings):
        body = _one(body, coding, limit)
    return body
