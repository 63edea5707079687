"""The mitmproxy addon: every intercepted request becomes ToolCalls judged by the Gate, then is forwarded,
held, or answered in the agent's own protocol (problem+json for REST, JSON-RPC results for MCP)."""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
import weakref
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mitmproxy import command, connection, contentviews, ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ReverseMode

from addons.classify import McpBody, Request, RestCall, ServerMap, Target, classify
from addons.http_answers import Answer, problem, refusal_answer
from addons.judging import Judge, annotate
from addons.mcp_flow import (
    PROXY_AUTHORIZATION,
    McpHandler,
    header_mismatch,
    header_value,
    lower_headers,
    remove_header,
)
from addons.mcp_messages import check_routing_headers
from addons.mcp_streams import McpStreams
from addons.mcp_view import McpView
from addons.proxy_auth import REALM, AgentAuth, AuthRequired, Identity
from policy import (
    Action,
    ConfigError,
    Decision,
    Gate,
    HttpInfo,
    LoadedConfig,
    Outcome,
    ToolCall,
    Verdict,
    VerdictKind,
    load_config,
)

log = logging.getLogger("agent_mesh.proxy")

GateFactory = Callable[[LoadedConfig], Gate]
# Accepted credential headers remembered (config lifetime), so each request skips base64 and the compare.
_KNOWN_CREDENTIALS = 1024
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


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

    def __init__(self, gate_factory: GateFactory = _default_gate) -> None:
        self._gate_factory = gate_factory
        self.judge: Judge | None = None
        self.loaded: LoadedConfig | None = None
        self.servers = ServerMap()
        self.auth = AgentAuth({})
        self.mcp: McpHandler | None = None
        self.reverse: dict[str, str] = {}
        self.control: tuple[str, int] | None = None
        self.identities: MutableMapping[connection.Client, Identity] = weakref.WeakKeyDictionary()
        self.rest: dict[str, _Rest] = {}
        self.streams: McpStreams | None = None
        self._view = McpView()
        self._known: dict[str, Identity] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    def load(self, loader: object) -> None:
        add = loader.add_option  # type: ignore[attr-defined]
        add("mesh_config", str, "", "agent-mesh config file (default: $AGENT_MESH_CONFIG, ./agent-mesh.yaml).")
        add("mesh_reverse", Sequence[str], [], "NAME=URL: traffic of the reverse listener to URL is server NAME.")
        contentviews.add(self._view)

    def configure(self, updated: set[str]) -> None:
        if "mesh_config" in updated or self.judge is None:
            self._open(ctx.options.mesh_config or None)
        if "mesh_reverse" in updated:
            self.reverse = parse_reverse(ctx.options.mesh_reverse)

    def _open(self, path: str | None) -> None:
        try:
            loaded = load_config(path)
            base_dir = Path(loaded.file).parent if not loaded.file.startswith("<") else Path(".")
            servers = ServerMap.from_config(loaded.config, base_dir)
            control = parse_listen(loaded.config.control.listen)
        except (ConfigError, ValueError) as exc:
            raise exceptions.OptionsError(f"agent-mesh: {exc}") from None  # type: ignore[no-untyped-call]
        old = self.judge
        self.loaded = loaded
        self.servers = servers
        self.control = control
        self.auth = AgentAuth.from_config(loaded.config)
        self._known = {}
        self.judge = Judge(self._gate_factory(loaded))
        self.mcp = McpHandler(self.judge, loaded.config.mcp.refuse_as)
        if self.streams is not None:
            self.streams.close("the configuration was reloaded")
        self.streams = McpStreams(self.judge.gate.finish, self.mcp.visible)
        if old is not None:
            ctx.master.event_loop.create_task(old.gate.aclose())
        log.info("agent-mesh: governing with %s (%d servers)", loaded.file, len(loaded.config.servers))

    async def done(self) -> None:
        if self.streams is not None:
            self.streams.close("the proxy shut down")
        if self.judge is not None:
            await self.judge.gate.aclose()
            self.judge = None

    # -- commands ----------------------------------------------------------------------------------

    @command.command("mesh.approve")  # type: ignore[untyped-decorator]
    def approve(self, approval_id: str) -> str:
        """Approve a held call (the id shown in the flow's comment)."""
        return self._judge().decide(approval_id, approve=True, by="human:mitmproxy", reason="mesh.approve")

    @command.command("mesh.deny")  # type: ignore[untyped-decorator]
    def deny(self, approval_id: str) -> str:
        """Deny a held call (the id shown in the flow's comment)."""
        return self._judge().decide(approval_id, approve=False, by="human:mitmproxy", reason="mesh.deny")

    def _judge(self) -> Judge:
        if self.judge is None:
            raise exceptions.CommandError("agent-mesh is not configured")
        return self.judge

    # -- hooks -----------------------------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        identity = self._identify(flow, flow.request.headers.get(PROXY_AUTHORIZATION))
        if identity is None:
            return
        if self._is_control_plane(flow.request.host, flow.request.port):
            _answer(flow, _control_plane_answer())
            return
        self.identities[flow.client_conn] = identity

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
        # Only CONNECTed clients have one; the lookup builds a weak reference, so skip it when there is none.
        known = self.identities.get(flow.client_conn) if self.identities else None
        identity = known or self._identify(flow, headers.get(PROXY_AUTHORIZATION))
        if identity is None:
            return
        headers.pop(PROXY_AUTHORIZATION, None)
        host, port, path = req.host, req.port, req.path
        if self._is_control_plane(host, port):
            _answer(flow, _control_plane_answer())
            return
        try:
            # Without a content-encoding, the content is the raw content: skip mitmproxy's header lookup.
            content = (req.content if headers.get("content-encoding") else req.raw_content) or b""
        except ValueError as exc:
            _answer(flow, problem(400, "bad_request", "Unreadable request body", str(exc)))
            return
        limit = self.loaded.config.proxy.max_body_bytes
        if len(content) > limit:
            _answer(flow, problem(413, "too_large", "Request too large to judge", f"bodies over {limit} bytes"))
            return
        creq = Request(req.method, req.scheme, host, port, path, headers, content)
        try:
            target = self._target(flow, host, port, path)
            kind = classify(creq, target, self.servers.options.get(target.server) if target else None)
        except ValueError as exc:
            _answer(flow, problem(400, "bad_request", "Request cannot be judged", str(exc)))
            return
        if isinstance(kind, RestCall):
            await self._rest(flow, identity, kind)
        elif isinstance(kind, McpBody):
            await self._mcp(flow, identity, kind, creq)

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

    def error(self, flow: http.HTTPFlow) -> None:
        message = flow.error.msg if flow.error else "connection failed"
        rest = self.rest.pop(flow.id, None)
        if rest is not None and self.judge is not None:
            self.judge.gate.finish(rest.call, rest.verdict, Outcome(True, error=message))
        if self.streams is not None:
            self.streams.error(flow, message)

    # -- REST and MCP --------------------------------------------------------------------------------

    async def _rest(self, flow: http.HTTPFlow, identity: Identity, kind: RestCall) -> None:
        assert self.judge is not None
        assert self.loaded is not None
        unknown = self.loaded.config.proxy.unknown_hosts
        if not kind.known_host and unknown == "allow":
            return
        req = flow.request
        # The canonical request line (decoded path, method after overrides, body digest) the call is bound to.
        info = kind.http or HttpInfo(req.method, req.host, req.path.split("?", 1)[0])
        session = identity.session or flow.client_conn.id
        call = ToolCall(identity.agent, kind.surface, kind.server, kind.tool, kind.arguments, session, info)
        if not kind.known_host and unknown == "deny":
            verdict = _unknown_host_verdict(req.host)
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
        try:
            check_routing_headers(body.messages, req.headers)
        except ValueError as exc:
            header_mismatch(flow, body, str(exc))
            return
        session = self.streams.legacy_session(req.host, req.port, req.path)
        tracker = session or self.streams.new_tracker()
        info = HttpInfo(req.method, req.host, req.path.split("?", 1)[0])
        await self.mcp.handle(flow, identity, body, req.headers, tracker, legacy=session is not None, info=info)
        if flow.response is None and session is None:
            self.streams.exchanges[flow.id] = tracker

    # -- identity and targets ----------------------------------------------------------------------

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

    def _target(self, flow: http.HTTPFlow, host: str, port: int, path: str) -> Target | None:
        mode = flow.client_conn.proxy_mode
        if isinstance(mode, ReverseMode):
            name = self.reverse.get(mode.data)
            if name is not None:
                return self.servers.by_name.get(name) or Target(name, "")
        return self.servers.lookup(host, port, path)

    def _is_control_plane(self, host: str, port: int) -> bool:
        if self.control is None or port != self.control[1]:
            return False
        name = host.strip("[]").lower()
        if name == self.control[0] or name in _LOOPBACK_NAMES:
            return True
        try:
            addr = ipaddress.ip_address(name)
        except ValueError:
            return False
        return addr.is_loopback or addr.is_unspecified


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


def _answer(flow: http.HTTPFlow, answer: Answer) -> None:
    flow.response = http.Response.make(answer.status, answer.body, answer.headers)


def _control_plane_answer() -> Answer:
    return problem(
        403,
        "control_plane",
        "The control plane is not reachable through the proxy",
        "agents cannot reach agent-mesh's control plane: approvals are for humans",
    )


def _unknown_host_verdict(host: str) -> Verdict:
    reason = f"{host} is not a configured server and proxy.unknown_hosts is deny"
    decision = Decision(Action.DENY, "proxy.unknown_hosts", reason)
    return Verdict(VerdictKind.DENY, decision, "default", reason, uuid.uuid4().hex)
