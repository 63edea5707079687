"""The `servers.X.upstream` URL (a staging host or a mock that stands in for a server's public URL), parsed
and checked at config load: pure, so the config's validation and the proxy read it the same way."""

from __future__ import annotations

from urllib.parse import urlsplit

from policy.core.model import readonly

DEFAULT_PORTS = {"http": 80, "https": 443}


@readonly
class Upstream:
    """Where a server's requests go: scheme, host, port, and a path prefix (no trailing slash)."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{name}{port}{self.path}"


def parse_upstream(url: str) -> Upstream:
    """`http://127.0.0.1:4010` -> Upstream. Raises ValueError naming what is wrong with it.

    Only a base to send requests to: no user info (credentials belong in the agent's request or a
    header rule), no query and no fragment (they would be merged into every request's own)."""
    if not isinstance(url, str) or not url:
        raise ValueError("upstream must be an http(s) URL")
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"upstream {url!r} is not an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"upstream {url!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"upstream {url!r} carries credentials: give the host only")
    if parts.query or parts.fragment or url.strip().endswith(("?", "#")):
        raise ValueError(f"upstream {url!r} has a query or fragment: give scheme, host, port and path only")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"upstream {url!r} has a bad port") from None
    path = parts.path.rstrip("/")
    if "%" in path or "\\" in path or any(seg in (".", "..") for seg in path.split("/")):
        raise ValueError(f"upstream {url!r}: write its path plainly (no %-escapes, '\\' or dot segments)")
    return Upstream(parts.scheme, parts.hostname.lower(), port, path)
