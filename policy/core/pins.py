"""Tool pins as plain records: a tool's fingerprint, how a listing compares to its pin, and the pin row.

A server that silently changes what a tool says or accepts (a "rug pull") is noticed on the next
`tools/list`: the fingerprint of the tool as listed now differs from the one pinned. The store keeps one
`Pin` per (server, tool); the Gate (policy/gate/pins.py) decides what a change means. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from policy.core.model import canonical_json


class PinState(StrEnum):
    """How a listed tool compares to its pin: the same, never pinned yet, or different from the pin."""

    SAME = "same"
    NEW = "new"
    CHANGED = "changed"


def fingerprint(tool: Mapping[str, Any]) -> str:
    """SHA-256 over the tool's description and input schema (what the model reads and what it sends), and its
    titles when it has any (the model reads those too; absent, the fingerprint is what it always was)."""
    pinned = {"description": tool.get("description"), "inputSchema": tool.get("inputSchema")}
    annotations = tool.get("annotations")
    titles = [tool.get("title"), annotations.get("title") if isinstance(annotations, dict) else None]
    if titles != [None, None]:
        pinned["titles"] = titles
    return hashlib.sha256(canonical_json(pinned).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Pin:
    """One tool's pin. `pinned` is the accepted fingerprint (None until a first form is accepted); `seen` the
    fingerprint listed last; `state` how `seen` compares to `pinned` (`same` once accepted)."""

    server: str
    tool: str
    pinned: str | None
    seen: str
    state: PinState
    first_seen: float
    changed_at: float
    accepted_at: float | None = None

    @property
    def open(self) -> bool:
        """True while the tool's listed form is not its pin (new or changed, not accepted yet)."""
        return self.state is not PinState.SAME


@dataclass(frozen=True, slots=True)
class PinSeen:
    """What one listing of a tool found: the pin after it, and whether this form was never reported before
    (so each change is reported once across every process, not once per listing)."""

    pin: Pin
    fresh: bool

    @property
    def state(self) -> PinState:
        return self.pin.state


def observed(before: Pin | None, server: str, tool: str, fp: str, now: float) -> PinSeen:
    """The pin after listing `tool` with fingerprint `fp` (the rule both store twins apply in one step)."""
    if before is None:
        return PinSeen(Pin(server, tool, None, fp, PinState.NEW, now, now), True)
    if before.pinned == fp:
        pin = Pin(server, tool, fp, fp, PinState.SAME, before.first_seen, before.changed_at, before.accepted_at)
        return PinSeen(pin, False)
    state = PinState.NEW if before.pinned is None else PinState.CHANGED
    fresh = before.seen != fp or before.state is not state
    changed_at = now if fresh else before.changed_at
    pin = Pin(server, tool, before.pinned, fp, state, before.first_seen, changed_at, before.accepted_at)
    return PinSeen(pin, fresh)


def accepted(before: Pin | None, server: str, tool: str, fp: str, now: float) -> Pin:
    """The pin once `fp` is accepted as the tool's form (by a `warn` action or a human's approval)."""
    first = before.first_seen if before is not None else now
    changed = before.changed_at if before is not None else now
    return Pin(server, tool, fp, fp, PinState.SAME, first, changed, now)
