"""Which MCP era a request belongs to: the one rule both adapters apply.

2025-11-25 and older negotiate a version with `initialize` and keep a session; 2026-07-28 is stateless and
names its version in every request's `params._meta`. A request is of the 2026 era exactly when its body
names a 2026 version there: the `Mcp-Protocol-Version` header says nothing about the era (the body is what is
judged and what the server reads), and a `_meta` naming an older or unknown version is not the 2026
era (a result with `resultType` would confuse a client that did not ask for it; an unknown era is not
guessed at).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
VERSION_HEADER = "mcp-protocol-version"
MODERN_VERSIONS = frozenset({"2026-07-28"})


def meta_version(msg: Mapping[str, Any]) -> str | None:
    """The per-request protocol version in `params._meta` (a raw JSON-RPC message), when it names one."""
    params = msg.get("params")
    meta = params.get("_meta") if isinstance(params, Mapping) else None
    version = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) else None


def is_modern(version: str | None) -> bool:
    """Whether a protocol version is of the stateless (2026-07-28) era."""
    return version in MODERN_VERSIONS


def is_modern_request(msg: Mapping[str, Any]) -> bool:
    """Whether a raw JSON-RPC request is of the 2026-07-28 era: THE test, used by both adapters."""
    return is_modern(meta_version(msg))


def protocol_version(msg: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> str | None:
    """The version to record for a request: `_meta` (2026-07-28), else an `initialize`'s `protocolVersion`,
    else the `Mcp-Protocol-Version` header (HTTP only); None when nothing names one."""
    version = meta_version(msg)
    if version is not None:
        return version
    params = msg.get("params")
    if msg.get("method") == "initialize" and isinstance(params, Mapping):
        asked = params.get("protocolVersion")
        if isinstance(asked, str):
            return asked
    return headers.get(VERSION_HEADER) if headers is not None else None


def is_continuation(params: object) -> bool:
    """Whether a request's params make it the retry of a call the server answered `input_required`: it carries
    the user's input (`inputResponses`) or the server's state (`requestState`). The Gate judges it bound to
    the original call (Gate.check_continuation), on both adapters."""
    return isinstance(params, Mapping) and ("inputResponses" in params or "requestState" in params)
