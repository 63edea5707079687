"""Hypothesis strategies for hostile variants of MCP `tools/call` POSTs to a configured Streamable HTTP
server: body encodings (BOM, UTF-16/32, charset), listed/duplicated/odd content types, `\\u`-escaped keys,
duplicate JSON keys, batches, both eras (2026-07-28's `_meta` envelope and routing headers), routing headers
that disagree with the body, and spellings of the endpoint's path and host. The simplest draw is one plain,
well-formed call."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from tests.differential.mutations import ENCODINGS, HOST_HEADERS, HOSTS, Case

TOOLS = ["read_note", "write_note", "delete_note"]
NAMES = ["a", "root", "b"]
MCP_PATHS = [*["/mcp"] * 12, "/mcp/", "//mcp", "/MCP", "/mcp;x", "/%6dcp", "/%6Dcp", "/mcp%2F", "/./mcp",
             "/x/../mcp", "/mcp?x=1", "/mcp/..", "/mcp%00"]  # fmt: skip
MCP_TYPES = [
    "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
    "application/json, text/plain", "text/plain", "application/json-x", "application/vnd.x+json",
    "APPLICATION/JSON", "application/json;charset=UTF-32", "application/x-www-form-urlencoded",
]  # fmt: skip
ESCAPED = ["jsonrpc", "method", "params", "name", "arguments"]


ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


@st.composite
def calls(draw: st.DrawFn, index: int, stateless: bool) -> tuple[str, list[str], int, str]:
    """One JSON-RPC message as text, its tags, 1 if it is a tools/call (0 for plumbing), and its tool.

    `stateless`: the 2026-07-28 era, whose requests carry the `_meta` envelope."""
    tool = draw(st.sampled_from(TOOLS))
    args: dict[str, str] = {"name": draw(st.sampled_from(NAMES))}
    if draw(st.booleans()):
        args["text"] = draw(st.sampled_from(NAMES))
    method = "tools/call" if draw(st.integers(0, 9)) < 9 else draw(st.sampled_from(["ping", "tools/list"]))
    params: dict[str, object] = {"name": tool, "arguments": args}
    if stateless:
        params["_meta"] = ENVELOPE
    message = {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
    text = json.dumps(message)
    tags = [] if method == "tools/call" else [f"rpc:{method}"]
    if draw(st.integers(0, 6)) == 6:
        other = draw(st.sampled_from(TOOLS))
        # A repeated key: JSON parsers keep the last one (Python, pydantic's jiter), some keep the first.
        text = text.replace(f'"name": "{tool}"', f'"name": "{tool}", "name": "{other}"', 1)
        tags.append("json:duplicate-key")
    if draw(st.integers(0, 6)) == 6:
        for key in ESCAPED:
            text = text.replace(f'"{key}"', f'"\\u{ord(key[0]):04x}{key[1:]}"')
        tags.append("json:escaped-keys")
    return text, tags, int(method == "tools/call"), tool


@st.composite
def mcp_cases(draw: st.DrawFn) -> Case:
    """A tools/call POST (or a small batch) to the MCP endpoint, with zero or more hostile mutations."""
    size = 1 if draw(st.integers(0, 7)) < 7 else draw(st.integers(1, 3))
    stateless = draw(st.integers(0, 2)) == 2
    drawn = [draw(calls(i, stateless)) for i in range(size)]
    batch = size > 1 or draw(st.integers(0, 9)) == 9
    text = "[" + ", ".join(t for t, _, _, _ in drawn) + "]" if batch else drawn[0][0]
    tags = [tag for _, ts, _, _ in drawn for tag in ts] + (["rpc:batch"] if batch else [])
    encoding = draw(st.sampled_from(ENCODINGS))
    if encoding != "utf-8":
        tags.append(f"encoding:{encoding}")
    headers: list[tuple[str, str]] = [("Accept", "application/json, text/event-stream")]
    if stateless:
        # The era's routing headers, naming what the (first) message holds.
        headers += [("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", drawn[0][3])]
        tags.append("era:2026-07-28")
    ctype = "application/json" if draw(st.integers(0, 2)) < 2 else draw(st.sampled_from([None, *MCP_TYPES]))
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    if ctype != "application/json":
        tags.append(f"ctype:{ctype}")
    if draw(st.integers(0, 7)) == 7:
        headers.append(("Content-Type", draw(st.sampled_from(MCP_TYPES))))
        tags.append("ctype:duplicated")
    if draw(st.integers(0, 7)) == 7:
        headers += [("Mcp-Method", "tools/call"), ("Mcp-Name", draw(st.sampled_from(TOOLS)))]
        tags.append("routing-headers")
    path = draw(st.sampled_from(MCP_PATHS))
    if path != "/mcp":
        tags.append(f"path:{path}")
    host = draw(st.sampled_from(HOSTS))
    if host != "127.0.0.1":
        tags.append(f"host:{host}")
    host_header = draw(st.sampled_from(HOST_HEADERS))
    if host_header != "same":
        tags.append(f"host-header:{host_header}")
    calls_in = sum(n for _, _, n, _ in drawn)
    return Case("POST", host, path, tuple(headers), text.encode(encoding), host_header, tuple(tags), calls_in)
