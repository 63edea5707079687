"""`servers.X.upstream`: a configured server is still identified (and judged) by its public URL, while the
requests judged as its calls are sent to another place: a staging host, or a mock (Prism) on loopback.

The rewrite happens after the judgment, so the agent's request line is what the policy saw, and the
upstream connection is checked like any other (`Governance.server_connect`: never the control plane, never
the proxy itself). The Host header (and HTTP/2 :authority) become the upstream's own `host[:port]`, the
name a staging or mock server answers to and the one its certificate is checked against.
"""

from __future__ import annotations

from mitmproxy import http

from addons.reach import Reach
from addons.servers import ServerMap
from policy.core.upstream_url import Upstream, parse_upstream

__all__ = [
    "ASKED",
    "Upstream",
    "asked_url",
    "check_upstreams",
    "parse_upstream",
    "send_upstream",
    "upstream_path",
    "uses_upstreams",
]

# flow.metadata key: the URL the agent asked for, (scheme, host, port, path) as read at `requestheaders`,
# before any rewrite (the operator's map_remote, a script, the upstream).
ASKED = "agent-mesh/asked"


def asked_url(flow: http.HTTPFlow) -> str:
    """The URL the agent asked for; the request's own when nothing was recorded (a flow made in a test)."""
    asked = flow.metadata.get(ASKED)
    if asked is None:
        return flow.request.url
    scheme, host, port, path = asked
    name = f"[{host}]" if ":" in host else host
    return f"{scheme}://{name}:{port}{path}"


def uses_upstreams(servers: ServerMap) -> bool:
    return bool(servers.upstreams)


def check_upstreams(servers: ServerMap, reach: Reach) -> None:
    """Refuse a config whose upstream is the control plane (or this proxy) in any spelling. Raises ValueError.

    Checked again on every connection (`server_connect`): serve's `--listen-control` and the proxy's own
    listen addresses are only known later."""
    for name, upstream in servers.upstreams.items():
        refused = reach.refusal(reach.resolver.now(upstream.host), upstream.port)
        if refused is not None:
            raise ValueError(f"servers.{name}.upstream: {upstream.url} is refused ({refused.code}): {refused.detail}")


def upstream_path(upstream: Upstream, base_path: str, path: str) -> str:
    """The request's path (query included) at the upstream: the server's base path (the part of its public
    URL after the host) is replaced by the upstream's path; a path outside it keeps its whole self."""
    if base_path and (path == base_path or path.startswith((base_path + "/", base_path + "?"))):
        path = path[len(base_path) :]
    if not path.startswith("/"):
        path = "/" + path
    return upstream.path + path if upstream.path else path


def send_upstream(request: http.Request, upstream: Upstream, base_path: str) -> None:
    """Point the (judged) request at the upstream; mitmproxy connects where the request says."""
    path = upstream_path(upstream, base_path, request.path)
    # Each setter updates the Host header (and :authority when the client sent one) to the new host:port.
    request.scheme = upstream.scheme
    request.host = upstream.host
    request.port = upstream.port
    request.path = path
