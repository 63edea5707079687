"""Continuations (MCP 2026-07-28): a server answers a call `input_required`, and the client's retry carrying
the user's input (`inputResponses`, `requestState`) continues that call. The Gate judges the retry bound to
the original: same agent, server, tool and arguments (policy.wire.era.is_continuation says which requests
are retries; both adapters ask it).

A retry bound to a call the Gate let through, whose input requests were not refused, within
CONTINUATION_SECONDS, continues it: a human's approval of the original is not asked for again. Any other
retry (no original seen by this process, another agent or other arguments, an original whose input was
refused, too late) is refused: it names input the server was never given through the gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from policy.core.model import Action, Decision, ToolCall, Verdict, VerdictKind, call_hash

# How long the client has to retry a call the server answered `input_required`.
CONTINUATION_SECONDS = 600.0
_LIMIT = 4096  # open continuations kept per process; the oldest are forgotten (their retries are refused)
RULE = "mcp.continuation"


def binding(call: ToolCall) -> str:
    """What binds a retry to its original: agent, full tool name and arguments. Never the HTTP target: the
    retry's body differs from the original's (it carries the input), so its body digest does too."""
    return call_hash(call.agent, call.full_name, call.arguments)


class Continuations:
    """The calls of one Gate answered `input_required`, waiting for their retry."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._open: dict[str, tuple[Verdict, float]] = {}
        self._refused: dict[str, float] = {}  # input refused before the answer was recorded: never opened

    def opened(self, call: ToolCall, verdict: Verdict) -> None:
        """`call` (let through with `verdict`) was answered `input_required`: its retry may continue it."""
        key = binding(call)
        now = self._clock()
        refused_until = self._refused.pop(key, None)
        if not verdict.allowed or (refused_until is not None and refused_until > now):
            return
        self._open[key] = (verdict, now + CONTINUATION_SECONDS)
        _bound(self._open)

    def refused(self, call: ToolCall) -> None:
        """The server's input requests for `call` were refused: its retry is refused, whether the answer
        was recorded already or is recorded later."""
        key = binding(call)
        if self._open.pop(key, None) is None:
            self._refused[key] = self._clock() + CONTINUATION_SECONDS
            _bound(self._refused)

    def take(self, call: ToolCall) -> Verdict | None:
        """The original's verdict when `call` continues a call still open (each continuation is taken once)."""
        found = self._open.pop(binding(call), None)
        if found is None or found[1] <= self._clock():
            return None
        return found[0]


def continued(original: Verdict, decision: Decision, trace_id: str) -> Verdict:
    """The verdict of a retry that continues `original`: allowed, by it (its trace id names it)."""
    return Verdict(VerdictKind.ALLOW, decision, f"continues:{original.trace_id}", original.reason, trace_id)


def unbound(call: ToolCall, trace_id: str) -> Verdict:
    """The refusal of a retry that continues no call this gate let through and saw answered `input_required`."""
    reason = (
        f"{call.full_name}: this retry answers input requests of a call agent-mesh did not see the server make "
        "(or whose input was refused, or that was answered over "
        f"{CONTINUATION_SECONDS:g} s ago); send the call again without inputResponses"
    )
    return Verdict(VerdictKind.DENY, Decision(Action.DENY, RULE, reason), "default", reason, trace_id)


def _bound[V](table: dict[str, V]) -> None:
    while len(table) > _LIMIT:
        del table[next(iter(table))]
