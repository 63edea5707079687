"""The addon recognises destinations by address: aliases of a configured server are that server, the control
plane and the proxy itself are refused in every spelling, the names a request carries must agree, proxy
credentials never go upstream, annotations come only from configured servers, and per-request work is capped."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import connection, http
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketData, WebSocketMessage
from wsproto.frame_protocol import Opcode

from addons.governance import Governance
from addons.mcp_flow import McpHandler
from policy import Gate, LoadedConfig, MemoryStore
from policy.trace import MemoryTraceSink
from tests.addons.harness import Harness, ListingServer, creds, make_flow, rpc, wait_until

CONFIG = """
version: 1
state_dir: state
agents:
  claude: {token: s3cret}
  bot: {token: other}
servers:
  notes: {mcp_url: "http://127.0.0.1:9000/servers/notes/mcp"}
  admin: {mcp_url: "http://127.0.0.1:9000/servers/admin/mcp"}
  billing: {base_url: "http://127.0.0.1:9100/api"}
proxy: {unknown_hosts: UNKNOWN, max_batch: 3}
approval: {hold_seconds: 5, max_pending_per_agent: PENDING}
control: {listen: "127.0.0.1:8181"}
policies:
  - name: claude
    agent: "*"
    rules:
      - {name: notes-reads, tools: ["notes.read*"], action: allow}
      - {name: no-admin, tools: ["admin.*"], action: deny}
      - {name: no-billing-writes, tools: ["billing.POST *"], action: deny}
      - {name: ws-hello, tools: ["billing.ws.message"], when: {args.text: {eq: "hello"}}, action: allow}
      - {name: ask, tools: ["notes.write*"], action: human_approval}
      - {name: reads, tools: ["*"], when: {http.method: {in: [GET]}}, action: allow}
"""


@contextmanager
def governed(tmp_path: Path, unknown: str = "policy", pending: int = 50) -> Iterator[Harness]:
    sink, store = MemoryTraceSink(), MemoryStore()

    def factory(loaded: LoadedConfig) -> Gate:
        return Gate.open(loaded, store=store, sink=sink)

    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.replace("UNKNOWN", unknown).replace("PENDING", str(pending)))
    addon = Governance(factory, fetch_tools=ListingServer())
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mesh_config=str(path))
        yield Harness(addon, tctx, sink, store)


def call(name: str, rid: Any = 1, **args: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": args}, rid)


def code(flow: http.HTTPFlow) -> str:
    assert flow.response is not None
    return str(json.loads(flow.response.content or b"{}").get("code"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "localhost", "[::1]"])
async def test_the_control_plane_is_refused_in_every_spelling(tmp_path: Path, host: str) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("POST", f"http://{host}:8181/api/approvals/x/approve", {"by": "me"})
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 403
        assert code(flow) == "control_plane"
        tunnel = make_flow("CONNECT", f"http://{host}:8181/")
        tunnel.request.host, tunnel.request.port = host.strip("[]"), 8181
        await h.addon.http_connect(tunnel)
        assert tunnel.response is not None
        assert tunnel.response.status_code == 403


async def test_the_last_check_before_connecting_refuses_the_control_plane_and_pins_the_judged_address(
    tmp_path: Path,
) -> None:
    with governed(tmp_path) as h:
        client = tflow.tclient_conn()
        to_control = connection.Server(address=("0x7f.1", 8181))
        await h.addon.server_connect(server_hooks.ServerConnectionHookData(to_control, client))
        assert to_control.error is not None
        assert "control_plane" in to_control.error
        upstream = connection.Server(address=("localhost", 9000))
        await h.addon.server_connect(server_hooks.ServerConnectionHookData(upstream, client))
        assert upstream.error is None
        assert upstream.address == ("127.0.0.1", 9000)
        # A request judged at the configured address of a server connects there, whatever the name says.
        judged = make_flow("GET", "http://0.0.0.0:9000/servers/notes/mcp")
        await h.addon.request(judged)
        assert judged.response is None
        wildcard = connection.Server(address=("0.0.0.0", 9000))
        await h.addon.server_connect(server_hooks.ServerConnectionHookData(wildcard, judged.client_conn))
        assert wildcard.address == ("127.0.0.1", 9000)


@pytest.mark.parametrize("host", ["2130706433", "127.1", "localhost", "0x7f000001", "0.0.0.0", "127.0.0.9"])
async def test_an_alias_of_a_configured_server_is_that_server_even_when_unknown_hosts_pass(
    tmp_path: Path, host: str
) -> None:
    with governed(tmp_path, unknown="allow") as h:
        flow = make_flow("POST", f"http://{host}:9000/servers/admin/mcp", call("drop_all"))
        await h.addon.request(flow)
        assert flow.response is not None
        assert json.loads(flow.response.content or b"")["result"]["isError"] is True
        (rec,) = h.records
        assert (rec["tool"], rec["verdict"]) == ("admin.drop_all", "deny")
        rest = make_flow("POST", f"http://{host}:9100/api/charges", {"amount": 5})
        await h.addon.request(rest)
        assert rest.response is not None
        assert rest.response.status_code == 403


async def test_two_mcp_servers_on_one_origin_are_judged_each_as_itself(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        notes = make_flow("POST", "http://127.0.0.1:9000/servers/notes/mcp", call("read_note"))
        await h.addon.request(notes)
        assert notes.response is None
        h.respond(notes, 200, {"jsonrpc": "2.0", "id": 1, "result": {"content": []}})
        admin = make_flow("POST", "http://127.0.0.1:9000/servers/admin/mcp", call("read_note"))
        await h.addon.request(admin)
        assert admin.response is not None
        assert [(r["tool"], r["verdict"]) for r in h.records] == [
            ("notes.read_note", "allow"),
            ("admin.read_note", "deny"),
        ]


async def test_numeric_spellings_of_an_unknown_host_are_judged_under_one_name(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        for host in ("127.0.0.1", "2130706433", "127.1"):
            flow = make_flow("POST", f"http://{host}:7000/x", {"a": 1})
            await h.addon.request(flow)
        assert [r["tool"] for r in h.records] == ["127.0.0.1.POST /x"] * 3


@pytest.mark.parametrize("values", [["admin.test"], ["127.0.0.1:9001"], ["127.0.0.1:9000", "evil.test"]])
async def test_a_host_header_naming_another_target_is_refused(tmp_path: Path, values: list[str]) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "http://127.0.0.1:9000/servers/notes/mcp")
        for value in values:
            flow.request.headers.add("Host", value)
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400
        assert code(flow) == "host_mismatch"


async def test_inside_a_tunnel_the_host_must_be_the_tunnels_and_credentials_never_go_upstream(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        connect = make_flow("CONNECT", "http://127.0.0.1:9000/")
        connect.request.host, connect.request.port = "127.0.0.1", 9000
        await h.addon.http_connect(connect)
        assert connect.response is None
        inner = tflow.tflow(req=http.Request.make("GET", "http://127.0.0.1:9000/servers/notes/mcp"))
        inner.client_conn = connect.client_conn
        inner.request.headers["Proxy-Authorization"] = creds()
        inner.request.headers.add("proxy-authorization", creds("bot", "other"))
        await h.addon.request(inner)
        assert inner.response is None
        assert "proxy-authorization" not in inner.request.headers
        elsewhere = tflow.tflow(req=http.Request.make("GET", "http://127.0.0.1:9100/api/x"))
        elsewhere.client_conn = connect.client_conn
        await h.addon.request(elsewhere)
        assert elsewhere.response is not None
        assert code(elsewhere) == "host_mismatch"


async def test_a_tls_server_name_other_than_the_host_is_refused(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "https://127.0.0.1:9000/servers/notes/mcp")
        flow.client_conn.tls = True
        flow.client_conn.sni = "admin.test"
        await h.addon.request(flow)
        assert flow.response is not None
        assert code(flow) == "host_mismatch"


def test_annotations_are_believed_only_from_configured_mcp_servers(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        handler = h.addon.mcp
        assert isinstance(handler, McpHandler)
        tool = {"name": "wipe", "annotations": {"readOnlyHint": True, "destructiveHint": False}}
        handler.visible("claude", "127.0.0.1", None, tool)
        handler.visible("claude", "evil.test", None, tool)
        assert handler.annotations == {}
        handler.visible("claude", "notes", None, tool)
        assert handler.annotations == {("notes", "wipe"): tool["annotations"]}


async def test_a_json_rpc_batch_over_the_cap_is_refused_whole(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        batch = [call("read_note", rid=i) for i in range(4)]
        flow = make_flow("POST", "http://127.0.0.1:9000/servers/notes/mcp", batch)
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400
        assert "max_batch" in json.loads(flow.response.content or b"")["error"]["message"]
        (rec,) = h.records  # refused whole: one record of the refusal, no call judged
        assert (rec["rule"], rec["verdict"], rec["outcome"]) == ("proxy.max_batch", "deny", "refused")


async def test_pending_approvals_per_agent_are_capped(tmp_path: Path) -> None:
    with governed(tmp_path, pending=2) as h:
        flows = [
            make_flow("POST", "http://127.0.0.1:9000/servers/notes/mcp", call("write_note", rid=i, n=i))
            for i in range(3)
        ]
        held = [asyncio.create_task(h.addon.request(f)) for f in flows[:2]]
        await wait_until(lambda: len(h.addon.judge.held) == 2 if h.addon.judge else False)
        await h.addon.request(flows[2])
        reply = json.loads(flows[2].response.content or b"") if flows[2].response else {}
        assert reply["result"]["structuredContent"]["code"] == "rate_limited"
        for task in held:
            task.cancel()


def _websocket(flow: http.HTTPFlow, content: bytes, text: bool = True) -> WebSocketMessage:
    flow.websocket = WebSocketData()
    message = WebSocketMessage(Opcode.TEXT if text else Opcode.BINARY, True, content)
    flow.websocket.messages.append(message)
    return message


async def test_websocket_messages_are_judged_and_traced_one_by_one(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "http://127.0.0.1:9100/api/socket", headers={"upgrade": "websocket"})
        await h.addon.request(flow)
        assert flow.response is None
        h.respond(flow, 101, b"")
        denied = _websocket(flow, json.dumps(rpc("tools/call", {"name": "refund", "arguments": {"n": 1}})).encode())
        await h.addon.websocket_message(flow)
        assert denied.dropped
        other = _websocket(flow, b"goodbye")
        await h.addon.websocket_message(flow)
        assert other.dropped  # not allowed by a rule: a message is not a GET because its socket opened with one
        allowed = _websocket(flow, b"hello")
        await h.addon.websocket_message(flow)
        assert not allowed.dropped
        tools = [(r["tool"], r["args"], r["verdict"]) for r in h.records[1:]]
        assert tools == [
            ("billing.refund", {"n": 1}, "deny"),
            ("billing.ws.message", {"text": "goodbye"}, "deny"),
            ("billing.ws.message", {"text": "hello"}, "allow"),
        ]


async def test_a_websocket_nobody_judged_carries_nothing(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "http://127.0.0.1:9100/api/socket")
        message = _websocket(flow, b"hello")
        await h.addon.websocket_message(flow)
        assert message.dropped


def _ipv4_spelling(value: int, parts: int, bases: list[str]) -> str:
    widths = {1: [32], 2: [8, 24], 3: [8, 8, 16], 4: [8, 8, 8, 8]}[parts]
    numbers, shift = [], 32
    for width in widths:
        shift -= width
        numbers.append((value >> shift) & ((1 << width) - 1))
    forms = {"dec": str, "oct": lambda n: "0" + format(n, "o"), "hex": hex, "HEX": lambda n: "0X" + format(n, "X")}
    return ".".join(forms[b](n) for n, b in zip(numbers, bases, strict=False))


@st.composite
def local_spellings(draw: st.DrawFn) -> str:
    """Hostile spellings of this machine: any loopback address or 0.0.0.0 in every inet_aton form, IPv4-mapped
    IPv6 forms, and localhost in any letter case with or without the trailing dot."""
    kind = draw(st.sampled_from(["ipv4", "mapped", "name"]))
    value = draw(st.one_of(st.integers(0x7F000000, 0x7FFFFFFF), st.just(0)))
    if kind == "ipv4":
        parts = draw(st.integers(1, 4))
        return _ipv4_spelling(value, parts, draw(st.lists(st.sampled_from(["dec", "oct", "hex", "HEX"]), min_size=4)))
    if kind == "mapped":
        text = str(ipaddress.IPv6Address((0xFFFF << 32) | value))
        return "[" + (text.upper() if draw(st.booleans()) else text) + "]"
    name = "".join(c.upper() if draw(st.booleans()) else c for c in "localhost")
    return name + ("." if draw(st.booleans()) else "")


def test_generated_spellings_of_this_machine_never_reach_the_control_plane_or_an_unjudged_server(
    tmp_path: Path,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        with governed(tmp_path, unknown="allow") as h:

            @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
            @given(host=local_spellings())
            def check(host: str) -> None:
                control = make_flow("GET", f"http://{host}:8181/api/approvals")
                loop.run_until_complete(h.addon.request(control))
                assert control.response is not None
                assert code(control) == "control_plane"
                before = len(h.records)
                admin = make_flow("POST", f"http://{host}:9000/servers/admin/mcp", call("drop_all", rid=3))
                loop.run_until_complete(h.addon.request(admin))
                assert admin.response is not None  # judged (denied), never passed as an unknown host
                ((tool, verdict),) = [(r["tool"], r["verdict"]) for r in h.records[before:]]
                assert tool == "admin.drop_all"
                assert verdict in {"deny", "loop_detected"}

            check()
    finally:
        loop.close()


async def test_names_are_checked_as_the_client_sent_them_before_the_operators_rewrites(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        connect = make_flow("CONNECT", "http://api.example:443/")
        connect.request.host, connect.request.port = "api.example", 443
        await h.addon.http_connect(connect)
        mapped = tflow.tflow(req=http.Request.make("GET", "https://api.example/v1/x", b"", {"Host": "api.example"}))
        mapped.client_conn = connect.client_conn
        h.addon.requestheaders(mapped)
        mapped.request.url = "http://127.0.0.1:9100/api/x"  # what mitmproxy's map_remote does in its request hook
        await h.addon.request(mapped)
        assert mapped.response is None
        forged = tflow.tflow(req=http.Request.make("GET", "https://api.example/v1/x", b"", {"Host": "api.example"}))
        forged.request.headers["Host"] = "admin.example"
        forged.client_conn = connect.client_conn
        h.addon.requestheaders(forged)
        await h.addon.request(forged)
        assert forged.response is not None
        assert code(forged) == "host_mismatch"


async def test_http2_requests_inside_a_tunnel_lose_their_proxy_credentials_too(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        connect = make_flow("CONNECT", "http://127.0.0.1:9000/")
        connect.request.host, connect.request.port = "127.0.0.1", 9000
        await h.addon.http_connect(connect)
        inner = tflow.tflow(req=http.Request.make("GET", "https://127.0.0.1:9000/servers/notes/mcp"))
        inner.request.http_version = "HTTP/2.0"
        inner.request.authority = "127.0.0.1:9000"
        inner.request.headers["proxy-authorization"] = creds()
        inner.client_conn = connect.client_conn
        h.addon.requestheaders(inner)
        await h.addon.request(inner)
        assert inner.response is None
        assert "proxy-authorization" not in inner.request.headers


async def test_beside_an_mcp_url_only_announced_endpoints_are_that_server(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("DELETE", "http://127.0.0.1:9000/servers/notes/everything")
        await h.addon.request(flow)
        assert flow.response is not None
        assert [(r["tool"], r["verdict"]) for r in h.records] == [
            ("127.0.0.1.DELETE /servers/notes/everything", "deny")
        ]
