"""Hypothesis strategies for hostile variants of requests to the notes API: path spellings, host spellings,
duplicated and listed headers, body encodings and content types, query/body collisions, method overrides and
JSON-RPC-shaped bodies. A `Case` is independent of the upstream's port; `Case.raw` makes the wire request.
The simplest draw of every strategy is the unmutated request, so shrinking ends on the mutation that matters;
each kind of mutation is drawn rarely enough that most requests carry one or two (a request with six is
refused for the first one, and the other five go untested)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import urllib.parse
import zlib
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.differential.wire import RawRequest, proxy_auth

NONCE_HEADER = "X-Diff-Nonce"
AGENT = "diff"

OPS = {"getNote": "GET", "updateNote": "POST", "deleteNote": "DELETE", "purgeNote": "POST"}
IDS = ["1", "42", "n-7", "a.b", "1", "42", "caf%C3%A9", "%FF", "a%20b", "a+b"]
BOUNDARY = "diffbound"
KEYS = ["owner", "title", "id", "_method", "q"]
VALUES = ["root", "alice", "", "DELETE", "1"]

# Spellings of 127.0.0.1 (what the upstreams listen on) that resolvers and HTTP stacks accept.
HOSTS = [*["127.0.0.1"] * 12, "localhost", "2130706433", "0x7f000001", "127.1", "0177.0.0.1", "127.000.000.001",
         "0x7f.0.0.1", "LOCALHOST", "[::ffff:127.0.0.1]", "localhost.", "agent@127.0.0.1"]  # fmt: skip
SNIS = [*["same"] * 6, "", "localhost", "admin.internal.example", "127.0.0.1"]
HOST_HEADERS = [*["same"] * 12, "canonical", "localhost", "other", "duplicate", "no-port", "missing"]
SLASHES = ["%2F", "%2f", "%252F", "%5C", "%5c", "\\", "%2F%2F", "/%2E/", "/%2e%2e/x/"]
DOTS = ["x/..", "x/%2E%2E", "x/%2e%2e", "x/.%2E", ".", "%2E", "x/../."]
CONTENT_TYPES = [
    None, "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
    "application/json;charset=UTF-32", "text/plain", "text/plain; charset=utf-8", "application/json, text/plain",
    "text/plain, application/json", "application/json-x", "application/vnd.notes+json", "APPLICATION/JSON",
    " application/json ", "application/x-www-form-urlencoded", "application/json; charset=latin-1",
    "application/jsonp", "multipart/form-data", 'application/json; charset="utf-16"',
    "application/json; charset=UTF-16LE",
]  # fmt: skip
ENCODINGS = ["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"]
OVERRIDE_HEADERS = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "x-http-method-override"]
OVERRIDE_METHODS = ["DELETE", "GET", "PUT", "delete", "POST"]
RPC_METHODS = ["tools/call", "ping", "notes/update", "resources/read", "initialize"]
CODINGS = ["gzip", "deflate", "identity", "GZIP", "gzip, identity", "br"]


@dataclass(frozen=True, repr=False)
class Case:
    """One generated request; `tags` name the mutation classes it carries (for reports)."""

    method: str
    host: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    host_header: str
    tags: tuple[str, ...]
    calls: int = 0  # MCP: how many tools/call messages the body holds
    chunked: bool = False  # the body framed by Transfer-Encoding: chunked instead of Content-Length
    sni: str | None = None  # tunnelled (CONNECT + TLS) requests: the SNI the client sends, "" for none

    def __repr__(self) -> str:
        # Short: hypothesis prints a failing batch of these (the full request is in the assertion message).
        return f"<{self.method} {self.host}{self.path} {len(self.body)}B {' '.join(self.tags)}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer, which skips __repr__
        printer.text(repr(self))

    def raw(self, port: int, nonce: str) -> RawRequest:
        authority = f"{self.host}:{port}"
        headers: list[tuple[str, str]] = []
        named = {
            "same": [authority],
            "canonical": [f"127.0.0.1:{port}"],
            "localhost": [f"localhost:{port}"],
            "other": [f"admin.internal.example:{port}"],
            "duplicate": [authority, f"admin.internal.example:{port}"],
            "no-port": [self.host],
            "missing": [],
        }[self.host_header]
        headers += [("Host", value) for value in named]
        # A tunnelled request's credentials go on its CONNECT (Mesh.run); its target is in origin form.
        headers += [] if self.sni is not None else [proxy_auth(AGENT, nonce)]
        headers += [(NONCE_HEADER, nonce), *self.headers]
        if self.chunked:
            half = len(self.body) // 2
            parts = [p for p in (self.body[:half], self.body[half:]) if p]
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
            headers += [("Transfer-Encoding", "chunked"), ("Connection", "close")]
            return RawRequest(self.method, self._target(authority), headers, body)
        headers += [("Content-Length", str(len(self.body))), ("Connection", "close")]
        return RawRequest(self.method, self._target(authority), headers, self.body)

    def _target(self, authority: str) -> str:
        return self.path if self.sni is not None else f"http://{authority}{self.path}"


def _encode_char(segment: str, index: int, upper: bool) -> str:
    if not segment:
        return segment
    i = index % len(segment)
    hexed = f"%{ord(segment[i]):02X}" if upper else f"%{ord(segment[i]):02x}"
    return segment[:i] + hexed + segment[i + 1 :]


@st.composite
def paths(draw: st.DrawFn, op: str) -> tuple[str, list[str]]:
    """The operation's path, or a spelling of it (or of another operation's path) upstreams may read differently."""
    note = draw(st.sampled_from(IDS))
    segs = ["v1", "notes", note] + (["purge"] if op == "purgeNote" else [])
    tags: list[str] = []
    kind = draw(st.sampled_from([*["plain"] * 8, "slash", "dot", "empty", "semicolon", "encoded", "trailing", "case",
                                 "purge-in-id"]))  # fmt: skip
    if kind == "slash" and len(segs) > 3:
        path = "/" + "/".join(segs[:2]) + "/" + segs[2] + draw(st.sampled_from(SLASHES)) + segs[3]
    elif kind == "purge-in-id":
        path = f"/v1/notes/{note}{draw(st.sampled_from(SLASHES))}purge"
    elif kind == "dot":
        at = draw(st.integers(0, len(segs)))
        path = "/" + "/".join([*segs[:at], draw(st.sampled_from(DOTS)), *segs[at:]])
    elif kind == "empty":
        at = draw(st.integers(0, len(segs)))
        path = "/" + "/".join([*segs[:at], "", *segs[at:]])
    elif kind == "semicolon":
        at = draw(st.integers(0, len(segs) - 1))
        segs[at] += draw(st.sampled_from([";x", ";", ";a=b", "%3B"]))
        path = "/" + "/".join(segs)
    elif kind == "encoded":
        at = draw(st.integers(0, len(segs) - 1))
        segs[at] = _encode_char(segs[at], draw(st.integers(0, 8)), draw(st.booleans()))
        path = "/" + "/".join(segs)
    elif kind == "trailing":
        path = "/" + "/".join(segs) + draw(st.sampled_from(["/", "//", "/.", "#x", "%23x", "?", "%3F"]))
    elif kind == "case":
        path = "/" + "/".join(s.upper() if i < 2 else s for i, s in enumerate(segs))
    else:
        kind = "plain"
        path = "/" + "/".join(segs)
    if kind != "plain":
        tags.append(f"path:{kind}")
    return path, tags


@st.composite
def queries(draw: st.DrawFn) -> tuple[list[tuple[str, str]], str]:
    if draw(st.booleans()):
        return [], ""
    pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), max_size=3))
    if draw(st.booleans()) and pairs:
        pairs.append(pairs[0])  # a repeated key
    parts = []
    for key, value in pairs:
        k = _encode_char(key, draw(st.integers(0, 5)), True) if draw(st.integers(0, 5)) == 5 else key
        parts.append(f"{k}={urllib.parse.quote(value)}")
    return pairs, "&".join(parts)


def _escape_keys(text: str) -> str:
    """`"owner"` -> `"\\u006fwner"`: the same JSON to a decoder, another byte string to a scanner."""
    out = text
    for key in [*KEYS, "jsonrpc", "method"]:
        out = out.replace(f'"{key}"', f'"\\u{ord(key[0]):04x}{key[1:]}"')
    return out


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    kind = draw(st.sampled_from(["none", "none", "json", "json", "json", "rpc", "form", "text", "array", "multipart"]))
    if kind == "none":
        return b"", []
    if kind == "multipart":
        pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), min_size=1, max_size=3))
        parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in pairs]
        return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode(), ["body:multipart"]
    if kind == "form":
        pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), min_size=1, max_size=3))
        return urllib.parse.urlencode(pairs).encode(), ["body:form"]
    if kind == "text":
        return draw(st.sampled_from([b"owner=root", b"hello", b"{owner: root}", b"{"])), ["body:text"]
    if kind == "rpc":
        doc: object = {
            "jsonrpc": "2.0",
            "id": draw(st.sampled_from([0, 1, "a"])),
            "method": draw(st.sampled_from(RPC_METHODS)),
            "params": {"name": "purge", "arguments": {"owner": draw(st.sampled_from(VALUES))}},
        }
        if draw(st.booleans()):
            doc = [doc]
    elif kind == "array":
        doc = [draw(st.sampled_from(VALUES))]
    else:
        doc = draw(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), min_size=1, max_size=3))
    text = json.dumps(doc)
    tags = [f"body:{kind}"]
    if kind == "json" and draw(st.integers(0, 5)) == 5:
        # A key twice: Python's json, JSON.parse and Werkzeug keep the last; a scanner may see the first.
        key = next(iter(doc)) if isinstance(doc, dict) else "owner"
        text = text.replace("{", f'{{"{key}": "{draw(st.sampled_from(VALUES))}", ', 1)
        tags.append("body:duplicate-key")
    if draw(st.integers(0, 4)) == 4:
        text = _escape_keys(text)
        tags.append("body:escaped-keys")
    encoding = draw(st.sampled_from(ENCODINGS))
    if encoding != "utf-8":
        tags.append(f"encoding:{encoding}")
    return text.encode(encoding), tags


@st.composite
def content_types(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[str]]:
    first = "application/json" if draw(st.integers(0, 9)) < 4 else draw(st.sampled_from(CONTENT_TYPES))
    if first is None:
        return [], ["ctype:missing"]
    headers = [("Content-Type", first)]
    tags = [] if first == "application/json" else [f"ctype:{first.strip()}"]
    if draw(st.integers(0, 5)) == 5:
        second = draw(st.sampled_from([c for c in CONTENT_TYPES if c]))
        headers.append(("Content-Type", second))
        tags.append("ctype:duplicated")
    return headers, tags


@st.composite
def overrides(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[str]]:
    if draw(st.integers(0, 5)) < 5:
        return [], []
    name = draw(st.sampled_from(OVERRIDE_HEADERS))
    headers = [(name, draw(st.sampled_from(OVERRIDE_METHODS)))]
    if draw(st.booleans()):
        headers.append((draw(st.sampled_from(OVERRIDE_HEADERS)), draw(st.sampled_from(OVERRIDE_METHODS))))
    return headers, [f"override:{name.lower()}"]


@st.composite
def codings(draw: st.DrawFn, body: bytes) -> tuple[bytes, list[tuple[str, str]], list[str]]:
    """A Content-Encoding, with the body compressed as it says or (sometimes) not: Express inflates
    gzip/deflate bodies, Starlette and Flask hand the compressed bytes to the app."""
    name = draw(st.sampled_from(CODINGS))
    honest = draw(st.booleans())
    if honest and name.lower() == "gzip":
        body = gzip.compress(body, mtime=0)
    elif honest and name == "deflate":
        body = zlib.compress(body)
    return body, [("Content-Encoding", name)], [f"coding:{name}{'' if honest else '-mislabelled'}"]


@st.composite
def tunnelled_cases(draw: st.DrawFn) -> Case:
    """A request of `cases()` sent inside a CONNECT tunnel with TLS, with an SNI that may name another host."""
    case = draw(cases())
    # A CONNECT authority has no user name; with `localhost.` the proxy never finishes the TLS handshake
    # (nothing reaches the upstream, but every such case would cost the handshake timeout).
    if "@" in case.host or case.host == "localhost.":
        case = dataclasses.replace(case, host="127.0.0.1")
    sni = draw(st.sampled_from(SNIS))
    if sni == "same":
        sni = case.host.strip("[]")
    else:
        case = dataclasses.replace(case, tags=(*case.tags, f"sni:{sni or 'none'}"))
    return dataclasses.replace(case, sni=sni)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A request to one of the notes operations with zero or more hostile mutations."""
    op = draw(st.sampled_from(list(OPS)))
    path, tags = draw(paths(op))
    pairs, query = draw(queries())
    if query:
        path += "?" + query
        tags.append("query")
        if len({k for k, _ in pairs}) < len(pairs):
            tags.append("query:repeated")
        if any(k == "_method" for k, _ in pairs):
            tags.append("override:_method")
    body, body_tags = draw(bodies())
    tags += body_tags
    headers: list[tuple[str, str]] = []
    if "body:multipart" in body_tags and draw(st.integers(0, 3)) < 3:
        headers.append(("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"))
    elif body or draw(st.integers(0, 3)) == 3:
        ctype, ctype_tags = draw(content_types())
        headers += ctype
        tags += ctype_tags
    override, override_tags = draw(overrides())
    headers += override
    tags += override_tags
    if body and draw(st.integers(0, 7)) == 7:
        body, coding_headers, coding_tags = draw(codings(body))
        headers += coding_headers
        tags += coding_tags
    if headers and draw(st.integers(0, 5)) == 5:
        spell = draw(st.sampled_from([str.lower, str.upper, lambda n: n.replace("-", "_")]))
        headers = [(spell(n), v) for n, v in headers]
        tags.append("header-name-spelling")
    chunked = bool(body) and draw(st.integers(0, 7)) == 7
    if chunked:
        tags.append("framing:chunked")
    method = OPS[op]
    if draw(st.integers(0, 9)) == 9:
        method = draw(st.sampled_from([method.lower(), "PUT", "PATCH", "HEAD", "OPTIONS", method.title()]))
        tags.append(f"method:{method}")
    host = draw(st.sampled_from(HOSTS))
    if host != "127.0.0.1":
        tags.append(f"host:{host}")
    host_header = draw(st.sampled_from(HOST_HEADERS))
    if host_header != "same":
        tags.append(f"host-header:{host_header}")
    return Case(method, host, path, tuple(headers), body, host_header, tuple(tags), chunked=chunked)
