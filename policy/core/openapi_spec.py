"""OpenAPI documents (3.0, 3.1, Swagger 2.0; JSON or YAML) reduced to what governance needs: each operation's
method, path template and tool name, and the API's base URLs.

Pure core: a local file is read here; a spec at a URL needs a `fetch` from the caller (addons/openapi_spec.py
passes one over httpx), so the core never opens a connection (`agent-mesh check` reads local specs only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from policy.core.textfile import read_bounded

# The largest public specs (GitHub's REST description) are some tens of MB; far above that is no spec.
MAX_SPEC_BYTES = 256 * 1024 * 1024
METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
READ_METHODS = frozenset({"GET", "HEAD"})
_VARIABLE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: `tool` is its operationId, or `METHOD /template` when the spec gives none."""

    method: str
    template: str
    operation_id: str | None
    # Query and form parameters the operation declares as arrays: only these may repeat in a request.
    arrays: frozenset[str] = frozenset()

    @property
    def tool(self) -> str:
        return self.operation_id or f"{self.method} {self.template}"


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """The parts of an OpenAPI document that classify traffic."""

    source: str
    title: str
    spec_version: str
    base_urls: tuple[str, ...]
    operations: tuple[Operation, ...]


Fetch = Callable[[str], str]  # URL -> the document's text; raises ValueError


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def read_spec_text(location: str, base_dir: str | Path = ".", fetch: Fetch | None = None) -> str:
    """The document's text from a file (relative to base_dir), or from an http(s) URL through `fetch`.

    Raises ValueError; a URL without a `fetch` is refused (the core reads local files only)."""
    if is_url(location):
        if fetch is None:
            raise ValueError(f"OpenAPI spec {location} is a URL: only a local file is read here")
        return fetch(location)
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    try:  # bounded: a FIFO or /dev/zero in the spec's place must not hang the proxy's (re)configure
        return read_bounded(str(path), MAX_SPEC_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ValueError(f"OpenAPI spec {path}: no such file") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError, not a regular file, too large
        raise ValueError(f"OpenAPI spec {path}: cannot read: {exc}") from None


def parse_document(text: str, source: str) -> dict[str, Any]:
    """JSON or YAML text -> the document mapping. Raises ValueError."""
    stripped = text.lstrip()
    try:
        doc = json.loads(text) if stripped.startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"OpenAPI spec {source}: not JSON or YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"OpenAPI spec {source}: the document must be a mapping")
    return doc


def parse_spec(doc: Mapping[str, Any], source: str) -> ApiSpec:
    """Reduce a parsed OpenAPI 3.x or Swagger 2.0 document to an ApiSpec. Raises ValueError."""
    if isinstance(doc.get("openapi"), str) and doc["openapi"].startswith("3."):
        version = doc["openapi"]
        base_urls = _servers_3x(doc.get("servers"), source)
    elif str(doc.get("swagger")) == "2.0":
        version = "2.0"
        base_urls = _servers_2(doc)
    else:
        raise ValueError(f"OpenAPI spec {source}: neither `openapi: 3.x` nor `swagger: '2.0'`")
    paths = doc.get("paths")
    if paths is None:
        paths = {}
    if not isinstance(paths, Mapping):
        raise ValueError(f"OpenAPI spec {source}: `paths` must be a mapping")
    ops: list[Operation] = []
    for template, item in paths.items():
        if not isinstance(template, str) or not template.startswith("/"):
            raise ValueError(f"OpenAPI spec {source}: path {template!r} must start with '/'")
        if not isinstance(item, Mapping):
            continue
        for key, op in item.items():
            method = str(key).upper()
            if method not in METHODS or not isinstance(op, Mapping):
                continue
            op_id = op.get("operationId")
            arrays = _array_params(doc, item.get("parameters"), op.get("parameters"))
            ops.append(Operation(method, template, op_id if isinstance(op_id, str) and op_id else None, arrays))
    info = doc.get("info")
    title = str(info.get("title", "")) if isinstance(info, Mapping) else ""
    return ApiSpec(source, title, version, base_urls, tuple(ops))


def _array_params(doc: Mapping[str, Any], *lists: Any) -> frozenset[str]:
    """Names of the query/form parameters declared `type: array` (inline or a local `$ref`)."""
    names: set[str] = set()
    for params in lists:
        for param in params if isinstance(params, list) else ():
            param = _resolve(doc, param)
            if not isinstance(param, Mapping) or param.get("in") not in ("query", "formData"):
                continue
            schema = _resolve(doc, param.get("schema", param))
            kind = schema.get("type") if isinstance(schema, Mapping) else None
            if kind == "array" or (isinstance(kind, list) and "array" in kind):
                names.add(str(param.get("name")))
    return frozenset(names)


def _resolve(doc: Mapping[str, Any], value: Any) -> Any:
    """A local `{"$ref": "#/a/b"}` -> the object it points at (one level; anything else unchanged)."""
    ref = value.get("$ref") if isinstance(value, Mapping) else None
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return value
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
    return node


def load_spec(location: str, base_dir: str | Path = ".", fetch: Fetch | None = None) -> ApiSpec:
    """Read and parse the spec at a file path (or a URL, with `fetch`). Raises ValueError naming the location."""
    return parse_spec(parse_document(read_spec_text(location, base_dir, fetch), location), location)


def _servers_3x(servers: Any, source: str) -> tuple[str, ...]:
    if servers is None:
        return ()
    if not isinstance(servers, list):
        raise ValueError(f"OpenAPI spec {source}: `servers` must be a list")
    out: list[str] = []
    for server in servers:
        if not isinstance(server, Mapping) or not isinstance(server.get("url"), str):
            continue
        out.append(_substitute(server["url"], server.get("variables")).rstrip("/"))
    return tuple(out)


def _substitute(url: str, variables: Any) -> str:
    """`{var}` in a server URL -> the variable's default (empty when it has none)."""

    def default_of(m: re.Match[str]) -> str:
        var = variables.get(m.group(1)) if isinstance(variables, Mapping) else None
        default = var.get("default") if isinstance(var, Mapping) else None
        return str(default) if default is not None else ""

    return _VARIABLE.sub(default_of, url)


def _servers_2(doc: Mapping[str, Any]) -> tuple[str, ...]:
    base_path = str(doc.get("basePath") or "").rstrip("/")
    host = doc.get("host")
    if not isinstance(host, str) or not host:
        return (base_path,) if base_path else ()
    schemes = doc.get("schemes")
    if not isinstance(schemes, list) or not schemes:
        schemes = ["https"]
    return tuple(f"{scheme}://{host}{base_path}" for scheme in schemes)


def base_path_of(base_url: str) -> str:
    """The path prefix of a base URL (absolute or a bare path), without a trailing slash."""
    path = urlsplit(base_url).path if "://" in base_url else base_url
    return path.rstrip("/")


def starter_policy(spec_path: str, server: str, fetch: Fetch | None = None) -> str:
    """A starter config for one API: GET/HEAD operations allowed, every other method held for a human.

    The text loads with `agent-mesh check`; raises ValueError when the spec cannot be read.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", server):
        raise ValueError(f"server name {server!r} must be letters, digits, '_' or '-'")
    spec = load_spec(spec_path, fetch=fetch)
    reads = sorted({f"{server}.{op.tool}" for op in spec.operations if op.method in READ_METHODS})
    writes = sorted({f"{server}.{op.tool}" for op in spec.operations if op.method not in READ_METHODS})
    absolute = [u for u in spec.base_urls if "://" in u]
    server_entry: dict[str, Any] = {"openapi": spec_path}
    if absolute:
        server_entry["base_url"] = absolute[0]
    rules: list[dict[str, Any]] = []
    if reads:
        rules.append({"name": f"{server}-reads", "tools": reads, "action": "allow", "reason": "reads (GET/HEAD)"})
    if writes:
        rules.append(
            {"name": f"{server}-writes", "tools": writes, "action": "human_approval", "reason": "changes data"}
        )
    config = {
        "version": 1,
        "servers": {server: server_entry},
        "policies": [{"name": f"{server}-starter", "agent": "*", "rules": rules}],
    }
    header = (
        f"# Starter policy for {server}: {spec.title or spec_path} (OpenAPI {spec.spec_version}), "
        f"{len(spec.operations)} operations.\n"
        "# Reads (GET/HEAD) are allowed; every other method waits for a human. Edit, then `agent-mesh check`.\n"
    )
    if not absolute:
        header += f"# The spec names no absolute server URL: set servers.{server}.base_url to where the API lives.\n"
    body = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)
    return header + body
