"""Held calls wait on a notification, not a poll on the event loop: one waiter thread per gate reads the
store for every held approval at once and wakes the futures of those decided (or expired) by any process;
an emergency stop (policy.gate.stop) wakes them all at once, so they get its refusal instead of waiting.

While nothing is held the thread sleeps on a condition; while calls are held it costs one store read per
tick for all of them together (a few ids: one lookup each; many: one query of the pending ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from policy.store.base import ApprovalState, Store

log = logging.getLogger("agent_mesh.gate")

TICK_SECONDS = 0.1
_ONE_BY_ONE = 32  # up to this many held approvals, look each up; past it, list the pending ones once
_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class ApprovalWakeup:
    """`await wakeup.wait(approval_id, seconds)` returns when the approval leaves `pending`, or at timeout."""

    def __init__(self, store: Store, clock: Callable[[], float], tick_seconds: float = TICK_SECONDS) -> None:
        self._store = store
        self._clock = clock
        self._tick = tick_seconds
        self._cond = threading.Condition()
        self._waiting: dict[str, list[_Waiter]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self.epoch = 0  # counts `wake_all`s: a holder that saw an older one returns at once from `wait`

    async def wait(self, approval_id: str, seconds: float, epoch: int | None = None) -> None:
        """`epoch`: `self.epoch` as the holder read it before it last looked at its call; a `wake_all` since
        then (before this waiter was registered) returns at once instead of being missed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._cond:
            if self._closed or (epoch is not None and epoch != self.epoch):
                return
            idle = not self._waiting
            self._waiting.setdefault(approval_id, []).append(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agent-mesh-approvals", daemon=True)
                self._thread.start()
            elif idle:
                self._cond.notify()  # only an idle thread needs waking: a busy one reads every id next tick
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, seconds)
        finally:
            with self._cond:
                waiters = self._waiting.get(approval_id)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(entry)
                    if not waiters:
                        del self._waiting[approval_id]

    def wake_all(self) -> None:
        """Wake every held call now, whatever its approval's state (an emergency stop refuses them all);
        safe from any thread. Each holder looks at its call again and waits on if nothing concerns it."""
        with self._cond:
            self.epoch += 1
            woken = [w for waiters in self._waiting.values() for w in waiters]
            self._waiting.clear()
        for loop, future in woken:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_wake, future)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                ids = list(self._waiting)
            decided = self._decided(ids)
            with self._cond:
                woken = [w for aid in decided for w in self._waiting.pop(aid, [])]
            for loop, future in woken:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_wake, future)
            with self._cond:
                if not self._closed:
                    self._cond.wait(self._tick)

    def _decided(self, ids: list[str]) -> list[str]:
        """The ids no longer pending; on a store error all of them, so each holder settles and fails closed."""
        now = self._clock()
        try:
            if len(ids) <= _ONE_BY_ONE:
                out = []
                for aid in ids:
                    approval = self._store.get_approval(aid)
                    if approval is None or approval.effective_state(now) is not ApprovalState.PENDING:
                        out.append(aid)
                return out
            pending = {a.id for a in self._store.list_approvals(ApprovalState.PENDING, now, limit=1 << 30)}
            return [aid for aid in ids if aid not in pending]
        except Exception:
            log.exception("agent-mesh: could not read held approvals; waking their holders")
            return ids


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
