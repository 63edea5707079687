"""`servers.X.upstream`: the server is judged by its public URL (and spec), and only the calls judged as its
own are sent to the upstream (a staging host, a mock); the Host header names the upstream; an upstream at
the control plane or at the proxy itself is refused, at config load and again at every connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import connection, exceptions, http
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons

from addons.governance import Governance
from addons.upstream import parse_upstream, upstream_path
from policy import ConfigError, Gate, LoadedConfig, MemoryStore, load_config_text
from policy.trace import MemoryTraceSink
from tests.addons.harness import Harness, ListingServer, make_flow, rpc

CONFIG = """
version: 1
state_dir: state
agents: {claude: {token: s3cret}}
servers:
  shop: {base_url: "https://shop.mesh-test.invalid/api/v3", upstream: "http://127.0.0.1:4010"}
  notes: {mcp_url: "https://notes.mesh-test.invalid/mcp", upstream: "http://127.0.0.1:9000/staging"}
  plain: {base_url: "http://plain.mesh-test.invalid"}
  legacy: {mcp_url: "https://legacy.mesh-test.invalid/sse", upstream: "http://127.0.0.1:9001"}
control: {listen: "127.0.0.1:8181"}
policies:
  - name: claude
    agent: claude
    rules:
      - {name: reads, tools: ["shop.GET *", "plain.GET *", "notes.read*", "legacy.read*"], action: allow}
      - {name: no-deletes, tools: ["shop.DELETE *"], action: deny}
"""


@contextmanager
def governed(tmp_path: Path, text: str = CONFIG) -> Iterator[Harness]:
    sink, store = MemoryTraceSink(), MemoryStore()

    def factory(loaded: LoadedConfig) -> Gate:
        return Gate.open(loaded, store=store, sink=sink)

    path = tmp_path / "agent-mesh.yaml"
    path.write_text(text)
    addon = Governance(factory, fetch_tools=ListingServer())
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mesh_config=str(path))
        yield Harness(addon, tctx, sink, store)


async def test_an_allowed_call_is_judged_by_the_public_url_and_sent_to_the_upstream(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "https://shop.mesh-test.invalid/api/v3/pet/1?x=1")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is None
        # The base path of the public URL is the upstream's path (a mock serves the spec at its root) ...
        assert flow.request.url == "http://127.0.0.1:4010/pet/1?x=1"
        # ... and the upstream is asked under its own name.
        assert flow.request.headers["Host"] == "127.0.0.1:4010"
        h.respond(flow, 200, {"id": 1})
        ((rec,),) = [h.records]
        assert (rec["server"], rec["tool"], rec["verdict"]) == ("shop", "shop.GET /api/v3/pet/1", "allow")
        assert rec["http"] == {"host": "shop.mesh-test.invalid", "method": "GET", "path": "/api/v3/pet/1"}


async def test_a_refused_call_is_answered_by_the_mesh_and_never_sent_anywhere(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("DELETE", "https://shop.mesh-test.invalid/api/v3/pet/1")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 403
        assert flow.request.host == "shop.mesh-test.invalid"


async def test_an_mcp_server_keeps_its_path_under_the_upstreams(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        body = rpc("tools/call", {"name": "read_note", "arguments": {"name": "a"}})
        flow = make_flow("POST", "https://notes.mesh-test.invalid/mcp", body, {"accept": "application/json"})
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is None
        assert flow.request.url == "http://127.0.0.1:9000/staging/mcp"


async def test_a_legacy_event_streams_endpoint_is_where_the_agent_asked_not_the_upstream(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        get = make_flow("GET", "https://legacy.mesh-test.invalid/sse")
        h.addon.requestheaders(get)
        await h.addon.request(get)
        assert get.request.url == "http://127.0.0.1:9001/sse"
        get.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        h.addon.responseheaders(get)
        stream = get.response.stream
        assert callable(stream)
        stream(b"event: endpoint\ndata: /messages/?session_id=abc\n\n")
        # The client posts to the announced endpoint under the public name: that is the stream's MCP endpoint.
        body = rpc("tools/call", {"name": "read_note", "arguments": {}}, 4)
        post = make_flow("POST", "https://legacy.mesh-test.invalid/messages/?session_id=abc", body)
        h.addon.requestheaders(post)
        await h.addon.request(post)
        assert post.response is None
        assert post.request.url == "http://127.0.0.1:9001/messages/?session_id=abc"
        h.respond(post, 202, b"Accepted", "text/plain")
        stream(f"event: message\ndata: {json.dumps({'jsonrpc': '2.0', 'id': 4, 'result': {}})}\n\n".encode())
        assert [(r["tool"], r["verdict"]) for r in h.records] == [("legacy.read_note", "allow")]


async def test_a_server_without_an_upstream_goes_where_the_agent_asked(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "http://plain.mesh-test.invalid/items")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is None
        assert flow.request.url == "http://plain.mesh-test.invalid/items"


async def test_a_path_outside_the_servers_base_is_the_origins_and_is_not_sent_to_the_upstream(
    tmp_path: Path,
) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "https://shop.mesh-test.invalid/admin")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        assert flow.response is not None  # no rule for the origin's own calls: denied by default
        assert [r["tool"] for r in h.records] == ["shop.mesh-test.invalid.GET /admin"]


def test_an_upstream_at_the_control_plane_is_a_config_error(tmp_path: Path) -> None:
    text = CONFIG.replace("http://127.0.0.1:4010", "http://0x7f.1:8181")
    with (
        pytest.raises(exceptions.OptionsError, match=r"servers\.shop\.upstream: .*control_plane"),
        governed(tmp_path, text),
    ):
        pass


async def test_the_upstream_connection_is_checked_like_any_other(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        h.addon.set_control(("127.0.0.1", 4010))  # serve's --listen-control, known after the config loaded
        flow = make_flow("GET", "https://shop.mesh-test.invalid/api/v3/pet/1")
        h.addon.requestheaders(flow)
        await h.addon.request(flow)
        server = connection.Server(address=(flow.request.host, flow.request.port))
        await h.addon.server_connect(server_hooks.ServerConnectionHookData(server, flow.client_conn))
        assert server.error is not None
        assert "control_plane" in server.error


def test_configured_upstreams_make_connections_lazy(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        h.tctx.options.add_option("connection_strategy", str, "eager", "", choices=("eager", "lazy"))
        h.tctx.configure(h.addon, connection_strategy="eager")
        assert h.tctx.options.connection_strategy == "lazy"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://127.0.0.1", "is not an http:// or https:// URL"),
        ("http://", "names no host"),
        ("http://user:pw@127.0.0.1:4010", "carries credentials"),
        ("http://127.0.0.1:4010/?a=1", "has a query or fragment"),
        ("http://127.0.0.1:99999", "has a bad port"),
        ("http://127.0.0.1/a/../b", "write its path plainly"),
    ],
)
def test_a_bad_upstream_is_a_config_error_at_its_line(value: str, message: str) -> None:
    text = f'version: 1\nservers:\n  shop:\n    base_url: "https://shop.example"\n    upstream: "{value}"\n'
    with pytest.raises(ConfigError, match=r"x\.yaml:5: servers\.shop\.upstream: .*" + message.replace("?", r"\?")):
        load_config_text(text, "x.yaml")


def test_an_upstream_needs_the_public_url_it_stands_in_for() -> None:
    with pytest.raises(ConfigError, match="give base_url, openapi or mcp_url too"):
        load_config_text('version: 1\nservers:\n  shop: {upstream: "http://127.0.0.1:4010"}\n', "x.yaml")


segment = st.text(st.characters(codec="ascii", exclude_characters="/?#"), max_size=8)


@given(
    base=st.lists(segment.filter(bool), max_size=3).map(lambda s: "".join(f"/{p}" for p in s)),
    up=st.sampled_from(["", "/mock", "/a/b"]),
    path=st.lists(segment, max_size=5).map(lambda s: "/" + "/".join(s)),
    query=st.sampled_from(["", "?q=1", "?next=//evil.example/"]),
)
def test_a_rewritten_path_always_stays_under_the_upstreams_path(base: str, up: str, path: str, query: str) -> None:
    upstream = parse_upstream(f"http://127.0.0.1:4010{up}")
    out = upstream_path(upstream, base, path + query)
    assert out.startswith(up + "/")
    assert out.endswith(query)
    if base and (path == base or path.startswith(base + "/")):
        assert out == up + (path[len(base) :] or "/") + query
