"""Rate limits and loop detection through the gate, and holding a pending call until a human decides."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from policy import ToolCall, VerdictKind, refusal_payload
from policy.store import Store
from tests.policy.gate.conftest import Mesh

RATE = """
  - name: bots
    agent: "bot-*"
    rate_limit: {max_per_minute: 3, max_total: 5}
    loop_detection: {max_repeats: 2, window: 30s}
    rules:
      - {tools: ["*"], action: allow}
"""


def read(agent: str = "claude", path: str = "/srv/a") -> ToolCall:
    return ToolCall(agent, "mcp_stdio", "fs", "read_file", {"path": path})


def write(path: str = "/srv/a") -> ToolCall:
    return ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": path, "content": "x"})


def with_bots(tmp_path: Path, store: Store) -> Mesh:
    return Mesh(tmp_path / "state", store, more_policies=RATE.lstrip("\n"))


async def test_the_fourth_identical_call_within_ten_seconds_is_a_loop(mesh: Mesh) -> None:
    for _ in range(3):
        assert (await mesh.gate.check(read())).allowed
        mesh.clock.advance(1)
    v = await mesh.gate.check(read())
    assert (v.kind, v.code, v.decided_by) == (VerdictKind.LOOP_DETECTED, "loop_detected", "loop_detection:dev")
    assert v.retry_after == 7.0  # the first of the three leaves the 10 s window then
    assert refusal_payload(v)["retry_after"] == 7
    assert (await mesh.gate.check(read(path="/srv/b"))).allowed
    mesh.clock.advance(7.5)
    assert (await mesh.gate.check(read())).allowed


async def test_loop_detection_and_rate_limits_follow_the_policy(tmp_path: Path, store: Store) -> None:
    mesh = with_bots(tmp_path, store)
    assert (await mesh.gate.check(read("bot-1"))).allowed
    mesh.clock.advance(1)
    assert (await mesh.gate.check(read("bot-1"))).allowed
    loop = await mesh.gate.check(read("bot-1"))
    assert (loop.kind, loop.retry_after) == (VerdictKind.LOOP_DETECTED, 29.0)
    assert (await mesh.gate.check(read("bot-1", "/x"))).allowed
    limited = await mesh.gate.check(read("bot-1", "/y"))
    assert (limited.kind, limited.code, limited.decided_by) == (
        VerdictKind.RATE_LIMITED,
        "rate_limited",
        "rate_limit:bots",
    )
    assert limited.retry_after == 59.0
    assert "3 calls in the last minute" in limited.reason
    assert (await mesh.gate.check(read("bot-2", "/y"))).allowed  # each agent has its own budget


async def test_a_total_budget_refuses_for_good(tmp_path: Path, store: Store) -> None:
    mesh = with_bots(tmp_path, store)
    for i in range(5):
        assert (await mesh.gate.check(read("bot-1", f"/{i}"))).allowed
        mesh.clock.advance(61)
    v = await mesh.gate.check(read("bot-1", "/last"))
    assert (v.kind, v.retry_after) == (VerdictKind.RATE_LIMITED, None)
    assert "total budget of 5" in v.reason


async def test_hold_returns_other_verdicts_unchanged(mesh: Mesh) -> None:
    v = await mesh.gate.check(read())
    assert await mesh.gate.hold(v, seconds=5) is v


async def test_hold_wakes_when_a_human_approves_from_another_thread(mesh: Mesh) -> None:
    pending = await mesh.gate.check(write())
    assert pending.approval_id is not None
    approval_id = pending.approval_id
    timer = threading.Timer(0.1, lambda: mesh.operator.approve(approval_id, by="alice", reason="fine"))
    timer.start()
    v = await mesh.gate.hold(pending, seconds=20)
    timer.join()
    assert (v.kind, v.decided_by, v.approval_id) == (VerdictKind.ALLOW, "human:alice", approval_id)
    again = await mesh.gate.check(write())
    assert again.kind is VerdictKind.PENDING  # the approval was used by the held call


async def test_hold_ends_with_a_deny_when_a_human_denies(mesh: Mesh) -> None:
    pending = await mesh.gate.check(write())
    assert pending.approval_id is not None
    mesh.operator.deny(pending.approval_id, by="bob", reason="no")
    v = await mesh.gate.hold(pending, seconds=20)
    assert (v.kind, v.decided_by, v.reason) == (VerdictKind.DENY, "human:bob", "denied by bob: no")


async def test_an_undecided_hold_returns_the_pending_verdict_and_ticks(mesh: Mesh) -> None:
    pending = await mesh.gate.check(write())
    ticks: list[float] = []

    async def tick(elapsed: float) -> None:
        ticks.append(elapsed)

    v = await mesh.gate.hold(pending, seconds=0.35, on_tick=tick, tick_seconds=0.1)
    assert v is pending
    assert len(ticks) >= 2
    assert ticks == sorted(ticks)


async def test_an_approval_that_expires_while_held_is_a_timeout(mesh: Mesh) -> None:
    pending = await mesh.gate.check(write())
    mesh.clock.advance(3601)
    v = await mesh.gate.hold(pending, seconds=5)
    assert (v.kind, v.decided_by) == (VerdictKind.DENY, "timeout")


async def test_two_held_identical_calls_only_one_gets_the_approval(mesh: Mesh) -> None:
    first = await mesh.gate.check(write())
    second = await mesh.gate.check(write())
    assert first.approval_id == second.approval_id
    assert first.approval_id is not None
    mesh.operator.approve(first.approval_id, by="alice")
    a, b = await asyncio.gather(mesh.gate.hold(first, seconds=5), mesh.gate.hold(second, seconds=5))
    assert sorted([a.kind.value, b.kind.value]) == ["allow", "deny"]
    loser = a if a.kind is VerdictKind.DENY else b
    assert "already used" in loser.reason


async def test_a_call_waits_on_the_event_loop_while_another_writer_holds_the_store(tmp_path: Path) -> None:
    from policy.store import SqliteStore, connect

    mesh = with_bots(tmp_path, SqliteStore(tmp_path / "state"))
    assert (await mesh.gate.check(read("bot-1", "/srv/warm"))).allowed  # connect and migrate first
    other = connect(tmp_path / "state" / "state.db")
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:  # the event loop keeps serving while the call waits
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    spinning = asyncio.create_task(ticker())
    asyncio.get_running_loop().call_later(0.1, other.execute, "ROLLBACK")
    v = await mesh.gate.check(read("bot-1", "/srv/b"))
    spinning.cancel()
    other.close()
    assert v.allowed
    assert ticks >= 10
    assert v.decision_ms is not None
    assert v.decision_ms >= 90
    mesh.gate.store.close()
