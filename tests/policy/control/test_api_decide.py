"""POST /api/decide is Gate.preview over HTTP: the state-dir guard, grants, approvals and memory as the live gate
sees them, and nothing changed."""

from __future__ import annotations

from pathlib import Path

import httpx

from policy import Gate, LoadedConfig
from policy.store import SqliteStore
from policy.store.board import SqliteBoard
from tests.policy.control.conftest import Call


async def test_reading_the_operator_token_is_denied_by_the_guard(
    client: httpx.AsyncClient, loaded: LoadedConfig
) -> None:
    token = Path(loaded.config.state_dir) / "operator.token"
    body = {"agent": "claude", "tool": "fs.read_file", "args": {"path": str(token)}}
    out = (await client.post("/api/decide", json=body)).json()
    assert (out["decision"]["action"], out["decision"]["rule"]) == ("deny", "guard/state-dir")
    assert (out["would_be"], out["decided_by"]) == ("deny", "policy:guard/state-dir")


async def test_an_approved_call_is_named_and_left_unused(client: httpx.AsyncClient, call: Call) -> None:
    held = await call("fs.write_file", {"path": "/x"})
    assert held.approval_id is not None
    await client.post(f"/api/approvals/{held.approval_id}/approve", json={})
    body = {"agent": "claude", "tool": "fs.write_file", "args": {"path": "/x"}}
    for _ in range(2):
        out = (await client.post("/api/decide", json=body)).json()
        assert (out["would_be"], out["lifted_by"]) == ("allow", "human:alice")
        assert out["preview"]["lifted_by"]["ids"] == [held.approval_id]
    assert (await call("fs.write_file", {"path": "/x"})).decided_by == "human:alice"


async def test_a_loop_is_foreseen_without_being_counted(client: httpx.AsyncClient, call: Call, gate: Gate) -> None:
    for _ in range(3):
        await call("fs.read_file", {"path": "/a"})
    # The gate shares its calls through the loop log every 200 ms; write them now instead of waiting.
    assert isinstance(gate.store, SqliteStore)
    gate.store._loops.sync()
    body = {"agent": "claude", "tool": "fs.read_file", "args": {"path": "/a"}}
    for _ in range(2):
        out = (await client.post("/api/decide", json=body)).json()
        assert (out["would_be"], out["decided_by"]) == ("loop_detected", "loop_detection:dev")


async def test_an_emergency_stop_is_the_answer(client: httpx.AsyncClient, loaded: LoadedConfig, call: Call) -> None:
    await call("fs.read_file", {"path": "/a"})  # the state.db exists
    board = SqliteBoard(loaded.config.state_dir)
    board.add_stop("claude", "incident 7", "alice", 1.0)
    board.close()
    out = (await client.post("/api/decide", json={"agent": "claude", "tool": "fs.read_file"})).json()
    assert (out["would_be"], out["decision"]["rule"], out["decided_by"]) == ("deny", "stop", "stop:alice")
