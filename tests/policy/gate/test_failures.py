"""A broken state store never lets a call through: every verdict is a deny naming the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policy import Gate, MemoryStore, ToolCall, Verdict, VerdictKind, load_config_text
from policy.store import SqliteStore, connect
from policy.trace import MemoryTraceSink
from tests.policy.gate.conftest import config_text
from tests.policy.store.readonly import read_only

READ = ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": "/srv/a"})
WRITE = ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/srv/a", "content": "x"})


def gate_on(state: Path) -> Gate:
    loaded = load_config_text(config_text(state), "test.yaml", str(state))
    return Gate.open(loaded, sink=MemoryTraceSink())


def assert_refused(v: Verdict, words: str) -> None:
    assert (v.kind, v.decided_by, v.code) == (VerdictKind.DENY, "error", "denied")
    assert "state store is unavailable" in v.reason
    assert words in v.reason


async def test_a_corrupt_state_db_refuses_even_calls_the_policy_allows(tmp_path: Path) -> None:
    tmp_path.joinpath("state.db").write_bytes(b"not sqlite" * 500)
    gate = gate_on(tmp_path)
    assert_refused(await gate.check(READ), "corrupt")
    assert_refused(await gate.check(WRITE), "corrupt")
    await gate.aclose()


async def test_a_read_only_state_db_refuses_calls_with_a_clear_error(tmp_path: Path) -> None:
    connect(tmp_path / "state.db").close()
    with read_only(tmp_path / "state.db"):
        gate = Gate.open(
            load_config_text(config_text(tmp_path), "t.yaml", str(tmp_path)),
            store=SqliteStore(tmp_path),
            sink=MemoryTraceSink(),
        )
        assert_refused(await gate.check(READ), "read-only")
        gate.store.close()


async def test_a_held_call_is_refused_when_the_store_breaks_while_it_waits(tmp_path: Path) -> None:
    gate = gate_on(tmp_path)
    pending = await gate.check(WRITE)
    assert pending.kind is VerdictKind.PENDING
    gate.store.close()
    tmp_path.joinpath("state.db").write_bytes(b"garbage!" * 1000)
    for extra in ("-wal", "-shm"):
        tmp_path.joinpath("state.db" + extra).unlink(missing_ok=True)
    v = await gate.hold(pending, seconds=5)
    assert_refused(v, "corrupt")
    assert v.approval_id == pending.approval_id


async def test_a_vanished_approval_fails_closed(tmp_path: Path) -> None:
    store = MemoryStore()
    loaded = load_config_text(config_text(tmp_path), "test.yaml", str(tmp_path))
    gate = Gate.open(loaded, store=store, sink=MemoryTraceSink())
    pending = await gate.check(WRITE)
    other = Gate.open(loaded, store=MemoryStore(), sink=MemoryTraceSink())
    v = await other.hold(pending, seconds=1)
    assert (v.kind, v.decided_by) == (VerdictKind.DENY, "error")
    assert "no longer exists" in v.reason


class BuggyStore(MemoryStore):
    """A store with a bug (not an outage): the gate must still refuse, not raise into the adapter."""

    def list_grants(self, now: float, include_inactive: bool = False) -> list[Any]:
        raise KeyError("a bug")


async def test_an_unexpected_error_in_the_ladder_is_a_deny_not_a_crash(tmp_path: Path) -> None:
    loaded = load_config_text(config_text(tmp_path), "test.yaml", str(tmp_path))
    gate = Gate.open(loaded, store=BuggyStore(), sink=MemoryTraceSink())
    v = await gate.check(WRITE)
    assert (v.kind, v.decided_by) == (VerdictKind.DENY, "error")
    assert "internal error KeyError" in v.reason
