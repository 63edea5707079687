"""The control plane's eyes on the shared state: one polling task reads new trace rows (by `seq` cursor)
and the pending approvals, feeds /metrics and notifications, and publishes events to live subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from policy.control.metrics import Metrics
from policy.control.notify import Notifier
from policy.control.views import approval_view
from policy.core.errors import StoreUnavailable
from policy.store.base import Approval, ApprovalState, Store
from policy.trace.feed import TraceFeed

log = logging.getLogger("agent_mesh.control")

POLL_SECONDS = 0.2
SUBSCRIBER_QUEUE = 256
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """One live event: `trace` (a new record), `approvals` (the pending set changed) or `grants`."""

    kind: str
    data: dict[str, Any]


class Hub:
    """Fan-out of events to SSE subscribers; a subscriber too slow to keep up is dropped."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event | None]] = set()

    def publish(self, event: Event) -> None:
        for q in list(self._subscribers):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(q)
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(None)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event | None]]:
        q: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE + 1)
        self._subscribers.add(q)
        try:
            yield q
        finally:
            self._subscribers.discard(q)

    def close(self) -> None:
        for q in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)


class Watcher:
    """Polls the trace table and the approval queue; call `step()` directly in tests, `run()` in serve."""

    def __init__(
        self,
        store: Store,
        feed: TraceFeed,
        metrics: Metrics,
        hub: Hub,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        redact_keys: list[str] | None = None,
        page_url: str | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.metrics = metrics
        self.hub = hub
        self.notifier = notifier
        self._clock = clock
        self._keys = redact_keys or []
        self._page_url = page_url
        self._cursor: int | None = None
        self._pending: dict[str, Approval] = {}
        self.healthy = True
        # Called for each call that starts waiting for a human once the watcher runs (serve prints a line),
        # with the approval and its page link; the calls already waiting at the first step are not included.
        self.on_held: list[Callable[[Approval, str | None], None]] = []

    @property
    def cursor(self) -> int:
        return self._cursor or 0

    def step(self) -> list[Event]:
        """One poll (thread-safe, no event loop needed): new trace records, then the pending set.

        The first step seeds the counters from the history and reports the approvals already waiting.
        Returns the events to publish. Raises StoreUnavailable.
        """
        events: list[Event] = []
        seeding = self._cursor is None
        if self._cursor is None:
            last = self.feed.last_seq()
            self.metrics.seed(self.feed.totals(last))
            self._cursor = last
        while True:
            records = self.feed.after(self.cursor, BATCH)
            for record in records:
                self.metrics.observe(record)
                events.append(Event("trace", record))
            if records:
                self._cursor = int(records[-1]["seq"])
            if len(records) < BATCH:
                break
        events += self._approvals(announce=not seeding)
        self.metrics.set_gauges(trace_cursor=self.cursor)
        return events

    def _approvals(self, *, announce: bool = True) -> list[Event]:
        now = self._clock()
        current = {a.id: a for a in self.store.list_approvals(ApprovalState.PENDING, now, limit=1000)}
        added = [a for i, a in current.items() if i not in self._pending]
        gone = [a for i, a in self._pending.items() if i not in current]
        self._pending = current
        self.metrics.set_gauges(pending_approvals=len(current), active_grants=len(self.store.list_grants(now)))
        for approval in added:
            self._notify("approval.pending", approval, now)
            for hook in self.on_held if announce else ():  # not calls that waited before the watcher ran
                try:
                    hook(approval, self.page_link(approval))
                except Exception:  # a closed terminal must not stop the watcher feeding metrics and notices
                    log.exception("agent-mesh: reporting a held call failed")
        for old in gone:
            settled = self.store.get_approval(old.id) or old
            self._notify(f"approval.{settled.effective_state(now).value}", settled, now)
        if added or gone:
            return [Event("approvals", {"pending": len(current), "ids": sorted(current)})]
        return []

    def page_link(self, approval: Approval) -> str | None:
        """The approval's card on the web page, when the page's address is known."""
        return f"{self._page_url}#approval-{approval.id}" if self._page_url else None

    def _notify(self, event: str, approval: Approval, now: float) -> None:
        if self.notifier is None:
            return
        view = approval_view(approval, now, self._keys)
        link = self.page_link(approval)
        if link:
            view["page_url"] = link
        self.notifier.send(event, {"approval": view})

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; store trouble is logged once per episode and retried."""
        while not stop.is_set():
            try:
                for event in await asyncio.to_thread(self.step):
                    self.hub.publish(event)
                if not self.healthy:
                    log.warning("agent-mesh: the state store is readable again")
                self.healthy = True
            except StoreUnavailable as exc:
                if self.healthy:
                    log.warning("agent-mesh: cannot read the state store: %s", exc)
                self.healthy = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
