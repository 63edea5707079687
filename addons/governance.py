"""The mitmproxy addon: every intercepted request becomes ToolCalls judged by the Gate, then is forwarded,
held, or answered in the agent's own protocol (problem+json for REST, JSON-RPC results for MCP).

Destinations are recognised by resolved address, never by spelling: a configured server under any numeric or
hosts-file alias is that server, the control plane and the proxy itself are refused in every spelling, and
the upstream connection goes to the address that was judged (`server_connect`)."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mitmproxy import command, connection, contentviews, ctx, exceptions, http, tcp
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.mode_specs import ReverseMode

from addons.addresses import Address, Resolver, canonical_host
from addons.classify import McpBody, Request, RestCall, classify
from addons.content_coding import TooLarge, decode_body
from addons.flow_judge import REFUSED_ICON, REFUSED_MARK, Judge, annotate
from addons.framing import framing_problem
from addons.http_answers import Answer, problem, refusal_answer
from addons.mcp_flow import (
    PROXY_AUTHORIZATION,
    McpHandler,
    header_mismatch,
    header_value,
    lower_headers,
    remove_header,
)
from addons.mcp_learn import Destination, Fetch, ToolLearner, as_asked, destination, fetch_over_http
from addons.mcp_streams import McpStreams
from addons.mcp_view import McpView
from addons.proxy_auth import REALM, AgentAuth, AuthRequired, Identity
from addons.reach import Reach, Refusal, names_disagree
from addons.refused import record_refusal
from addons.servers import Match, ServerMap, Target
from addons.upstream import ASKED, check_upstreams, send_upstream, uses_upstreams
from addons.ws_judge import WsPeer, judge_ws_message
from policy import (
    ConfigError,
    Gate,
    HttpInfo,
    LoadedConfig,
    Outcome,
    ToolCall,
    Verdict,
    load_config,
)
from policy.mesh.reload import MeshWatcher, ProcessInfo, Reloaded, watch_gate
from policy.wire import jsonrpc
from policy.wire.headers import check_routing_headers

log = logging.getLogger("agent_mesh.proxy")

GateFactory = Callable[[LoadedConfig], Gate]
# Accepted credential headers remembered (config lifetime), so each request skips base64 and the compare.
_KNOWN_CREDENTIALS = 1024
_PINS = 4096  # judged addresses, (host spelling, port) -> address, for the upstream connection
_INVALID_REQUEST = -32600
_NAMES = "agent-mesh/names"  # requestheaders -> request: why the request's names disagree (None: they agree)
# requestheaders -> request: the URL the agent asked for (scheme, host, port, path), judged even when an addon
# ahead of this one (an operator's map_remote, a script) rewrote the request in between.
_ASKED = ASKED  # kept on the flow: an MCP event stream's endpoints are read against it
_UNCHECKED = object()
_JSON = {"content-type": "application/json"}


@dataclass(slots=True)
class _Rest:
    call: ToolCall
    verdict: Verdict
    started: float


def _default_gate(loaded: LoadedConfig) -> Gate:
    # The proxy's event loop is its bottleneck: trace records are built and written by a worker process.
    return Gate.open(loaded, trace_process=True)


class Governance:
    """Options: `mesh_config` (the agent-mesh config file) and `mesh_reverse` (NAME=URL per reverse listener)."""

    def __init__(
        self,
        gate_factory: GateFactory = _default_gate,
        config_file: str = "",
        kind: str = "proxy",
        watch: bool | None = None,
        fetch_tools: Fetch | None = None,
    ) -> None:
        self._gate_factory = gate_factory
        # The proxy's own tools/list before a session's first call (addons/mcp_learn): sent with httpx to the
        # judged address; a fetch given by a test or an embedding program is handed the URL as asked.
        self._fetch_tools = fetch_tools
        self.kind = kind  # how this process shows on the mesh board (`agent-mesh status`): proxy | serve
        # The watcher (reload, stops, heartbeat) runs for a real proxy process: by default with the default
        # gate (state.db), not for a gate given by a test or an embedding program.
        self._watching = gate_factory is _default_gate if watch is None else watch
        # Hot reload (policy.mesh.reload): the gate swaps the policy; these follow it (serve's control plane).
        self.reload_listeners: list[Callable[[Reloaded], None]] = []
        self.watcher: MeshWatcher | None = None
        # What the first `configure` opens before `mesh_config` is set (serve knows its file already): without
        # it, adding the addon would open the discovered or built-in config first, and its state dir.
        self._config_file = config_file
        self._opened: str | None = None
        self.judge: Judge | None = None
        self.loaded: LoadedConfig | None = None
        self.resolver = Resolver()
        self.servers = ServerMap(resolver=self.resolver)
        self.reach = Reach(self.resolver)
        self.auth = AgentAuth({})
        self.mcp: McpHandler | None = None
        self.reverse: dict[str, str] = {}
        self.identities: MutableMapping[connection.Client, Identity] = weakref.WeakKeyDictionary()
        self.tunnels: MutableMapping[connection.Client, tuple[str, int]] = weakref.WeakKeyDictionary()
        self.rest: dict[str, _Rest] = {}
        self.ws: dict[str, WsPeer] = {}
        self.streams: McpStreams | None = None
        self._view = McpView()
        self._known: dict[str, Identity] = {}
        # The address each client's request to (host, port) was judged at, for its upstream connection: per
        # client, so a later answer of the resolver for another client's request never redirects this one.
        self._pins: dict[tuple[str, str, int], Address] = {}
        self._proxy_known = False

    # -- lifecycle -------------------------------------------------------------------------------

    def load(self, loader: object) -> None:
        add = loader.add_option  # type: ignore[attr-defined]
        add("mesh_config", str, "", "agent-mesh config file (default: $AGENT_MESH_CONFIG, ./agent-mesh.yaml).")
        add("mesh_reverse", Sequence[str], [], "NAME=URL: traffic of the reverse listener to URL is server NAME.")
        contentviews.add(self._view)

    def configure(self, updated: set[str]) -> None:
        if "mesh_config" in updated or self.judge is None:
            path = ctx.options.mesh_config or self._config_file
            if self.judge is None or path != self._opened:
                self._open(path or None)
                self._opened = path
        if "mesh_reverse" in updated:
            self.reverse = parse_reverse(ctx.options.mesh_reverse)
        if ctx.options.rawtcp:
            # With it, bytes that do not start like a request line (a blank line first, under 3 bytes in the
            # first packet) and any 101 to a protocol other than WebSocket flow as raw TCP: no request hook,
            # no decision, no record, while lenient upstreams (h11, llhttp) read them as requests. Without it,
            # they are parsed as HTTP (and judged) or the connection is closed.
            ctx.options.update(rawtcp=False)  # type: ignore[no-untyped-call]
        if getattr(ctx.options, "stream_large_bodies", None):  # only with mitmproxy's proxy server addon
            # A streamed request goes upstream (headers first, then its body) before the request hook sees
            # its body: judged on no body, or not at all. Bodies are buffered; proxy.max_body_bytes bounds them.
            log.warning("agent-mesh: stream_large_bodies is turned off (a streamed body cannot be judged)")
            ctx.options.update(stream_large_bodies=None)  # type: ignore[no-untyped-call]
        if uses_upstreams(self.servers) and getattr(ctx.options, "connection_strategy", None) == "eager":
            # A tunnel to a server that lives at its `upstream` must not connect to the public host first
            # (offline, or production): connect when a judged request says where.
            log.info("agent-mesh: connection_strategy=lazy (servers with an upstream are configured)")
            ctx.options.update(connection_strategy="lazy")  # type: ignore[no-untyped-call]
        self._proxy_known = False  # listen addresses may change with any option: read them again

    def running(self) -> None:
        self._proxy_known = False

    def _open(self, path: str | None) -> None:
        try:
            loaded = load_config(path)
            base_dir = Path(loaded.file).parent if not loaded.file.startswith("<") else Path(".")
            resolver = Resolver()
            servers = ServerMap.from_config(loaded.config, base_dir, resolver=resolver)
            reach = Reach(resolver)
            reach.set_control(parse_listen(loaded.config.control.listen))
            check_upstreams(servers, reach)
            reach.set_upstreams((name, u.host, u.port) for name, u in servers.upstreams.items())
        except (ConfigError, ValueError) as exc:
            raise exceptions.OptionsError(f"agent-mesh: {exc}") from None  # type: ignore[no-untyped-call]
        old = self.judge
        self.loaded = loaded
        self.resolver = resolver
        self.servers = servers
        self.reach = reach
        self._pins = {}
        self.auth = AgentAuth.from_config(loaded.config)
        self._known = {}
        self.judge = Judge(self._gate_factory(loaded))
        self.mcp = McpHandler(self.judge, loaded.config.mcp.refuse_as)
        self.mcp.trusted = frozenset(n for n, s in loaded.config.servers.items() if s.mcp_url)
        fetch, locate = (
            (fetch_over_http, self._listing_destination) if self._fetch_tools is None else (self._fetch_tools, as_asked)
        )
        self.mcp.learner, self.mcp.locate = ToolLearner(fetch), locate
        if self.streams is not None:
            self.streams.close("the configuration was reloaded")
        self.streams = McpStreams(self.judge.gate.finish, self.mcp.listing, self.mcp.hides, self.mcp.asked)
        self.streams.tools_changed = self.mcp.learner.forget
        if old is not None:
            ctx.master.event_loop.create_task(old.gate.aclose())
        log.info("agent-mesh: governing with %s (%d servers)", loaded.file, len(loaded.config.servers))
        self._watch()

    def _watch(self) -> None:
        """Hot reload, emergency stops and this process's heartbeat, for the gate just opened."""
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        if not self._watching:
            return
        assert self.judge is not None
        self.watcher = watch_gate(
            self.judge.gate, ProcessInfo(self.kind), loop=ctx.master.event_loop, first=self._reloaded
        )

    def _reloaded(self, reloaded: Reloaded) -> None:
        """Before the gate takes a reloaded config: agents' credentials and MCP settings follow it. The servers
        the proxy classifies requests by are those it started with (a change needs a restart)."""
        config = reloaded.loaded.config
        auth = AgentAuth.from_config(config)  # raises before anything changed: the old config stays whole
        if self.loaded is not None and config.servers != self.loaded.config.servers:
            log.warning("agent-mesh: servers changed in %s: restart needed for: servers", reloaded.loaded.file)
        self.auth, self._known = auth, {}
        if self.mcp is not None:
            self.mcp.refuse_as = config.mcp.refuse_as
        self.loaded = reloaded.loaded
        for listener in self.reload_listeners:
            listener(reloaded)

    def set_control(self, listen: tuple[str, int]) -> None:
        """The control plane's real address (serve's `--listen-control` may differ from the config's)."""
        self.reach.set_control(listen)

    async def done(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        if self.streams is not None:
            self.streams.close("the proxy shut down")
        if self.judge is not None:
            await self.judge.gate.aclose()
            self.judge = None

    # -- commands ----------------------------------------------------------------------------------

    @command.command("mesh.approve")  # type: ignore[untyped-decorator]
    def approve(self, approval_id: str) -> str:
        """Approve a held call (the id shown in the flow's comment)."""
        return self._judge().decide(approval_id, approve=True, by="mitmproxy", reason="mesh.approve")

    @command.command("mesh.deny")  # type: ignore[untyped-decorator]
    def deny(self, approval_id: str) -> str:
        """Deny a held call (the id shown in the flow's comment)."""
        return self._judge().decide(approval_id, approve=False, by="mitmproxy", reason="mesh.deny")

    def _judge(self) -> Judge:
        if self.judge is None:
            raise exceptions.CommandError("agent-mesh is not configured")
        return self.judge

    # -- hooks -----------------------------------------------------------------------------------

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        identity = self._identify(flow, header_value(flow.request.headers, PROXY_AUTHORIZATION))
        if identity is None:
            return
        host, port = flow.request.host, flow.request.port
        addresses = await self._addresses(host)
        refused = self._refusal(addresses, port) or self._upstream_refusal(host, port, addresses)
        if refused is not None:
            _answer(flow, _refusal_answer(refused))
            return
        self._pin(flow.client_conn.id, host, port, self.servers.match(host, port, "/", addresses))
        self.identities[flow.client_conn] = identity
        self.tunnels[flow.client_conn] = (host, port)

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """The last word before a socket opens: resolve once, refuse the control plane and the proxy itself in
        any spelling, and connect to the address that was judged (not a second, maybe different, lookup)."""
        server = data.server
        if server.address is None or server.via is not None:
            return
        host, port = str(server.address[0]), int(server.address[1])
        pinned = self._pins.get((data.client.id, host, port))
        addresses = (pinned,) if pinned is not None else await self._addresses(host)
        if not addresses:
            server.error = f"agent-mesh: {host!r} does not resolve"
            return
        refused = self._refusal(addresses, port)
        if refused is not None:
            server.error = f"agent-mesh refused the connection ({refused.code}): {refused.detail}"
            return
        server.address = (str(addresses[0]), port)

    async def request(self, flow: http.HTTPFlow) -> None:
        try:
            await self._request(flow)
        except Exception as exc:  # mitmproxy would log an addon error and forward the flow: never unjudged
            log.exception("agent-mesh: could not judge %s %s", flow.request.method, flow.request.pretty_url)
            if flow.response is None:
                why = f"agent-mesh could not judge this request ({type(exc).__name__}); it was not forwarded"
                _answer(flow, problem(500, "judge_error", "Request could not be judged", why))

    async def _request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None or flow.websocket is not None:
            return
        if self.judge is None or self.mcp is None or self.loaded is None:
            _answer(flow, problem(503, "not_configured", "agent-mesh is not configured", "no config loaded"))
            return
        req = flow.request
        headers = lower_headers(req.headers)  # read once: mitmproxy's per-name lookups are slow
        credentials = headers.pop(PROXY_AUTHORIZATION, None)
        if credentials is not None:
            # Also a copy repeated inside a CONNECT tunnel (HTTP/1 or HTTP/2): never sent upstream.
            remove_header(req.headers, PROXY_AUTHORIZATION)
        # Only CONNECTed clients have one; the lookup builds a weak reference, so skip it when there is none.
        known = self.identities.get(flow.client_conn) if self.identities else None
        identity = known or self._identify(flow, credentials)
        if identity is None:
            return
        # Judged by what the agent asked for (requestheaders), before the operator's own rewrites (map_remote).
        scheme, host, port, path = flow.metadata.get(_ASKED) or (req.scheme, req.host, req.port, req.path)
        why = flow.metadata.pop(_NAMES, _UNCHECKED)
        if why is _UNCHECKED:
            why = self._names_disagree(flow)
        if why is not None:
            assert isinstance(why, str)
            _answer(flow, problem(400, "host_mismatch", "The request names two different hosts", why))
            tried = Request(req.method, scheme, host, port, path, headers, b"")
            record_refusal(self.judge.gate, tried, None, identity, flow.client_conn.id, why, "proxy.host_mismatch")
            return
        framing = framing_problem(req.headers.fields, headers)
        if framing is not None:
            _answer(flow, problem(400, "bad_request", "Ambiguous request framing", framing))
            tried = Request(req.method, scheme, canonical_host(host), port, path, headers, b"")
            record_refusal(self.judge.gate, tried, None, identity, flow.client_conn.id, framing)
            return
        if "host" not in headers and req.http_version.startswith("HTTP/1"):
            # Without one, Werkzeug runs the request with no host (a virtual-host setup picks its default):
            # the upstream gets the host it is sent to (the judged one unless the operator rewrote it).
            name = f"[{req.host}]" if ":" in req.host else req.host
            default = req.port == {"http": 80, "https": 443}.get(req.scheme)
            req.headers["Host"] = req.authority or (name if default else f"{name}:{req.port}")
        addresses = await self._addresses(host)
        refused = self._refusal(addresses, port) or self._upstream_refusal(host, port, addresses)
        if refused is not None:
            _answer(flow, _refusal_answer(refused))
            tried = Request(req.method, scheme, host, port, path, headers, b"")
            rule = f"proxy.{refused.code}"
            record_refusal(self.judge.gate, tried, None, identity, flow.client_conn.id, refused.detail, rule)
            return
        limit = self.loaded.config.proxy.max_body_bytes
        content = req.raw_content or b""
        coding = headers.pop("content-encoding", None)
        over = f"a body of {len(content)} bytes is over proxy.max_body_bytes ({limit})" if len(content) > limit else ""
        try:
            if coding is not None and not over:
                # Decoded (bounded) and forwarded decoded: Starlette and Flask parse the raw bytes, never the
                # coding, so the upstream must get the very bytes that were judged (see content_coding).
                content = decode_body(content, coding, limit)
                remove_header(req.headers, "content-encoding")
                req.content = content
        except TooLarge as exc:
            over = f"{exc} (proxy.max_body_bytes)"
        except ValueError as exc:
            _answer(flow, problem(400, "bad_request", "Unreadable request body", str(exc)))
            unread = Request(req.method, scheme, canonical_host(host), port, path, headers, b"")
            record_refusal(self.judge.gate, unread, None, identity, flow.client_conn.id, str(exc))
            return
        if over:
            _answer(flow, problem(413, "too_large", "Request too large to judge", f"bodies over {limit} bytes"))
            big = Request(req.method, scheme, canonical_host(host), port, path, headers, content)
            record_refusal(self.judge.gate, big, None, identity, flow.client_conn.id, over)
            return
        # Rules and traces see one spelling per address: `2130706433` and `127.1` are 127.0.0.1.
        creq = Request(req.method, scheme, canonical_host(host), port, path, headers, content)
        target: Target | None = None
        try:
            target = self._target(flow, host, port, path, addresses)
            if target is None and creq.host in self.servers.by_name:
                raise ValueError(f"the host {creq.host!r} is also the name of a configured server: use its URL")
            kind = classify(creq, target, self.servers.options.get(target.server) if target else None)
        except ValueError as exc:
            _answer(flow, problem(400, "bad_request", "Request cannot be judged", str(exc)))
            # A refused request is still one call tried: one trace record.
            record_refusal(self.judge.gate, creq, target, identity, flow.client_conn.id, str(exc))
            return
        if isinstance(kind, RestCall):
            await self._rest(flow, identity, kind, creq)
            if flow.response is None and headers.get("upgrade", "").lower() == "websocket":
                self.ws[flow.id] = WsPeer(identity, kind.server, kind.http or _info(creq))
        elif isinstance(kind, McpBody):
            await self._mcp(flow, identity, kind, creq)
        if target is not None and target.upstream is not None and flow.response is None:
            # Judged (and allowed) as this server's call: now sent where the server lives (servers.X.upstream).
            send_upstream(req, target.upstream, target.upstream_base)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        flow.metadata[_ASKED] = (req.scheme, req.host, req.port, req.path)
        flow.metadata[_NAMES] = self._names_disagree(flow)

    def _names_disagree(self, flow: http.HTTPFlow) -> str | None:
        """Whether the names the request carries (URL, Host, :authority, tunnel, SNI) disagree; None in
        reverse mode, where mitmproxy itself sets the Host header to the one upstream."""
        client = flow.client_conn
        if isinstance(client.proxy_mode, ReverseMode):
            return None
        req = flow.request
        return names_disagree(
            req.host,
            req.port,
            req.scheme,
            host_header=header_value(req.headers, "host"),
            authority=req.authority or None,
            tunnel=self.tunnels.get(client) if self.tunnels else None,
            sni=client.sni if client.tls else None,
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        assert flow.response is not None
        if self.streams is not None and "text/event-stream" in (
            header_value(flow.response.headers, "content-type") or ""
        ):
            self.streams.responseheaders(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        assert flow.response is not None
        rest = self.rest.pop(flow.id, None)
        if rest is not None and self.judge is not None:
            latency = (time.perf_counter() - rest.started) * 1000
            outcome = Outcome(True, status=flow.response.status_code, latency_ms=latency)
            self.judge.gate.finish(rest.call, rest.verdict, outcome)
        if self.streams is not None:
            self.streams.response(flow)
        if flow.response.status_code != 101:
            self.ws.pop(flow.id, None)

    def error(self, flow: http.HTTPFlow) -> None:
        message = flow.error.msg if flow.error else "connection failed"
        rest = self.rest.pop(flow.id, None)
        if rest is not None and self.judge is not None:
            self.judge.gate.finish(rest.call, rest.verdict, Outcome(True, error=message))
        if self.streams is not None:
            self.streams.error(flow, message)
        self.ws.pop(flow.id, None)

    async def websocket_message(self, flow: http.HTTPFlow) -> None:
        """Each message from the agent is a judged, traced call; a refused one is dropped (see ws_judge)."""
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        if not message.from_client:
            return
        peer = self.ws.get(flow.id)
        if peer is None or self.judge is None:
            message.drop()  # type: ignore[no-untyped-call]  # nobody judged the upgrade: nothing flows
            return
        await judge_ws_message(self.judge, flow, peer, message)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self.ws.pop(flow.id, None)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        """Raw TCP is never judged: closed (an operator's `tcp_hosts` too; `ignore_hosts` never gets here)."""
        log.warning(
            "agent-mesh: closed a raw TCP connection to %s (nothing judges raw bytes)", flow.server_conn.address
        )
        flow.kill()  # type: ignore[no-untyped-call]

    # -- REST and MCP --------------------------------------------------------------------------------

    async def _rest(self, flow: http.HTTPFlow, identity: Identity, kind: RestCall, creq: Request) -> None:
        assert self.judge is not None
        assert self.loaded is not None
        unknown = self.loaded.config.proxy.unknown_hosts
        if not kind.known_host and unknown == "allow":
            return
        # The canonical request line (decoded path, method after overrides, body digest) the call is bound to.
        info = kind.http or _info(creq)
        session = identity.session or flow.client_conn.id
        call = ToolCall(identity.agent, kind.surface, kind.server, kind.tool, kind.arguments, session, info)
        if not kind.known_host and unknown == "deny":
            why = f"{creq.host} is not a configured server and proxy.unknown_hosts is deny"
            verdict = self.judge.gate.refuse("proxy.unknown_hosts", why)
        else:
            verdict = await self.judge.judge(flow, call)
        annotate(flow, [(call, verdict)])
        if verdict.allowed:
            self.rest[flow.id] = _Rest(call, verdict, time.perf_counter())
            return
        self.judge.gate.finish(call, verdict, Outcome(False))
        _answer(flow, refusal_answer(verdict, flow.request.headers.get("accept")))

    async def _mcp(self, flow: http.HTTPFlow, identity: Identity, body: McpBody, req: Request) -> None:
        assert self.mcp is not None
        assert self.streams is not None
        assert self.loaded is not None
        cap = self.loaded.config.proxy.max_batch
        if body.is_batch and len(body.messages) > cap:
            why = f"a JSON-RPC batch of {len(body.messages)} messages is over proxy.max_batch ({cap})"
            flow.response = http.Response.make(400, jsonrpc.dump(jsonrpc.error(None, _INVALID_REQUEST, why)), _JSON)
            flow.comment = f"{REFUSED_ICON} refused: {why}"
            flow.marked = REFUSED_MARK
            gate = self.judge.gate if self.judge else None
            record_refusal(gate, req, body.server, identity, flow.client_conn.id, why, "proxy.max_batch")
            return
        try:
            check_routing_headers(body.messages, req.headers)
        except ValueError as exc:
            header_mismatch(flow, body, str(exc))
            gate = self.judge.gate if self.judge else None
            record_refusal(gate, req, body.server, identity, flow.client_conn.id, str(exc), "proxy.header_mismatch")
            return
        session = self.streams.legacy_session(req.host, req.port, req.path)
        tracker = session or self.streams.new_tracker()
        # Tool annotations are believed only from configured MCP servers (McpHandler.trusted), each reached at
        # the address judged for it: never from a same-named host or another port.
        await self.mcp.handle(flow, identity, body, req.headers, tracker, legacy=session is not None, info=_info(req))
        if flow.response is None and session is None:
            self.streams.exchanges[flow.id] = tracker

    # -- identity and destinations -------------------------------------------------------------------

    def _identify(self, flow: http.HTTPFlow, header: str | None) -> Identity | None:
        """Who is calling (`header`: its Proxy-Authorization), with the proxy credentials removed from the
        request; None after answering 407."""
        identity = self._known.get(header) if header is not None else None
        try:
            if identity is None:
                identity = self.auth.identify(header)
                if header is not None:
                    if len(self._known) >= _KNOWN_CREDENTIALS:
                        self._known.clear()
                    self._known[header] = identity
        except AuthRequired as exc:
            flow.response = http.Response.make(
                407,
                problem(407, "proxy_auth", "Proxy authentication required", str(exc)).body,
                {"proxy-authenticate": f'Basic realm="{REALM}"', "content-type": "application/problem+json"},
            )
            return None
        if header is not None:
            remove_header(flow.request.headers, PROXY_AUTHORIZATION)
        return identity

    async def _addresses(self, host: str) -> tuple[Address, ...]:
        found = self.resolver.cached(host)
        return found if found is not None else await self.resolver.resolve(host)

    def _refusal(self, addresses: tuple[Address, ...], port: int) -> Refusal | None:
        if not self._proxy_known:
            self._proxy_known = True
            self.reach.set_proxy(_proxy_listen_addresses())
            self.reach.set_web(_web_listen_addresses())
        return self.reach.refusal(addresses, port)

    def _upstream_refusal(self, host: str, port: int, addresses: tuple[Address, ...]) -> Refusal | None:
        """A request addressed to where a server's calls are sent (servers.X.upstream) rather than to the server's
        public URL: judged there it would be another host's call, past the server's own rules. (Not checked at
        `server_connect`: the calls judged as the server's are sent there.)"""
        name = self.reach.upstream_of(addresses, port) if self.reach.upstreams else None
        if name is None or self.servers.match(host, port, "/", addresses).target is not None:
            return None  # not an upstream, or the address of a configured server too: judged as that server
        return Refusal(
            "upstream_direct",
            f"{host}:{port} is where server {name!r} is sent (servers.{name}.upstream): call it at its public URL, "
            "where its rules apply",
        )

    async def _listing_destination(self, flow: http.HTTPFlow, server: str) -> Destination:
        """Where the proxy's own tools/list for `server` goes: where this flow's call would (addons/mcp_learn)."""
        target = self.servers.by_name.get(server)
        upstream, base = (target.upstream, target.upstream_base) if target is not None else (None, "")
        return await destination(flow.request, flow.client_conn.id, upstream, base, self._judged_address)

    async def _judged_address(self, client: str, host: str, port: int) -> str:
        """The address `server_connect` would connect this client to (the pin, else resolved and checked)."""
        pinned = self._pins.get((client, host, port))
        addresses = (pinned,) if pinned is not None else await self._addresses(host)
        if not addresses:
            raise ValueError(f"{host!r} does not resolve")
        refused = self._refusal(addresses, port)
        if refused is not None:
            raise ValueError(f"the connection is refused ({refused.code}): {refused.detail}")
        return str(addresses[0])

    def _pin(self, client: str, host: str, port: int, match: Match) -> None:
        if match.address is None:
            return
        if len(self._pins) >= _PINS:
            self._pins.clear()
        self._pins[(client, host, port)] = match.address

    def _target(
        self, flow: http.HTTPFlow, host: str, port: int, path: str, addresses: tuple[Address, ...]
    ) -> Target | None:
        mode = flow.client_conn.proxy_mode
        if isinstance(mode, ReverseMode):
            name = self.reverse.get(mode.data)
            if name is not None:
                return self.servers.by_name.get(name) or Target(name, "")
        match = self.servers.match(host, port, path, addresses)
        self._pin(flow.client_conn.id, host, port, match)
        target = match.target
        if (
            target is not None
            and target.folder
            and (self.streams is None or self.streams.legacy_session(host, port, path) is None)
        ):
            # Beside an MCP URL, only an endpoint its event stream announced is that server's: anything else
            # there is a plain HTTP call to the origin, judged, never passed as MCP plumbing.
            return Target(match.origin, "")
        return target


def _proxy_listen_addresses() -> list[tuple[str, int]]:
    """Where this mitmproxy listens (from its proxyserver addon; none under a test harness)."""
    try:
        server = ctx.master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
    except Exception:  # no master (a bare test context)
        return []
    if server is None:
        return []
    out: list[tuple[str, int]] = []
    for addr in server.listen_addrs():
        out.append((str(addr[0]), int(addr[1])))
    return out


def _web_listen_addresses() -> list[tuple[str, int]]:
    """Where mitmweb's interface listens, under mitmweb (`serve --web`); none under mitmdump or a test harness."""
    try:
        host, port = ctx.options.web_host, ctx.options.web_port  # only mitmweb's options have them
    except (AttributeError, KeyError):
        return []
    return [(str(host), int(port))] if port else []


def parse_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:8181` -> ("127.0.0.1", 8181). Raises ValueError."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]").lower() or "127.0.0.1", int(port)


def parse_reverse(entries: Sequence[str]) -> dict[str, str]:
    """`NAME=URL` entries -> {URL: NAME}. Raises exceptions.OptionsError."""
    out: dict[str, str] = {}
    for entry in entries:
        name, eq, url = entry.partition("=")
        if not eq or not name or "://" not in url:
            raise exceptions.OptionsError(f"mesh_reverse: {entry!r} is not NAME=URL")  # type: ignore[no-untyped-call]
        out[url] = name
    return out


def _info(req: Request) -> HttpInfo:
    return HttpInfo(req.method, req.host, req.path.split("?", 1)[0], req.port, req.scheme)


def _answer(flow: http.HTTPFlow, answer: Answer) -> None:
    flow.response = http.Response.make(answer.status, answer.body, answer.headers)


def _refusal_answer(refused: Refusal) -> Answer:
    title = {
        "control_plane": "The control plane is not reachable through the proxy",
        "upstream_direct": "A server with an upstream is called at its public URL",
    }.get(refused.code, "The proxy does not forward requests to itself")
    return problem(403, refused.code, title, refused.detail)
