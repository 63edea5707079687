"""A request body's Content-Encoding is undone exactly, within a bound, and the upstream gets the decoded bytes.

Starlette and Flask never decode a request's coding: they parse the raw bytes. So the proxy forwards the body
it judged (decoded, header removed); bytes after a compressed stream, unknown codings (Python codecs such as
base64 that mitmproxy would have applied) and decompression bombs are refused."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.content_coding import TooLarge, decode_body
from tests.addons.harness import harness, make_flow

LIMIT = 1 << 20


def _deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
}


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=4096), coding=st.sampled_from(sorted(ENCODERS)), spelling=st.sampled_from([0, 1, 2]))
def test_every_known_coding_decodes_back_to_the_body_it_encoded(data: bytes, coding: str, spelling: int) -> None:
    header = [coding, coding.upper(), f" {coding} "][spelling]
    assert decode_body(ENCODERS[coding](data), header, LIMIT) == data


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=1024), tail=st.binary(min_size=1, max_size=64), coding=st.sampled_from(["gzip", "br"]))
def test_bytes_after_the_end_of_a_compressed_stream_are_refused(data: bytes, tail: bytes, coding: str) -> None:
    # gzip(owner=alice) + "&owner=root": judged as alice, parsed raw by Flask as root.
    with pytest.raises(ValueError, match=r"follow|not valid|truncated"):
        decode_body(ENCODERS[coding](data) + tail, coding, LIMIT)


def test_a_raw_deflate_stream_decodes_and_its_trailing_bytes_are_refused() -> None:
    assert decode_body(_deflate_raw(b"owner=alice"), "deflate", LIMIT) == b"owner=alice"
    with pytest.raises(ValueError, match="follow the end"):
        decode_body(_deflate_raw(b"owner=alice") + b"&owner=root", "deflate", LIMIT)


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_a_decompression_bomb_is_stopped_at_the_limit(coding: str) -> None:
    bomb = ENCODERS[coding](bytes(64 * LIMIT))  # 64 MB of zeros, a few kB on the wire
    with pytest.raises(TooLarge):
        decode_body(bomb, coding, LIMIT)


def test_a_bomb_nested_in_two_codings_is_stopped_too() -> None:
    with pytest.raises(TooLarge):
        decode_body(gzip.compress(gzip.compress(bytes(64 * LIMIT))), "gzip, gzip", LIMIT)


@pytest.mark.parametrize("header", ["base64", "hex", "bz2", "rot13", "utf-16", "compress", "gzip,", "", "x"])
def test_a_coding_no_upstream_decodes_is_refused(header: str) -> None:
    with pytest.raises(ValueError, match=r"unknown content coding|empty coding"):
        decode_body(b"eyJvd25lciI6InJvb3QifQ==", header, LIMIT)


def test_codings_are_undone_last_first() -> None:
    assert decode_body(brotli.compress(gzip.compress(b"x=1")), "gzip, br", LIMIT) == b"x=1"
    assert decode_body(b"x=1", "identity", LIMIT) == b"x=1"


async def test_an_encoded_body_is_judged_and_forwarded_decoded(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        body = json.dumps({"name": "rex"}).encode()
        flow = make_flow("GET", "https://petstore.test/v2/pet/7", b"", {"content-type": "application/json"})
        flow.request.headers["content-encoding"] = "gzip"
        flow.request.raw_content = gzip.compress(body)
        await h.addon.request(flow)
        assert flow.response is None
        assert "content-encoding" not in flow.request.headers
        assert flow.request.raw_content == body
        h.respond(flow, 200, {})
        (rec,) = h.records
        assert rec["args"]["name"] == "rex"


async def test_a_form_body_with_bytes_after_its_gzip_stream_is_refused_and_traced(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        headers = {"content-type": "application/x-www-form-urlencoded", "content-encoding": "gzip"}
        flow = make_flow("GET", "https://petstore.test/v2/pet/7", b"", headers)
        flow.request.raw_content = gzip.compress(b"owner=alice") + b"&owner=root"
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400
        (rec,) = h.records
        assert (rec["verdict"], rec["rule"]) == ("deny", "proxy.bad_request")


async def test_a_gzip_bomb_is_refused_as_too_large_and_traced(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        flow = make_flow("GET", "https://petstore.test/v2/pet/7", b"", headers)
        flow.request.raw_content = gzip.compress(bytes(256 << 20))
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 413
        (rec,) = h.records
        assert rec["verdict"] == "deny"
