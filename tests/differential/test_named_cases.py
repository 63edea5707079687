"""The issue's own examples and each class the generated runs found, as named requests against every
upstream: each is refused, or runs exactly as judged, and leaves one trace record."""

from __future__ import annotations

import json

import pytest

from tests.differential import oracle
from tests.differential.harness import FRAMEWORKS, MCP, Mesh
from tests.differential.known import OPEN
from tests.differential.mutations import Case

pytestmark = pytest.mark.e2e
JSON = (("Content-Type", "application/json"),)


def rest(method: str, path: str, headers: tuple[tuple[str, str], ...] = (), body: bytes = b"", *,
         host: str = "127.0.0.1", host_header: str = "same") -> Case:  # fmt: skip
    return Case(method, host, path, headers, body, host_header, ("named",))


def findings_of(mesh: Mesh, framework: str, cases: dict[str, Case]) -> dict[str, list[str]]:
    """Each named request sent once (one batch per upstream, one wait for the trace), and what broke."""
    out: dict[str, list[str]] = {}
    for name, outcome in zip(cases, mesh.run(framework, list(cases.values())), strict=True):
        if framework == MCP:
            found = oracle.check_mcp(framework, outcome.case.calls, outcome.seen, outcome.records)
        else:
            found = oracle.check(framework, mesh.ports[framework], outcome.seen, outcome.records)
        out[name] = [f"{f.kind}: {f.detail}" for f in found]
        if not outcome.seen and not outcome.records:
            out[name].append(f"{oracle.REFUSED_UNRECORDED}: {outcome.response}")
    return out


ISSUE_EXAMPLES = {
    "encoded slash in the id": rest("POST", "/v1/notes/1%2Fpurge", JSON, b'{"title": "t"}'),
    "encoded backslash in the id": rest("POST", "/v1/notes/1%5Cpurge", JSON, b"{}"),
    "dot segment": rest("POST", "/v1/notes/x/%2E%2E/1/purge", JSON, b"{}"),
    "JSON sent as text/plain": rest("POST", "/v1/notes/1", (("Content-Type", "text/plain"),), b'{"owner": "root"}'),
    "JSON with no content type": rest("POST", "/v1/notes/1", (), b'{"owner": "root"}'),
    "query key overrides the body key": rest("POST", "/v1/notes/1?owner=root", JSON, b'{"owner": "alice"}'),
    "repeated query key": rest("POST", "/v1/notes/1?owner=alice&owner=root"),
    "method override header": rest("POST", "/v1/notes/1", (("X-HTTP-Method-Override", "DELETE"),)),
    "_method in the query": rest("POST", "/v1/notes/1?_method=DELETE"),
    "_method in a form body": rest(
        "POST", "/v1/notes/1", (("Content-Type", "application/x-www-form-urlencoded"),), b"_method=DELETE"
    ),
    "numeric host": rest("POST", "/v1/notes/1/purge", host="2130706433"),
    "hex host": rest("POST", "/v1/notes/1/purge", host="0x7f000001"),
    "Host header naming another host": rest("GET", "/v1/notes/1", host_header="other"),
    "JSON-RPC body to a REST write": rest(
        "POST", "/v1/notes/1/purge", JSON, b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    ),
    "UTF-16 JSON body": rest("POST", "/v1/notes/1", JSON, '{"owner": "root"}'.encode("utf-16")),
    "BOM before JSON": rest("POST", "/v1/notes/1", JSON, '{"owner": "root"}'.encode("utf-8-sig")),
    "gzip body": rest("POST", "/v1/notes/1", (*JSON, ("Content-Encoding", "gzip")), b'{"owner": "root"}'),
    # The classes the generated runs found (F1-F4 in the harness's findings notes).
    "method override on a GET": rest("GET", "/v1/notes/1", (("X-HTTP-Method-Override", "DELETE"),)),
    "no Host header": rest("GET", "/v1/notes/1", host_header="missing"),
    "a body id of another JSON type than the path id": rest("POST", "/v1/notes/1", JSON, b'{"id": 1}'),
}


@pytest.fixture(scope="module")
def rest_findings(mesh: Mesh) -> dict[str, dict[str, list[str]]]:
    return {framework: findings_of(mesh, framework, ISSUE_EXAMPLES) for framework in FRAMEWORKS}


@pytest.fixture(scope="module")
def mcp_findings(mesh: Mesh) -> dict[str, list[str]]:
    return findings_of(mesh, MCP, MCP_EXAMPLES)


def open_marks(name: str, framework: str) -> list[pytest.MarkDecorator]:
    """xfail(strict) while the request's class is open (known.py) on this upstream."""
    if name not in OPEN or framework not in SHOWS_ON.get(name, (*FRAMEWORKS, MCP)):
        return []
    return [pytest.mark.xfail(strict=True, reason=OPEN[name][0])]


# Where an open class shows when not on every upstream.
SHOWS_ON: dict[str, tuple[str, ...]] = {}


@pytest.mark.parametrize(
    ("framework", "name"),
    [
        pytest.param(framework, name, marks=open_marks(name, framework), id=f"{name}-{framework}")
        for name in ISSUE_EXAMPLES
        for framework in FRAMEWORKS
    ],
)
def test_a_named_hostile_request_is_refused_or_runs_as_judged(
    rest_findings: dict[str, dict[str, list[str]]], framework: str, name: str
) -> None:
    assert rest_findings[framework][name] == []


def mcp_call(tool: str, *, headers: tuple[tuple[str, str], ...] = (), encoding: str = "utf-8",
             text: str | None = None) -> Case:  # fmt: skip
    message = {"jsonrpc": "2.0", "id": 0, "method": "tools/call", "params": {"name": tool, "arguments": {"name": "a"}}}
    body = (text or json.dumps(message)).encode(encoding)
    accept = ("Accept", "application/json, text/event-stream")
    return Case("POST", "127.0.0.1", "/mcp", (accept, *headers), body, "same", ("named",), 1)


MCP_EXAMPLES = {
    "listed content type": mcp_call("delete_note", headers=(("Content-Type", "application/json, text/plain"),)),
    "duplicated content type": mcp_call(
        "delete_note", headers=(("Content-Type", "application/json"), ("Content-Type", "text/plain"))
    ),
    "application/json-x": mcp_call("delete_note", headers=(("Content-Type", "application/json-x"),)),
    "BOM": mcp_call("delete_note", headers=JSON, encoding="utf-8-sig"),
    "UTF-16": mcp_call("delete_note", headers=JSON, encoding="utf-16"),
    "UTF-32": mcp_call("delete_note", headers=JSON, encoding="utf-32"),
    "escaped jsonrpc key": mcp_call(
        "delete_note",
        headers=JSON,
        text='{"\\u006asonrpc": "2.0", "id": 0, "method": "tools/call", '
        '"params": {"name": "delete_note", "arguments": {"name": "a"}}}',
    ),
    "Mcp-Name header disagreeing with the body": mcp_call(
        "read_note", headers=(*JSON, ("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_note"))
    ),
    "duplicate name key": mcp_call(
        "read_note",
        headers=JSON,
        text='{"jsonrpc": "2.0", "id": 0, "method": "tools/call", '
        '"params": {"name": "read_note", "name": "delete_note", "arguments": {"name": "a"}}}',
    ),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=open_marks(n, MCP), id=n) for n in MCP_EXAMPLES])
def test_a_named_hostile_mcp_call_is_refused_or_runs_as_judged(mcp_findings: dict[str, list[str]], name: str) -> None:
    assert mcp_findings[name] == []


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_allowed_update_runs_upstream_as_judged(mesh: Mesh, framework: str) -> None:
    # The control: the harness sees allowed calls run, so a green run is not a proxy that refuses everything.
    [outcome] = mesh.run(framework, [rest("POST", "/v1/notes/7?title=x", JSON, b'{"owner": "alice"}')])
    assert [s["op"] for s in outcome.seen] == ["updateNote"]
    assert [(r["tool"], r["args"], r["verdict"]) for r in outcome.records] == [
        (f"{framework}.updateNote", {"id": "7", "title": "x", "owner": "alice"}, "allow")
    ]


def test_an_allowed_mcp_call_runs_as_judged(mesh: Mesh) -> None:
    [outcome] = mesh.run(MCP, [mcp_call("write_note", headers=JSON)])
    assert [s["op"] for s in outcome.seen if s["op"]] == ["write_note"]
    assert [(r["tool"], r["args"], r["verdict"]) for r in outcome.records] == [
        ("mcp.write_note", {"name": "a"}, "allow")
    ]
