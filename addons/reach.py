"""Where a proxied request may go: its names must agree (URL, Host, :authority, CONNECT target, SNI), and no
spelling of an address may reach the control plane or the proxy itself."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from addons.addresses import Address, Listener, LocalAddresses, Resolver, host_key
from policy.core.model import readonly

DEFAULT_PORTS = {"http": 80, "https": 443}


@readonly
class Refusal:
    """Why a destination is refused: `code` (control_plane, proxy_loop, host_mismatch) and a sentence."""

    code: str
    detail: str


@functools.lru_cache(maxsize=4096)
def split_authority(value: str, scheme: str) -> tuple[str, int]:
    """`host[:port]` (IPv6 in brackets) -> (host key, port). Raises ValueError."""
    text = value.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{value!r}: unclosed '['")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{value!r} is not host[:port]")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    if not host or any(c in host for c in "/@ \t"):
        raise ValueError(f"{value!r} is not host[:port]")
    if not port_text:
        return host_key(host), DEFAULT_PORTS.get(scheme, 80)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{value!r} has a bad port")
    return host_key(host), int(port_text)


def names_disagree(
    host: str,
    port: int,
    scheme: str,
    *,
    host_header: str | None,
    authority: str | None,
    tunnel: tuple[str, int] | None,
    sni: str | None,
) -> str | None:
    """A sentence when any name the request carries differs from the target it is judged for, else None.

    The upstream picks its virtual host from Host / :authority and its certificate from SNI: each must
    name the judged host and port, or the call runs somewhere the policy never looked at."""
    want = (host_key(host), port)
    for label, value in (("Host header", host_header), (":authority", authority)):
        if value is None or value == "" or (label == ":authority" and value == host_header):
            continue  # the same text as the Host header (HTTP/1's absolute form): already read, same answer
        try:
            got = split_authority(value, scheme)
        except ValueError as exc:
            return f"the {label} is malformed: {exc}"
        if got != want:
            return f"the {label} names {value!r}, but the request goes to {host}:{port}"
    if tunnel is not None and (host_key(tunnel[0]), tunnel[1]) != want:
        return f"the request names {host}:{port} inside a tunnel opened to {tunnel[0]}:{tunnel[1]}"
    if sni is not None and host_key(sni) != want[0]:
        return f"the TLS server name {sni!r} differs from the request's host {host!r}"
    return None


class Reach:
    """The control plane and the proxy's own listen addresses, resolved once per configuration."""

    def __init__(self, resolver: Resolver, local: LocalAddresses | None = None) -> None:
        self.resolver = resolver
        self.local = local or LocalAddresses()
        self.control: Listener | None = None
        self.proxy: list[Listener] = []
        self.upstreams: list[tuple[str, Listener]] = []  # (server name, where servers.X.upstream sends its calls)
        self.web: list[Listener] = []  # mitmweb's interface (`serve --web`): it resumes held calls

    def set_control(self, listen: tuple[str, int] | None) -> None:
        self.control = None if listen is None else self.listener(*listen)

    def set_proxy(self, addresses: Iterable[tuple[str, int]]) -> None:
        self.proxy = [self.listener(host or "0.0.0.0", port) for host, port in addresses]

    def set_web(self, addresses: Iterable[tuple[str, int]]) -> None:
        self.web = [self.listener(host or "0.0.0.0", port) for host, port in addresses]

    def set_upstreams(self, upstreams: Iterable[tuple[str, str, int]]) -> None:
        """(server, host, port) of each `servers.X.upstream`: resolved once, like the control plane."""
        self.upstreams = [(name, self.listener(host, port)) for name, host, port in upstreams]

    def upstream_of(self, addresses: tuple[Address, ...], port: int) -> str | None:
        """The server whose upstream this destination is, in any spelling of its address (None: no server's)."""
        for name, listener in self.upstreams:
            if listener.reached_by(addresses, port):
                return name
        return None

    def listener(self, host: str, port: int) -> Listener:
        found = self.resolver.now(host or "0.0.0.0")
        if not found:
            raise ValueError(f"{host!r} does not resolve to an address")
        return Listener(found, port, self.local)

    def refusal(self, addresses: tuple[Address, ...], port: int) -> Refusal | None:
        """control_plane / proxy_loop when the destination is one of them (or mitmweb's interface) in any spelling."""
        if self.control is not None and self.control.reached_by(addresses, port):
            return Refusal("control_plane", "agents cannot reach agent-mesh's control plane: approvals are for humans")
        for listener in self.proxy:
            if listener.reached_by(addresses, port):
                return Refusal("proxy_loop", "the request is addressed to this proxy itself")
        for listener in self.web:
            if listener.reached_by(addresses, port):
                return Refusal(
                    "control_plane", "agents cannot reach mitmweb's interface: resuming held calls is for humans"
                )
        return None
