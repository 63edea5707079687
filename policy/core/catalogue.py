"""The tool catalogue: which servers and tools a mesh knows, so `agent-mesh check` can say a rule names none.

A server is known when `servers:` lists it. Its tools are known when they can be read without the network:
an OpenAPI spec in a local file (policy/core/openapi_spec.py names each operation's tool), or tools an
adapter discovered and pinned (the caller adds them with `add`). A spec at a URL is not fetched (the check
would need the network and a reachable host): its server's tools stay unknown and any tool name under it
passes. A server whose tools are unknown (a named MCP server, a CLI) matches any tool name under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from policy.core.config import Config
from policy.core.openapi_spec import is_url, load_spec


@dataclass(frozen=True, slots=True)
class SpecTrouble:
    """A server's spec that could not be read for its tool names (the check warns, at servers.NAME.openapi)."""

    server: str
    message: str


@dataclass(slots=True)
class ToolCatalogue:
    """Known servers -> their known tool names (None: the server is known, its tools are not)."""

    servers: dict[str, frozenset[str] | None] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # server -> where its tool names came from
    troubles: list[SpecTrouble] = field(default_factory=list)

    def add(self, server: str, tools: Iterable[str], origin: str) -> None:
        """Tools known for a server (from a spec or from discovery); adding makes the server known."""
        before = self.servers.get(server) or frozenset()
        self.servers[server] = before | frozenset(tools)
        self.origins[server] = f"{self.origins[server]}, {origin}" if server in self.origins else origin

    def add_server(self, server: str) -> None:
        """A server known by name only: any tool name under it is accepted."""
        self.servers.setdefault(server, None)

    def tools_of(self, server: str) -> frozenset[str] | None:
        return self.servers.get(server)


def catalogue_for(config: Config, base_dir: str | Path) -> ToolCatalogue:
    """The catalogue of a config's `servers:`: each is known; an OpenAPI spec in a local file (relative to
    base_dir, the config file's folder) gives its tool names. Reads only those files."""
    cat = ToolCatalogue()
    for name, spec in config.servers.items():
        if not spec.openapi or is_url(spec.openapi):
            cat.add_server(name)  # a URL is not fetched: tools unknown, any name under it passes
            continue
        try:
            api = load_spec(spec.openapi, base_dir)
        except ValueError as exc:
            cat.add_server(name)
            cat.troubles.append(SpecTrouble(name, str(exc)))
            continue
        cat.add(name, (op.tool for op in api.operations), f"OpenAPI spec {spec.openapi}")
    return cat
