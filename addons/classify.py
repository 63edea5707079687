"""What an intercepted HTTP request is, decided from the config's servers (compiled once at load):
an OpenAPI operation, MCP JSON-RPC, plain HTTP to a named or unknown host, or MCP plumbing to pass."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from addons.mcp_messages import RpcMessage, looks_like_jsonrpc, parse_body
from addons.openapi_routes import Router, split_path
from addons.openapi_spec import ApiSpec, load_spec
from policy import Config
from policy.model import readonly

DEFAULT_PORTS = {"http": 80, "https": 443}


@readonly
class Target:
    """A configured upstream: where it lives and how to read its traffic."""

    server: str
    base_path: str
    router: Router | None = None
    is_mcp: bool = False


@readonly
class RestCall:
    """A REST request as a tool call: an OpenAPI operation, or `METHOD /path` on plain HTTP."""

    surface: Literal["openapi", "http"]
    server: str
    tool: str
    arguments: dict[str, Any]
    known_host: bool


@readonly
class McpBody:
    """A POSTed JSON-RPC body (one message or a batch) for an MCP server."""

    server: str
    messages: list[RpcMessage]
    is_batch: bool


@readonly
class Request:
    """The parts of an HTTP request classification looks at (`headers` keyed in lower case)."""

    method: str
    scheme: str
    host: str
    port: int
    path: str
    headers: Mapping[str, str]
    body: bytes


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


@dataclass(slots=True)
class ServerMap:
    """Configured servers by (host, port), each host's targets longest base path first."""

    by_origin: dict[tuple[str, int], list[Target]] = field(default_factory=dict)
    by_name: dict[str, Target] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls, config: Config, base_dir: str | Path = ".", load: Callable[[str, str | Path], ApiSpec] = load_spec
    ) -> ServerMap:
        """Compile `servers:`: specs are loaded and routed now. Raises ValueError naming the server."""
        out = cls()
        for name, spec in config.servers.items():
            try:
                out._add(name, spec.openapi, spec.base_url, spec.mcp_url, base_dir, load)
            except ValueError as exc:
                raise ValueError(f"servers.{name}: {exc}") from None
        for targets in out.by_origin.values():
            targets.sort(key=lambda t: len(t.base_path), reverse=True)
        return out

    def _add(
        self,
        name: str,
        openapi: str | None,
        base_url: str | None,
        mcp_url: str | None,
        base_dir: str | Path,
        load: Callable[[str, str | Path], ApiSpec],
    ) -> None:
        if mcp_url:
            host, port, _path = origin_of(mcp_url)
            self._register(name, host, port, Target(name, "", is_mcp=True))
        if openapi:
            api = load(openapi, base_dir)
            urls = [base_url] if base_url else [u for u in api.base_urls if "://" in u]
            if not urls:
                raise ValueError("the spec names no absolute server URL: set base_url")
            router = Router(api.operations)
            for url in urls:
                host, port, path = origin_of(url)
                self._register(name, host, port, Target(name, path, router))
        elif base_url:
            host, port, path = origin_of(base_url)
            self._register(name, host, port, Target(name, path))

    def _register(self, name: str, host: str, port: int, target: Target) -> None:
        self.by_origin.setdefault((host, port), []).append(target)
        self.by_name.setdefault(name, target)

    def lookup(self, host: str, port: int, path: str) -> Target | None:
        """The configured target serving this URL, or None for an unknown host."""
        targets = self.by_origin.get((host.lower(), port))
        if not targets:
            return None
        bare = path.split("?", 1)[0]
        for target in targets:
            bp = target.base_path
            if not bp or bare == bp or bare.startswith(bp + "/"):
                return target
        return None


def classify(req: Request, target: Target | None) -> RestCall | McpBody | None:
    """RestCall, McpBody, or None for MCP plumbing (stream GETs, session DELETEs) that carries no call.

    Raises ValueError for requests that cannot be judged (bad JSON-RPC, ambiguous paths, a JSON body
    that does not parse): those are refused, never forwarded unjudged.
    """
    ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if target is not None and target.router is not None:
        rel = req.path[len(target.base_path) :] or "/"
        match = target.router.match(req.method, rel)
        if match is not None:
            args = _request_args(req, ctype)
            args.update(match.path_params)
            return RestCall("openapi", target.server, match.operation.tool, args, True)
    if req.method == "POST" and _is_json(ctype) and looks_like_jsonrpc(req.body):
        messages, is_batch = parse_body(req.body)
        return McpBody(target.server if target else req.host, messages, is_batch)
    if target is not None and target.is_mcp:
        return None
    server = target.server if target else req.host
    split_path(req.path)
    tool = f"{req.method} {req.path.split('?', 1)[0]}"
    return RestCall("http", server, tool, _request_args(req, ctype), target is not None)


def _is_json(ctype: str) -> bool:
    return ctype == "application/json" or ctype.endswith("+json")


def _request_args(req: Request, ctype: str) -> dict[str, Any]:
    """Query parameters and the JSON (or form) body; a repeated query key becomes a list."""
    args: dict[str, Any] = {}
    if req.body:
        if _is_json(ctype):
            try:
                body = json.loads(req.body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"the request body is declared JSON but does not parse: {exc}") from None
            if isinstance(body, dict):
                args.update(body)
            else:
                args["body"] = body
        elif ctype == "application/x-www-form-urlencoded":
            _merge_pairs(args, parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
    if "?" in req.path:
        _merge_pairs(args, parse_qsl(req.path.split("?", 1)[1], keep_blank_values=True))
    return args


def _merge_pairs(args: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    seen: dict[str, list[str]] = {}
    for key, value in pairs:
        seen.setdefault(key, []).append(value)
    for key, values in seen.items():
        args[key] = values[0] if len(values) == 1 else values
