"""Records for store tests, with defaults a test only overrides where it matters."""

from __future__ import annotations

from typing import Any

from policy.store import Approval, Fact, Grant, new_id


def approval(call_hash: str = "h1", now: float = 1000.0, ttl: float = 3600.0, **over: Any) -> Approval:
    fields: dict[str, Any] = {
        "id": new_id(),
        "call_hash": call_hash,
        "agent": "claude",
        "surface": "mcp_stdio",
        "server": "fs",
        "tool": "write_file",
        "arguments": {"path": "/srv/a.txt", "content": "hi"},
        "memory_key": "k1",
        "rule": "dev/rules[1]",
        "reason": "writes need a human",
        "created_at": now,
        "expires_at": now + ttl,
    }
    fields.update(over)
    return Approval(**fields)


def grant(now: float = 1000.0, ttl: float = 1800.0, **over: Any) -> Grant:
    fields: dict[str, Any] = {
        "id": new_id(),
        "agent": "claude",
        "tool": "fs.*",
        "created_at": now,
        "expires_at": now + ttl,
        "created_by": "alice",
    }
    fields.update(over)
    return Grant(**fields)


def fact(decision: str = "approve", ts: float = 1000.0, **over: Any) -> Fact:
    fields: dict[str, Any] = {
        "id": new_id(),
        "agent": "claude",
        "tool": "fs.write_file",
        "memory_key": "k1",
        "decision": decision,
        "by": "alice",
        "reason": "fine",
        "ts": ts,
    }
    fields.update(over)
    return Fact(**fields)
