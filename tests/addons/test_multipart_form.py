"""multipart/form-data bodies give the fields Flask/Werkzeug reads from them, or are refused."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from addons.body_decode import media_type
from addons.multipart_form import multipart_fields
from addons.request_args import body_fields

NAMES = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\%'), min_size=1, max_size=8
)
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


def encoded(data: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """The body and Content-Type httpx (a real client) sends for these fields and files."""
    files = files or {"~file": ("f.bin", b"x")}  # without a file httpx sends the form urlencoded
    request = httpx.Request("POST", "https://x.test/", data=data, files=files)
    return request.read(), request.headers["content-type"]


def werkzeug_reads(body: bytes, ctype: str) -> dict[str, Any]:
    environ = EnvironBuilder(method="POST", data=body, content_type=ctype).get_environ()
    _stream, form, files = parse_form_data(environ)
    out: dict[str, Any] = {k: form.get(k) for k in form}
    for key in files:
        f = files[key]
        content = f.read()
        f.close()
        out[key] = {"filename": f.filename, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    return out


@given(st.dictionaries(NAMES, VALUES, max_size=4), st.dictionaries(NAMES, st.binary(max_size=30), max_size=2))
def test_fields_and_files_read_as_werkzeug_reads_them(data: dict[str, str], blobs: dict[str, bytes]) -> None:
    files = {k: (f"{k}.bin", v) for k, v in blobs.items() if k not in data}
    body, ctype = encoded(data, files)
    try:
        got = body_fields(body, media_type(ctype))
    except ValueError:
        return  # refused: never judged on a guess
    normalised = {k: v.replace("\r\n", "\n") if isinstance(v, str) else v for k, v in got.items()}
    expected = werkzeug_reads(body, ctype)
    assert {k: v.replace("\r\n", "\n") if isinstance(v, str) else v for k, v in expected.items()} == normalised


def test_a_form_with_a_file_shows_its_name_size_and_hash() -> None:
    body, ctype = encoded({"text": "rm -rf /"}, {"upload": ("a.txt", b"hello")})
    assert body_fields(body, media_type(ctype)) == {
        "text": "rm -rf /",
        "upload": {"filename": "a.txt", "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()},
    }


B = "XyZ"
HEAD = b'--XyZ\r\nContent-Disposition: form-data; name="a"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--", "no preamble"),
        (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\nepilogue", "no epilogue"),
        (HEAD + b"\r\nContent-Transfer-Encoding: base64\r\n\r\nMQ==\r\n--XyZ--", "header parsers read differently"),
        (HEAD + b"; filename*=utf-8''x\r\n\r\n1\r\n--XyZ--", "plain quoting"),
        (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\\\"b\"\r\n\r\n1\r\n--XyZ--", "plain quoting"),
        (b"--XyZ\nContent-Disposition: form-data; name=\"a\"\n\n1\n--XyZ--", "start with its boundary"),
        (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--XyZ--", "not UTF-8"),
    ],
)  # fmt: skip
def test_multipart_bodies_parsers_read_differently_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        multipart_fields(body, B)


def test_a_multipart_type_without_a_boundary_is_refused() -> None:
    with pytest.raises(ValueError, match="boundary"):
        body_fields(b"--x\r\n", media_type("multipart/form-data"))
