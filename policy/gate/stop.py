"""The emergency-stop rung, first on the ladder: an in-memory view of the active stops (kept current by the
mesh watcher, policy.mesh.reload) and the refusal a stopped agent's calls get.

The hot path is one attribute read while nothing is stopped, two dict lookups while something is: the store
is never read per call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from policy.core.model import Action, Decision, Verdict, VerdictKind
from policy.store.board import ALL, Stop

RULE = "stop"  # the rule of every call a stop refuses (its trace record, its refusal payload)
DECIDED_BY_PREFIX = "stop:"


class Stops:
    """The stops this process obeys. `replace` may be called from any thread; listeners run on that thread."""

    __slots__ = ("_agents", "_all", "_listeners", "_lock", "active")

    def __init__(self) -> None:
        self.active = False  # read first on every call: False means nothing below is looked at
        self._all: Stop | None = None
        self._agents: dict[str, Stop] = {}
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def stopping(self, agent: str) -> Stop | None:
        """The stop that refuses this agent's calls now, if any (a stop of all agents first)."""
        if not self.active:
            return None
        return self._all or self._agents.get(agent)

    def stopping_all(self) -> Stop | None:
        """The stop of every agent, if any (for a held call whose agent is not known here)."""
        return self._all if self.active else None

    def current(self) -> list[Stop]:
        everyone = [self._all] if self._all is not None else []
        return everyone + sorted(self._agents.values(), key=lambda s: s.at)

    def replace(self, stops: Iterable[Stop]) -> bool:
        """Obey exactly `stops` from now on; True (and listeners told) when that changed anything."""
        everyone: Stop | None = None
        agents: dict[str, Stop] = {}
        for stop in stops:
            if stop.lifted_at is not None:
                continue
            if stop.everyone:
                everyone = stop if everyone is None or stop.at >= everyone.at else everyone
            elif stop.scope not in agents or stop.at >= agents[stop.scope].at:
                agents[stop.scope] = stop
        with self._lock:
            if everyone == self._all and agents == self._agents:
                return False
            # Publish the maps before the flag, so a reader that sees `active` sees the stops too.
            self._all, self._agents = everyone, agents
            self.active = everyone is not None or bool(agents)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return True

    def on_change(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)


def describe(stop: Stop) -> str:
    """One line naming the stop: whose calls, who stopped them, when and why."""
    who = "all agents" if stop.scope == ALL else f"agent {stop.scope!r}"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stop.at))
    return f"emergency stop of {who} by {stop.by} at {when} (stop {stop.id}): {stop.reason}"


def stopped_verdict(stop: Stop, trace_id: str, approval_id: str | None = None) -> Verdict:
    """The refusal of a call (new or held) while `stop` holds: final, traced with rule `stop`."""
    reason = f"{describe(stop)}; calls are refused until an operator runs `agent-mesh resume`"
    decision = Decision(Action.DENY, RULE, reason)
    return Verdict(VerdictKind.DENY, decision, f"{DECIDED_BY_PREFIX}{stop.by}", reason, trace_id, approval_id)


def is_stop(verdict: Verdict) -> bool:
    """True for a refusal made by an emergency stop (its payload's code is `stopped`)."""
    return verdict.decision.rule == RULE and verdict.decided_by.startswith(DECIDED_BY_PREFIX)
