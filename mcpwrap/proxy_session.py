"""Tag the wrapped server's own HTTP(S) egress with mcpwrap's session, so the proxy's trace links them.

A server such as server-github calls its REST API through `HTTPS_PROXY`; rewriting the proxy user name to
`AGENT/SESSION` makes those proxied calls carry the same agent and session id as the MCP calls.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlsplit, urlunsplit

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
# The identity when no --agent is given: the same name the proxy uses for an unauthenticated agent.
DEFAULT_AGENT = "anonymous"


def new_session_id() -> str:
    """One session per mcpwrap process (ARCHITECTURE §7)."""
    return f"mcpwrap-{os.getpid()}-{secrets.token_hex(4)}"


def tag_proxy_url(url: str, agent: str, session: str, mesh_listen: str) -> str | None:
    """The proxy URL with user `agent/session`, or None when it is not the mesh's proxy for this agent.

    Only a URL whose user is already `agent` (credentials for the mesh), or one without credentials that
    points at the configured mesh proxy (`proxy.listen`), is changed: a foreign proxy keeps its own.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    user = unquote(parts.username) if parts.username is not None else None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port is not None else host
    if user is None:
        if netloc != mesh_listen:
            return None
    elif user.partition("/")[0] != agent:
        return None
    userinfo = quote(f"{agent}/{session}", safe="")
    if parts.password is not None:
        userinfo += ":" + parts.password
    return urlunsplit((parts.scheme, f"{userinfo}@{netloc}", parts.path, parts.query, parts.fragment))


def child_environment(env: Mapping[str, str], agent: str, session: str, mesh_listen: str) -> dict[str, str] | None:
    """The environment for the server, with mesh proxy URLs tagged; None when nothing changes (inherit)."""
    out = dict(env)
    changed = False
    for name in PROXY_VARS:
        value = env.get(name)
        if value:
            tagged = tag_proxy_url(value, agent, session, mesh_listen)
            if tagged is not None and tagged != value:
                out[name] = tagged
                changed = True
    return out if changed else None
