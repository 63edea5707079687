"""The emergency stop is the first rung (new and held calls), and a swapped config judges the next calls
while the records of calls judged before keep the policy hash that judged them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from policy import Outcome, ToolCall, VerdictKind, compile_policies, load_config_text, refusal_payload, refusal_text
from policy.gate.stop import Stops, is_stop
from policy.store import Store
from policy.store.board import ALL, MemoryBoard, Stop
from tests.policy.gate.conftest import Mesh, config_text


def read(agent: str = "claude") -> ToolCall:
    return ToolCall(agent, "mcp_stdio", "fs", "read_file", {"path": "/srv/a"})


def write() -> ToolCall:
    return ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/srv/a", "content": "x"})


def stop(scope: str = ALL, reason: str = "runaway agent", at: float = 1_000_000.0) -> Stop:
    return Stop("a1b2c3d4e5f6", scope, reason, "alice", at)


async def test_a_stop_of_all_agents_refuses_a_call_the_policy_allows(mesh: Mesh) -> None:
    assert (await mesh.gate.check(read())).allowed
    mesh.gate.stops.replace([stop()])
    v = await mesh.gate.check(read())
    assert (v.kind, v.decision.rule, v.decided_by) == (VerdictKind.DENY, "stop", "stop:alice")
    payload = refusal_payload(v)
    assert payload["code"] == "stopped"
    assert "runaway agent" in payload["reason"]
    assert "alice" in payload["reason"]
    assert "1970-01-12T13:46:40Z" in payload["reason"]  # when
    assert "resume" in refusal_text(v)
    assert is_stop(v)


async def test_a_stop_of_one_agent_leaves_the_others_alone(mesh: Mesh) -> None:
    mesh.gate.stops.replace([stop("claude")])
    assert is_stop(await mesh.gate.check(read("claude")))
    assert not is_stop(await mesh.gate.check(read("cursor")))  # denied by default, but not by the stop


async def test_lifting_the_stop_lets_calls_through_again(mesh: Mesh) -> None:
    mesh.gate.stops.replace([stop()])
    assert is_stop(await mesh.gate.check(read()))
    mesh.gate.stops.replace([])
    assert (await mesh.gate.check(read())).allowed


async def test_a_held_call_gets_the_stop_refusal_instead_of_waiting(mesh: Mesh) -> None:
    pending = await mesh.gate.check(write())
    assert pending.kind is VerdictKind.PENDING
    held = asyncio.ensure_future(mesh.gate.hold(pending, seconds=60))
    await asyncio.sleep(0)  # let it start waiting
    assert not held.done()
    mesh.gate.stops.replace([stop()])  # as the watcher thread does; it wakes every held call
    v = await asyncio.wait_for(held, 5)
    assert is_stop(v)
    assert v.approval_id == pending.approval_id


async def test_a_held_call_of_another_agent_keeps_waiting_through_a_stop(mesh: Mesh) -> None:
    pending = await mesh.gate.check(write())
    held = asyncio.ensure_future(mesh.gate.hold(pending, seconds=60))
    await asyncio.sleep(0)
    mesh.gate.stops.replace([stop("cursor")])
    done, _ = await asyncio.wait({held}, timeout=0.3)
    assert not done
    assert pending.approval_id is not None
    mesh.operator.approve(pending.approval_id, by="human:bob")
    assert (await asyncio.wait_for(held, 5)).allowed


async def test_an_allow_made_by_an_adapter_is_refused_while_stopped(mesh: Mesh) -> None:
    v = await mesh.gate.check(read())
    mesh.gate.stops.replace([stop()])
    assert is_stop(mesh.gate.commit(read(), v))


def test_stops_keep_the_newest_stop_per_scope_and_ignore_lifted_ones() -> None:
    stops = Stops()
    older, newer = stop("claude", "first", at=1.0), stop("claude", "second", at=2.0)
    lifted = Stop("ffffffffffff", ALL, "lifted", "bob", 3.0, lifted_at=4.0, lifted_by="bob")
    assert stops.replace([newer, older, lifted])
    found = stops.stopping("claude")
    assert found is not None
    assert found.reason == "second"
    assert stops.stopping("cursor") is None
    assert not stops.replace([older, newer])  # nothing changed: listeners are not told


def test_the_memory_board_lifts_by_scope_or_all() -> None:
    board = MemoryBoard()
    board.add_stop("claude", "r1", "alice", 1.0)
    board.add_stop(ALL, "r2", "alice", 2.0)
    assert [s.scope for s in board.lift_stops("claude", "bob", 3.0)] == ["claude"]
    assert [s.scope for s in board.active_stops()] == [ALL]
    assert [s.lifted_by for s in board.lift_stops(None, "bob", 4.0)] == ["bob"]
    assert board.active_stops() == []


async def test_a_swapped_config_judges_the_next_call(tmp_path: Path, store: Store) -> None:
    mesh = Mesh(tmp_path / "state", store)
    before = mesh.gate.policy_set.policy_hash
    assert (await mesh.gate.check(read())).allowed
    text = config_text(tmp_path / "state").replace("action: allow}", "action: deny}", 1)
    mesh.gate.swap(load_config_text(text, "test.yaml", str(tmp_path / "state")))
    after = mesh.gate.policy_set.policy_hash
    assert after != before
    v = await mesh.gate.check(read())
    assert v.kind is VerdictKind.DENY
    assert v.decision.rule == "dev/reads"


async def test_a_call_judged_before_a_swap_is_recorded_with_the_policy_that_judged_it(
    tmp_path: Path, store: Store
) -> None:
    mesh = Mesh(tmp_path / "state", store)
    before = mesh.gate.policy_set.policy_hash
    old_call = read()
    old = await mesh.gate.check(old_call)  # in flight across the swap
    text = config_text(tmp_path / "state").replace("hold_seconds: 2", "hold_seconds: 3")
    mesh.gate.swap(load_config_text(text, "test.yaml", str(tmp_path / "state")))
    new_call = read()
    new = await mesh.gate.check(new_call)
    mesh.gate.finish(old_call, old, Outcome(True, 200))
    mesh.gate.finish(new_call, new, Outcome(True, 200))
    hashes = {r["trace_id"]: r["policy_hash"] for r in mesh.sink.records}
    assert hashes[old.trace_id] == before
    assert hashes[new.trace_id] == mesh.gate.policy_set.policy_hash != before


async def test_a_gate_opened_while_a_stop_holds_obeys_it_from_its_first_call(tmp_path: Path) -> None:
    from policy import Gate
    from policy.store.board import SqliteBoard
    from policy.trace import MemoryTraceSink

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    board = SqliteBoard(state)
    board.add_stop(ALL, "runaway agent", "alice", 1.0)
    board.close()
    loaded = load_config_text(config_text(state), "test.yaml", str(state))
    gate = Gate.open(loaded, sink=MemoryTraceSink())  # as `mcpwrap exec` opens it: no watcher will follow
    try:
        assert is_stop(await gate.check(read()))
    finally:
        await gate.aclose()


async def test_a_swap_that_keeps_the_policy_still_guards_a_moved_secret_file(tmp_path: Path, store: Store) -> None:
    # A `{$file}` resolved at load puts its content, not its path, in the config: moving it to another file of the
    # same content keeps the policy hash, and the new file must still be guarded from the next call on.
    mesh = Mesh(tmp_path / "state", store)
    for name in ("first.listen", "moved.listen"):
        (tmp_path / name).write_text("127.0.0.1:9999\n")
        (tmp_path / name).chmod(0o600)
    base = config_text(tmp_path / "state")
    first = load_config_text(base + f"control:\n  listen: {{$file: {tmp_path / 'first.listen'}}}\n", "t.yaml", ".")
    moved = load_config_text(base + f"control:\n  listen: {{$file: {tmp_path / 'moved.listen'}}}\n", "t.yaml", ".")
    mesh.gate.swap(first)
    mesh.gate.swap(moved)
    assert mesh.gate.policy_set.policy_hash == compile_policies(first).policy_hash
    call = ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": str(tmp_path / "moved.listen")})
    verdict = await mesh.gate.check(call)
    assert verdict.kind is VerdictKind.DENY
    assert verdict.decision.rule == "guard/state-dir"
