"""Decision memory: the argument key a precedent must share, and when precedents auto-approve a call.

A call is auto-approved when the facts for the same agent, tool and argument key hold at least
`memory.auto_approve_after` approvals and no rejection within `memory.window`. For a call that arrived over
HTTP the key also holds its endpoint (method, host, port, path, scheme) and, when the key is all of `args`,
the digest of its query and body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from policy.core.conditions import MISSING, Getter, compile_field
from policy.core.config import MemorySettings
from policy.core.model import ToolCall, canonical_json
from policy.store.base import Fact


class MemoryKey:
    """`memory.key` compiled: which fields of a call must match a precedent (default: all arguments)."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self._getters: tuple[Getter, ...] = tuple(compile_field(f) for f in self.fields)
        # Keyed on all arguments, a precedent is for one request body: the body digest joins the key then.
        self._whole = "args" in self.fields

    def __call__(self, call: ToolCall) -> str:
        values = [_plain(get(call)) for get in self._getters]
        http = call.http
        if http is not None:
            # A precedent is for one endpoint: approvals against staging never auto-approve production.
            values.append(
                [http.method, http.host, http.port, http.path, http.scheme, http.digest if self._whole else None]
            )
        return hashlib.sha256(canonical_json(values).encode("utf-8")).hexdigest()[:32]


def _plain(value: object) -> object:
    return {"$missing": True} if value is MISSING else value


def precedents(facts: Sequence[Fact], settings: MemorySettings) -> tuple[Fact, ...] | None:
    """The approvals that auto-approve a call, or None: too few, memory off, or any rejection."""
    if not settings.enabled or settings.auto_approve_after < 1:
        return None
    if any(f.decision != "approve" for f in facts):
        return None
    if len(facts) < settings.auto_approve_after:
        return None
    return tuple(facts)


def explain(found: Sequence[Fact]) -> str:
    """A reason naming the precedents: how many, by whom, the latest."""
    who = ", ".join(sorted({f.by for f in found}))
    return f"{len(found)} earlier approvals of this call (by {who}) and no rejection: approved from memory"
