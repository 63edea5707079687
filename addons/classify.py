"""What an intercepted HTTP request is, decided from the config's servers (compiled once at load) on its
canonical form (request_canon, request_args, body_decode): an OpenAPI operation, MCP JSON-RPC to a
configured MCP server, plain HTTP to a named or unknown host, or MCP plumbing; ambiguity is refused."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from addons.body_decode import decode_json, media_type
from addons.request_args import body_fields, fields_of, merge, pairs_of, settle
from addons.request_canon import OVERRIDE_FIELD, PLAIN, CanonicalPath, RequestOptions, canonical_path, method_of
from addons.servers import DEFAULT_PORTS, Match, ServerMap, Target, origin_of
from policy.core.model import HttpInfo, canonical_json, readonly
from policy.wire.messages import RpcMessage, parse_body

# Streamable HTTP's other methods: GET opens a stream, DELETE ends a session; HEAD and OPTIONS (CORS) carry no call.
_MCP_PLUMBING = frozenset({"GET", "DELETE", "HEAD", "OPTIONS"})

# The configured servers live in addons.servers (identity by address); importable from here too.
__all__ = ["DEFAULT_PORTS", "Match", "McpBody", "Request", "RestCall", "ServerMap", "Target", "classify", "origin_of"]


@readonly
class RestCall:
    """A REST request as a tool call: an OpenAPI operation, or `METHOD /path` on plain HTTP."""

    surface: Literal["openapi", "http"]
    server: str
    tool: str
    arguments: dict[str, Any]
    known_host: bool
    # The canonical request line the call is judged (and its approval bound) on; None only in old tests.
    http: HttpInfo | None = None


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


def classify(req: Request, target: Target | None, options: RequestOptions | None = None) -> RestCall | McpBody | None:
    """RestCall, McpBody, or None for MCP plumbing (stream GETs, session DELETEs) that carries no call.

    Judged on the canonical request (decoded path, method after overrides, arguments from path, query and
    body by content). Raises ValueError for requests that cannot be judged unambiguously (a path upstreams
    route differently, a body that does not parse as what it is, a POST to an MCP server that is not
    JSON-RPC, a repeated or colliding key): those are refused, never forwarded unjudged.
    """
    if not (req.method.isalpha() and req.method.isupper()):
        # Methods are case-sensitive: `post` is no rule's POST, and upstreams disagree on what it is.
        raise ValueError(f"the method {req.method[:20]!r} is not an upper-case method name")
    canon = canonical_path(req.path)
    options = options or PLAIN
    if target is not None and target.is_mcp and target.router is None:
        return _mcp(req, target)
    query = fields_of(pairs_of(canon.query, "query")) if canon.query else {}
    fields: dict[str, Any] = {}
    form = False
    essence = ""
    if req.body:
        mtype = media_type(req.headers.get("content-type"))
        fields = body_fields(req.body, mtype)
        form = mtype.is_form or mtype.is_multipart_form
        essence = mtype.essence
    method = req.method
    if OVERRIDE_FIELD in query or OVERRIDE_FIELD in fields or _overridden(req):
        method = method_of(req.method, req.headers, {**fields, **query}, options)
    if target is not None and target.router is not None:
        rel = _relative(canon, target.base_path)
        match = target.router.match_segments(method, rel) if rel is not None else None
        if match is not None:
            arrays = match.operation.arrays
            settle(query, arrays, "query")
            if form:
                settle(fields, arrays, "form body")
            info = _http_info(req, method, canon, [query, essence, fields])
            args = merge(match.path_params, query, fields, options)
            return RestCall("openapi", target.server, match.operation.tool, args, True, info)
        if target.is_mcp:
            return _mcp(req, target)
    settle(query, (), "query")
    if form:
        settle(fields, (), "form body")
    server = target.server if target else req.host
    info = _http_info(req, method, canon, [query, essence, fields])
    args = merge({}, query, fields, options)
    return RestCall("http", server, f"{method} {canon.path}", args, target is not None, info)


def _overridden(req: Request) -> bool:
    h = req.headers
    return "x-http-method-override" in h or "x-http-method" in h or "x-method-override" in h


def _mcp(req: Request, target: Target) -> McpBody | None:
    """A configured MCP server: a POST is JSON-RPC or refused; other methods are its plumbing."""
    if _overridden(req):
        raise ValueError("an MCP request cannot override its HTTP method")
    if req.method in _MCP_PLUMBING:
        if req.body:
            raise ValueError(f"an MCP {req.method} carries no body: this one would reach the server unjudged")
        return None
    if req.method != "POST":
        raise ValueError(f"an MCP server takes POST, GET and DELETE, not {req.method}")
    try:
        # Decoded as the MCP SDKs do (`json.loads(bytes)`: BOM, UTF-16/32), so what is judged is what they run.
        value = decode_json(req.body)
    except RecursionError:
        raise ValueError("body is nested too deeply to judge") from None
    messages, is_batch = parse_body(value, req.body)
    return McpBody(target.server, messages, is_batch)


def _relative(canon: CanonicalPath, base_path: str) -> tuple[str, ...] | None:
    """The path's segments under the API's base path, or None when it is not under it."""
    if not base_path:
        return canon.segments
    base = tuple(base_path.strip("/").split("/"))
    if canon.segments[: len(base)] != base:
        if [s.lower() for s in canon.segments[: len(base)]] == [s.lower() for s in base]:
            raise ValueError(f"the path is under the API's base path {base_path!r} but for letter case")
        return None
    return canon.segments[len(base) :]


def _http_info(req: Request, method: str, canon: CanonicalPath, content: list[Any]) -> HttpInfo:
    """The request line an approval binds: method, host, port, decoded path, and a digest of the content as
    read (query fields, body type, body fields; a file or opaque body by its SHA-256). Approving one body
    never lets another through, while an identical retry matches even when its bytes are spelled anew
    (a multipart boundary, JSON whitespace or key order)."""
    digest = hashlib.sha256(canonical_json(content).encode("utf-8", "surrogatepass")).hexdigest()
    return HttpInfo(method, req.host, canon.path, req.port, req.scheme, digest)
