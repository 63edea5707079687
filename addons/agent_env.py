"""The environment an agent needs to send its HTTP(S) through the mesh and trust the mesh's CA, in the
variables each client reads (curl, requests, httpx, Node), printed for bash, fish or JSON."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from urllib.parse import quote

from policy import Config

SHELLS = ("bash", "fish", "json")


def proxy_url(config: Config, agent: str, listen: str) -> str:
    """`http://agent:token@host:port`. Raises ValueError for an agent `agents:` does not list."""
    if config.agents and agent not in config.agents:
        known = ", ".join(sorted(config.agents))
        raise ValueError(f"agent {agent!r} is not in agents: (known: {known})")
    spec = config.agents.get(agent)
    token = spec.token if spec else None
    userinfo = quote(agent, safe="")
    if token:
        userinfo += ":" + quote(token, safe="")
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{userinfo}@{host}:{port}"


def agent_env(config: Config, agent: str, listen: str, bundle: Path) -> dict[str, str]:
    """Every variable, upper and lower case where clients differ (curl reads only `http_proxy`)."""
    url = proxy_url(config, agent, listen)
    ca = str(bundle)
    return {
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
