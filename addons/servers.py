"""The configured servers, compiled once at load: each is an endpoint (scheme, resolved addresses, port, path
prefix), so every spelling of its host (numeric forms, hosts-file aliases) finds the same server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from addons.addresses import Address, LocalAddresses, Resolver, canonical_host, host_key
from addons.addresses import numeric_address as numeric
from addons.openapi_routes import Router
from addons.openapi_spec import ApiSpec, load_spec
from addons.request_canon import RequestOptions
from policy import Config
from policy.core.model import readonly
from policy.core.upstream_url import Upstream, parse_upstream

DEFAULT_PORTS = {"http": 80, "https": 443}


@readonly
class Target:
    """A configured upstream: where it lives and how to read its traffic.

    `endpoint` (`scheme://address:port/path`) names it exactly, for what is learned from its answers
    (tool annotations); an empty one means "not a configured server": nothing it says is trusted.
    """

    server: str
    base_path: str
    router: Router | None = None
    is_mcp: bool = False
    endpoint: str = ""
    # An MCP server's claim on its URL's folder, beside the exact path: only for the endpoints its 2024-11-05
    # event stream announces (the addon checks), so other paths there are never waved through as plumbing.
    folder: bool = False
    # `servers.X.upstream`: where the requests judged as this server's calls are sent (None: where they asked),
    # and the part of the path the upstream's own path replaces (the base path of a REST URL; none for MCP).
    upstream: Upstream | None = None
    upstream_base: str = ""


@readonly
class Match:
    """Where a request goes: the target (None for an unknown host) and the address it was judged at."""

    target: Target | None
    address: Address | None
    origin: str = ""  # the configured origin's name (for a request outside every configured path)


def origin_of(url: str) -> tuple[str, int, str]:
    """`https://api.example.com/v1` -> ("api.example.com", 443, "/v1"). Raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"{url!r} has a bad port") from None
    return parts.hostname.lower(), port, parts.path.rstrip("/")


def routing_path(path: str) -> str:
    """The path as upstream routers match it (percent-decoded, no query). Raises ValueError when decoding
    changes where it routes: an encoded `/` or `\\`, a NUL, or a dot segment."""
    bare = path.split("?", 1)[0]
    if "%" not in bare:
        decoded = bare
    else:
        lowered = bare.lower()
        if "%2f" in lowered or "%5c" in lowered or "%00" in lowered:
            raise ValueError(f"the path {bare!r} encodes '/', '\\' or NUL, which upstreams route differently")
        decoded = unquote(bare, errors="strict")
    if "\\" in decoded or "\x00" in decoded:
        raise ValueError(f"the path {bare!r} holds '\\' or NUL, which upstreams route differently")
    if "/." in decoded and any(seg in (".", "..") for seg in decoded.split("/")):
        raise ValueError(f"the path {bare!r} has a dot segment, which upstreams resolve differently")
    return decoded


@dataclass(slots=True)
class ServerMap:
    """Configured servers by (host key, port): each name and each of its resolved addresses is a key; a key's
    targets are sorted longest path prefix first."""

    by_origin: dict[tuple[str, int], list[Target]] = field(default_factory=dict)
    by_name: dict[str, Target] = field(default_factory=dict)
    # The origin's own spelling, for requests to a configured origin outside every configured path.
    origin_names: dict[tuple[str, int], str] = field(default_factory=dict)
    options: dict[str, RequestOptions] = field(default_factory=dict)  # how each upstream parses requests
    resolver: Resolver = field(default_factory=Resolver)
    # Ports of servers configured on this machine (loopback or a local interface) -> their origin key: 0.0.0.0,
    # another loopback address or the machine's own address on that port reaches the same listener.
    local_ports: dict[int, str] = field(default_factory=dict)
    local: LocalAddresses = field(default_factory=LocalAddresses)
    upstreams: dict[str, Upstream] = field(default_factory=dict)  # servers.X.upstream by server name

    @classmethod
    def from_config(
        cls,
        config: Config,
        base_dir: str | Path = ".",
        load: Callable[[str, str | Path], ApiSpec] = load_spec,
        resolver: Resolver | None = None,
    ) -> ServerMap:
        """Compile `servers:`: specs are loaded and routed, hosts resolved now. Raises ValueError naming the server."""
        out = cls(resolver=resolver or Resolver())
        for name, spec in config.servers.items():
            try:
                upstream = parse_upstream(spec.upstream) if spec.upstream else None
                if upstream is not None:
                    out.upstreams[name] = upstream
                out._add(name, spec.openapi, spec.base_url, spec.mcp_url, base_dir, load, upstream)
            except ValueError as exc:
                raise ValueError(f"servers.{name}: {exc}") from None
            if spec.method_override or spec.precedence is not None:
                out.options[name] = RequestOptions(spec.method_override, spec.precedence)
        for key, targets in out.by_origin.items():
            out.by_origin[key] = _unshared(targets)
        return out

    def _add(
        self,
        name: str,
        openapi: str | None,
        base_url: str | None,
        mcp_url: str | None,
        base_dir: str | Path,
        load: Callable[[str, str | Path], ApiSpec],
        upstream: Upstream | None = None,
    ) -> None:
        if mcp_url:
            self._register(name, mcp_url, None, is_mcp=True, upstream=upstream)
        if openapi:
            api = load(openapi, base_dir)
            urls = [base_url] if base_url else [u for u in api.base_urls if "://" in u]
            if not urls:
                raise ValueError("the spec names no absolute server URL: set base_url")
            router = Router(api.operations)
            for url in urls:
                self._register(name, url, router, upstream=upstream)
        elif base_url:
            self._register(name, base_url, None, upstream=upstream)

    def _register(
        self, name: str, url: str, router: Router | None, *, is_mcp: bool = False, upstream: Upstream | None = None
    ) -> None:
        host, port, path = origin_of(url)
        scheme = urlsplit(url).scheme
        key = canonical_host(host)
        endpoint = f"{scheme}://{key}:{port}{path}"
        # A REST server's base path is replaced by the upstream's path (a mock serves the spec at its root);
        # an MCP endpoint keeps its path (its folder holds the legacy transport's other endpoints too).
        base = "" if is_mcp else path
        target = Target(name, path, router, is_mcp, endpoint, upstream=upstream, upstream_base=base)
        found = [target]
        if is_mcp and path:
            # An MCP server also owns its URL's folder: the legacy SSE transport posts to /messages/ beside
            # /sse. Two servers sharing one folder keep only their exact paths (see _unshared).
            folder = Target(name, path.rsplit("/", 1)[0], None, True, endpoint, folder=True, upstream=upstream)
            found.append(folder)
        addresses = self.resolver.now(host)
        for k in (key, *(str(a) for a in addresses)):
            targets = self.by_origin.setdefault((k, port), [])
            targets.extend(t for t in found if t not in targets)
            self.origin_names.setdefault((k, port), key)
        if any(a in self.local for a in addresses):
            self.local_ports.setdefault(port, str(next(a for a in addresses if a in self.local)))
        self.by_name.setdefault(name, target)

    def lookup(self, host: str, port: int, path: str) -> Target | None:
        """The configured target serving this URL, or None for an unknown host (names resolved from the
        cache only: `match` resolves). Raises ValueError for a path whose routing is ambiguous."""
        return self.match(host, port, path, self.resolver.cached(host) or ()).target

    def match(self, host: str, port: int, path: str, addresses: Iterable[Address]) -> Match:
        """The target for a request to `host` (resolved to `addresses`), and the address it was judged at.

        The host's own spelling is tried first, then each address: `localhost`, `127.1` and `2130706433` all
        find a server configured at 127.0.0.1. A configured origin outside every configured path prefix is
        still that origin (judged under its host name), never an unknown host.
        """
        addrs = addresses if isinstance(addresses, tuple) else tuple(addresses)
        first = addrs[0] if addrs else None
        key = host_key(host)
        if (key, port) in self.by_origin:
            return self._found(key, port, path, first)
        for addr in addrs:
            if (str(addr), port) in self.by_origin:
                return self._found(str(addr), port, path, addr)
        local = self.local_ports.get(port)
        if local is not None:
            for addr in addrs:
                if addr in self.local:
                    # Another spelling of this machine (0.0.0.0, 127.0.0.2, its own address) on the port of a
                    # server configured here: judged as that server, connected at its configured address.
                    return self._found(local, port, path, numeric(local))
        return Match(None, first)

    def _found(self, key: str, port: int, path: str, address: Address | None) -> Match:
        origin = self.origin_names[(key, port)]
        return Match(self._by_path(self.by_origin[(key, port)], path) or Target(origin, ""), address, origin)

    def _by_path(self, targets: list[Target], path: str) -> Target | None:
        bare = routing_path(path)
        for target in targets:
            bp = target.base_path
            if not bp or bare == bp:
                return target
            # An MCP URL is one endpoint (a trailing slash aside): `/mcp/admin` is not the server at `/mcp`.
            exact = target.is_mcp and not target.folder and target.router is None
            if bare.startswith(bp + "/") and (not exact or bare == bp + "/"):
                return target
        for target in targets:  # Express routes case-insensitively: `/MCP` reaches the server at `/mcp` there
            bp = target.base_path
            head = bare[: len(bp)]
            if bp and head != bp and head.lower() == bp.lower() and bare[len(bp) : len(bp) + 1] in ("", "/"):
                raise ValueError(f"the path {bare!r} is under {target.base_path!r} but for letter case")
        return None


def _unshared(targets: list[Target]) -> list[Target]:
    """Longest path first; an MCP folder claimed by two servers is nobody's (only exact paths count there)."""
    claims: dict[str, set[str]] = {}
    for t in targets:
        claims.setdefault(t.base_path, set()).add(t.server)
    kept = [t for t in targets if not (t.folder and len(claims[t.base_path]) > 1)]
    return sorted(kept, key=lambda t: len(t.base_path), reverse=True)
