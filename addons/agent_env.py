"""The environment an agent needs to send its HTTP(S) through the mesh and trust the mesh's CA, in the
variables each client reads (curl, requests, httpx, Node), printed for bash, fish or JSON."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from urllib.parse import quote

from policy import Config
from policy.core.secrets import reveal

SHELLS = ("bash", "fish", "json")
SESSION_MAX = 64
SESSION_PUNCTUATION = "._-"  # not ":": Basic credentials end the user name at the first colon


def parse_session(name: str) -> str:
    """A session name for `env --session`: 1-64 letters, digits or `._-`. Raises ValueError.

    It travels as the proxy user `AGENT/SESSION`, so a `/` (the separator) or anything a URL or a trace
    reader could misread is refused rather than escaped."""
    if not name:
        raise ValueError("a session name cannot be empty")
    if len(name) > SESSION_MAX:
        raise ValueError(f"a session name has at most {SESSION_MAX} characters (got {len(name)})")
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in SESSION_PUNCTUATION))})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(f"a session name uses letters, digits and {SESSION_PUNCTUATION} only (not {shown})")
    return name


def proxy_url(config: Config, agent: str, listen: str, session: str | None = None) -> str:
    """`http://agent:token@host:port` (user `agent/session` with a session). Raises ValueError for an agent
    `agents:` does not list, or a malformed session name."""
    if config.agents and agent not in config.agents:
        known = ", ".join(sorted(config.agents))
        raise ValueError(f"agent {agent!r} is not in agents: (known: {known})")
    spec = config.agents.get(agent)
    token = reveal(spec.token) if spec else None  # a {$env}/{$file} secret is read for this agent only
    userinfo = quote(agent if session is None else f"{agent}/{parse_session(session)}", safe="")
    if token:
        userinfo += ":" + quote(token, safe="")
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{userinfo}@{host}:{port}"


def agent_env(config: Config, agent: str, listen: str, bundle: Path, session: str | None = None) -> dict[str, str]:
    """Every variable, upper and lower case where clients differ (curl reads only `http_proxy`); with a
    session, the proxy user tags every call with it and AGENT_MESH_SESSION names it for scripts."""
    url = proxy_url(config, agent, listen, session)
    ca = str(bundle)
    tag = {} if session is None else {"AGENT_MESH_SESSION": session}
    return {
        **tag,
        "HTTPS_PROXY": url,
        "HTTP_PROXY": url,
        "https_proxy": url,
        "http_proxy": url,
        # An inherited NO_PROXY=localhost would let loopback traffic bypass the mesh.
        "NO_PROXY": "",
        "no_proxy": "",
        "SSL_CERT_FILE": ca,
        "REQUESTS_CA_BUNDLE": ca,
        "CURL_CA_BUNDLE": ca,
        "NODE_EXTRA_CA_CERTS": ca,
        "NODE_USE_ENV_PROXY": "1",
    }


def render(env: dict[str, str], shell: str) -> str:
    """The variables as `export` lines (bash/zsh), `set -gx` lines (fish) or a JSON object."""
    if shell == "json":
        return json.dumps(env, indent=2)
    if shell == "fish":
        return "\n".join(f"set -gx {k} {shlex.quote(v)}" for k, v in env.items())
    if shell == "bash":
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    raise ValueError(f"shell {shell!r} is not one of {', '.join(SHELLS)}")
