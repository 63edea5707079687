"""Held calls are woken by one waiter thread when their approval is decided (by any process), expires, or the
store fails; until then they cost the event loop nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from policy.store.base import Approval, ApprovalState, new_id
from policy.store.memory import MemoryStore
from policy.store.sqlite import SqliteStore
from policy.store.wakeup import ApprovalWakeup


def _pending(store: MemoryStore | SqliteStore, agent: str = "a", expires_in: float = 3600.0) -> Approval:
    now = time.time()
    return store.open_approval(
        Approval(
            id=new_id(),
            call_hash=new_id(),
            agent=agent,
            surface="mcp_http",
            server="notes",
            tool="write",
            arguments={},
            memory_key="",
            rule="r",
            reason="why",
            created_at=now,
            expires_at=now + expires_in,
            trace_id="t",
            session_id=None,
        )
    )


async def test_a_decision_made_through_another_store_handle_wakes_the_held_call(tmp_path: Path) -> None:
    store, other = SqliteStore(tmp_path), SqliteStore(tmp_path)
    wakeup = ApprovalWakeup(store, time.time, tick_seconds=0.01)
    try:
        approval = _pending(store)
        waiting = asyncio.create_task(wakeup.wait(approval.id, 30))
        other.resolve_approval(approval.id, True, "human:x", "ok", time.time(), 60)
        async with asyncio.timeout(10):
            await waiting
        assert store.get_approval(approval.id).state is ApprovalState.APPROVED  # type: ignore[union-attr]
    finally:
        wakeup.close()
        store.close()
        other.close()


async def test_an_undecided_wait_ends_at_its_timeout_and_leaves_nothing_behind() -> None:
    store = MemoryStore()
    wakeup = ApprovalWakeup(store, time.time, tick_seconds=0.01)
    approval = _pending(store)
    await wakeup.wait(approval.id, 0.05)
    assert wakeup._waiting == {}
    wakeup.close()


async def test_an_expired_approval_wakes_its_holder() -> None:
    store = MemoryStore()
    wakeup = ApprovalWakeup(store, time.time, tick_seconds=0.01)
    approval = _pending(store, expires_in=0.05)
    async with asyncio.timeout(10):
        await wakeup.wait(approval.id, 30)
    wakeup.close()


async def test_many_held_calls_are_read_together_and_each_woken_once_decided() -> None:
    store = MemoryStore()
    wakeup = ApprovalWakeup(store, time.time, tick_seconds=0.01)
    approvals = [_pending(store, agent=f"a{i % 7}") for i in range(200)]
    tasks = [asyncio.create_task(wakeup.wait(a.id, 30)) for a in approvals]
    for a in approvals[:100]:
        store.resolve_approval(a.id, False, "human:x", "no", time.time(), 0)
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks[:100])
    assert not any(t.done() for t in tasks[100:])
    for t in tasks[100:]:
        t.cancel()
    await asyncio.gather(*tasks[100:], return_exceptions=True)
    wakeup.close()


async def test_a_store_that_fails_wakes_every_holder_so_each_settles_and_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()  # a state.db SQLite cannot open: every read fails
    store = SqliteStore(tmp_path)
    wakeup = ApprovalWakeup(store, time.time, tick_seconds=0.01)
    async with asyncio.timeout(10):
        await wakeup.wait("anything", 30)
    wakeup.close()
    store.close()


def test_pending_approvals_are_counted_per_agent(tmp_path: Path) -> None:
    for store in (MemoryStore(), SqliteStore(tmp_path)):
        _pending(store, "a")
        _pending(store, "a")
        _pending(store, "b")
        decided = _pending(store, "a")
        store.resolve_approval(decided.id, True, "human:x", "", time.time(), 60)
        assert store.count_pending("a", time.time()) == 2
        assert store.count_pending("b", time.time()) == 1
        assert store.count_pending("a", time.time() + 7200) == 0
        store.close()
