"""Requests classify as an OpenAPI operation, MCP JSON-RPC, plain HTTP, or MCP plumbing to pass through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from addons.classify import McpBody, Request, RestCall, ServerMap, classify, origin_of
from policy import load_config_text
from tests.addons.harness import SPEC

CONFIG = """
version: 1
servers:
  pets: {openapi: spec.json}
  pets_local: {openapi: spec.json, base_url: "http://127.0.0.1:4010"}
  notes: {mcp_url: "https://notes.test/mcp"}
  plain: {base_url: "https://plain.test/api"}
"""


@pytest.fixture
def servers(tmp_path: Path) -> ServerMap:
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    return ServerMap.from_config(load_config_text(CONFIG, "c.yaml").config, tmp_path)


def req(method: str, url: str, body: Any = None, ctype: str = "application/json") -> Request:
    scheme, rest = url.split("://", 1)
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    content = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return Request(method, scheme, host, int(port or (443 if scheme == "https" else 80)), "/" + path,
                   {"content-type": ctype}, content)  # fmt: skip


def run(servers: ServerMap, r: Request) -> RestCall | McpBody | None:
    return classify(r, servers.lookup(r.host, r.port, r.path))


def test_an_operation_of_a_spec_yields_its_id_and_arguments(servers: ServerMap) -> None:
    got = run(servers, req("GET", "https://petstore.test/v2/pet/7?fields=a&x=1"))
    assert isinstance(got, RestCall)
    assert (got.surface, got.server, got.tool) == ("openapi", "pets", "getPetById")
    assert got.arguments == {"petId": "7", "fields": "a", "x": "1"}
    assert got.http is not None
    assert (got.http.method, got.http.host, got.http.port, got.http.path) == ("GET", "petstore.test", 443, "/v2/pet/7")


def test_a_path_parameter_contradicted_by_a_field_is_refused(servers: ServerMap) -> None:
    with pytest.raises(ValueError, match="'petId' is '7' in the path but 9"):
        run(servers, req("DELETE", "http://127.0.0.1:4010/pet/7", {"petId": 9, "why": "old"}))
    with pytest.raises(ValueError, match="'petId' is '7' in the path but 7"):
        run(servers, req("DELETE", "http://127.0.0.1:4010/pet/7", {"petId": 7}))  # a number is another value
    same = run(servers, req("DELETE", "http://127.0.0.1:4010/pet/7", {"petId": "7", "why": "old"}))
    assert isinstance(same, RestCall)
    assert same.server == "pets_local"
    assert same.arguments == {"petId": "7", "why": "old"}


def test_form_bodies_and_non_object_json_become_arguments(servers: ServerMap) -> None:
    form = run(
        servers, req("POST", "https://petstore.test/v2/pet", b"name=rex&tag=a", "application/x-www-form-urlencoded")
    )
    assert isinstance(form, RestCall)
    assert form.arguments == {"name": "rex", "tag": "a"}
    listed = run(servers, req("POST", "https://petstore.test/v2/pet", [1, 2]))
    assert isinstance(listed, RestCall)
    assert listed.arguments == {"body": [1, 2]}


def test_json_rpc_posts_are_mcp_only_to_a_configured_mcp_server(servers: ServerMap) -> None:
    msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
    to_notes = run(servers, req("POST", "https://notes.test/mcp", msg))
    assert isinstance(to_notes, McpBody)
    assert to_notes.server == "notes"
    elsewhere = run(servers, req("POST", "https://other.test/rpc", msg))
    assert isinstance(elsewhere, RestCall)
    assert (elsewhere.server, elsewhere.tool) == ("other.test", "POST /rpc")
    assert elsewhere.arguments["method"] == "tools/call"
    to_rest = run(servers, req("POST", "https://plain.test/api/notes", {"jsonrpc": "2.0", "method": "purge"}))
    assert isinstance(to_rest, RestCall)
    assert (to_rest.server, to_rest.tool, to_rest.known_host) == ("plain", "POST /api/notes", True)


def test_mcp_plumbing_to_a_configured_mcp_server_passes(servers: ServerMap) -> None:
    assert run(servers, req("GET", "https://notes.test/mcp")) is None
    assert run(servers, req("DELETE", "https://notes.test/mcp")) is None


@pytest.mark.parametrize(
    ("url", "server", "tool", "known"),
    [
        ("https://plain.test/api/items", "plain", "GET /api/items", True),
        ("https://petstore.test/v2/unknown", "pets", "GET /v2/unknown", True),
        ("https://example.test/", "example.test", "GET /", False),
    ],
)
def test_everything_else_is_plain_http(servers: ServerMap, url: str, server: str, tool: str, known: bool) -> None:
    got = run(servers, req("GET", url))
    assert isinstance(got, RestCall)
    assert (got.surface, got.server, got.tool, got.known_host) == ("http", server, tool, known)


@pytest.mark.parametrize(
    ("r", "message"),
    [
        (req("POST", "https://petstore.test/v2/pet", b"{nope"), "body is not JSON"),
        (req("POST", "https://notes.test/mcp", b'{"jsonrpc": "1.0", "method": "x"}'), '"jsonrpc" must be "2.0"'),
        (req("GET", "https://example.test/a/../b"), "dot segment"),
    ],
)
def test_requests_that_cannot_be_judged_are_refused(servers: ServerMap, r: Request, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace('"', '"')):
        run(servers, r)


def test_a_server_whose_spec_names_no_absolute_url_needs_a_base_url(tmp_path: Path) -> None:
    (tmp_path / "rel.json").write_text(json.dumps({"openapi": "3.0.0", "servers": [{"url": "/v1"}], "paths": {}}))
    config = load_config_text("version: 1\nservers: {api: {openapi: rel.json}}\n", "c.yaml").config
    with pytest.raises(ValueError, match=r"servers\.api: the spec names no absolute server URL"):
        ServerMap.from_config(config, tmp_path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://API.example.com/v1/", ("api.example.com", 443, "/v1")),
        ("http://127.0.0.1:8080", ("127.0.0.1", 8080, "")),
    ],
)
def test_origins_of_base_urls(url: str, expected: tuple[str, int, str]) -> None:
    assert origin_of(url) == expected


@pytest.mark.parametrize("url", ["ftp://x", "/relative", "http://h:99999"])
def test_bad_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|port"):
        origin_of(url)
