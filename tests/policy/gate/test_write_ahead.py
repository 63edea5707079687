"""Write-ahead at the gate: an allowed call's decision record is durable before `check` (or `hold`, for an
approved call) returns; a decision record that cannot be written refuses the call (traces.on_failure)."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

from policy import Gate, MemoryStore, Outcome, ToolCall, Verdict, VerdictKind, load_config_text
from policy.trace.ahead import AHEAD_DIR
from tests.policy.gate.conftest import Mesh, config_text
from tests.support.proc import pid_gone

READ = ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": "/srv/a"})
WRITE = ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/srv/a", "content": "x"})
DONE = Outcome(True, is_error=False, latency_ms=2.0)


def real_gate(state: Path, extra: str = "", *, trace_process: bool = False) -> Gate:
    """A gate with its real trace writer (and an in-memory store: the trace is what is under test)."""
    loaded = load_config_text(config_text(state, extra), "test.yaml", str(state))
    return Gate.open(loaded, store=MemoryStore(), trace_process=trace_process)


def ahead_ids(state: Path) -> list[str]:
    return [
        json.loads(line)["trace_id"]
        for path in sorted((state / AHEAD_DIR).glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def chained(state: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (state / "traces.jsonl").read_text().splitlines()]


def assert_refused_unrecorded(v: Verdict, words: str) -> None:
    assert (v.kind, v.decided_by) == (VerdictKind.DENY, "error")
    assert "decision record could not be written" in v.reason
    assert words in v.reason


async def test_an_allowed_call_is_written_ahead_before_check_returns_and_settled_by_finish(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, MemoryStore())
    verdict = await mesh.gate.check(READ)
    assert verdict.kind is VerdictKind.ALLOW
    assert list(mesh.sink.ahead_records) == [verdict.trace_id]
    assert mesh.sink.ahead_records[verdict.trace_id]["verdict"] == "allow"

    mesh.gate.finish(READ, verdict, DONE)
    assert not mesh.sink.ahead_records
    assert [r["trace_id"] for r in mesh.sink.records] == [verdict.trace_id]


async def test_a_refused_call_is_not_written_ahead_it_is_never_forwarded(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, MemoryStore())
    denied = await mesh.gate.check(ToolCall("claude", "mcp_stdio", "fs", "format_disk", {}))
    pending = await mesh.gate.check(WRITE)
    assert (denied.kind, pending.kind) == (VerdictKind.DENY, VerdictKind.PENDING)
    assert not mesh.sink.ahead_records


async def test_a_held_call_a_human_approves_is_written_ahead_before_hold_returns(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, MemoryStore())
    pending = await mesh.gate.check(WRITE)
    assert pending.approval_id is not None
    mesh.operator.approve(pending.approval_id, by="alice")
    allowed = await mesh.gate.hold(pending, seconds=5)
    assert allowed.kind is VerdictKind.ALLOW
    assert list(mesh.sink.ahead_records) == [allowed.trace_id]
    assert mesh.sink.ahead_records[allowed.trace_id]["decided_by"] == "human:alice"


async def test_the_real_writer_puts_the_decision_on_disk_before_check_returns(tmp_path: Path) -> None:
    gate = real_gate(tmp_path)
    verdict = await gate.check(READ)
    assert verdict.kind is VerdictKind.ALLOW
    assert ahead_ids(tmp_path) == [verdict.trace_id]
    gate.finish(READ, verdict, DONE)
    await gate.aclose()
    assert [(r["trace_id"], r["outcome"]) for r in chained(tmp_path)] == [(verdict.trace_id, "ok")]
    assert not list((tmp_path / AHEAD_DIR).iterdir())


async def test_an_unwritable_write_ahead_log_refuses_allowed_calls(tmp_path: Path) -> None:
    (tmp_path / AHEAD_DIR).write_text("a file where the log's folder should be")
    gate = real_gate(tmp_path)
    assert_refused_unrecorded(await gate.check(READ), "write-ahead log cannot be written")
    await gate.aclose()


async def test_traces_on_failure_allow_lets_calls_through_unrecorded_when_asked_to(tmp_path: Path) -> None:
    (tmp_path / AHEAD_DIR).write_text("a file where the log's folder should be")
    gate = real_gate(tmp_path, "traces: {on_failure: allow}")
    assert (await gate.check(READ)).kind is VerdictKind.ALLOW
    await gate.aclose()


async def test_a_trace_that_cannot_be_written_refuses_calls_until_it_can_be_again(tmp_path: Path) -> None:
    (tmp_path / "traces.jsonl").symlink_to("/dev/full")  # every write fails with ENOSPC
    gate = real_gate(tmp_path)
    first = await gate.check(READ)
    assert first.kind is VerdictKind.ALLOW  # its decision is in the write-ahead log
    gate.finish(READ, first, DONE)
    assert gate.sink.flush()
    assert gate.sink.stats().dropped == 1  # after its retries

    refused = await gate.check(READ)
    assert_refused_unrecorded(refused, "No space left on device")
    gate.finish(READ, refused, Outcome(False))

    (tmp_path / "traces.jsonl").unlink()  # the disk has room again
    assert gate.sink.flush()
    again = await gate.check(READ)
    assert again.kind is VerdictKind.ALLOW
    gate.finish(READ, again, DONE)
    await gate.aclose()
    # The first call's record was dropped with its batch; its write-ahead entry was kept and chained as soon as
    # the trace could be written again: every call has exactly one record, and the log is gone.
    assert not list((tmp_path / AHEAD_DIR).iterdir())
    outcomes = {r["trace_id"]: r["outcome"] for r in chained(tmp_path)}
    assert outcomes == {first.trace_id: "unknown", refused.trace_id: "refused", again.trace_id: "ok"}
    assert len(chained(tmp_path)) == 3


async def test_a_killed_trace_worker_is_taken_over_and_calls_stay_allowed_and_recorded(tmp_path: Path) -> None:
    gate = real_gate(tmp_path, trace_process=True)
    remote = gate.sink._remote  # type: ignore[attr-defined]
    assert remote is not None
    os.kill(remote.pid, signal.SIGKILL)
    assert pid_gone(remote.pid)
    ids = []
    for _ in range(3):
        verdict = await gate.check(READ)
        assert verdict.kind is VerdictKind.ALLOW
        gate.finish(READ, verdict, DONE)
        ids.append(verdict.trace_id)
    assert gate.sink.flush()  # the writer thread finds the worker gone and writes in this process
    await gate.aclose()
    assert [r["trace_id"] for r in chained(tmp_path)][:3] == ids
    assert not list((tmp_path / AHEAD_DIR).glob("*.lock"))  # everything settled, the log removed


async def test_with_traces_fsync_each_allowed_call_is_still_written_ahead_and_recorded(tmp_path: Path) -> None:
    gate = real_gate(tmp_path, "traces: {fsync: true}")
    verdict = await gate.check(READ)
    assert verdict.kind is VerdictKind.ALLOW
    assert ahead_ids(tmp_path) == [verdict.trace_id]
    gate.finish(READ, verdict, DONE)
    await gate.aclose()
    assert [r["trace_id"] for r in chained(tmp_path)] == [verdict.trace_id]


async def test_a_gate_whose_trace_writer_has_stopped_refuses_allowed_calls(tmp_path: Path) -> None:
    gate = real_gate(tmp_path)
    assert gate.sink.close()
    assert_refused_unrecorded(await gate.check(READ), "the trace writer has stopped")
    await gate.aclose()


async def test_an_allow_an_adapter_made_itself_is_written_ahead_through_commit(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, MemoryStore())
    judged = await mesh.gate.check(READ)
    mesh.gate.finish(READ, judged, DONE)
    continued = replace(judged, trace_id="t-continued", decided_by=f"continues:{judged.trace_id}")
    assert mesh.gate.commit(READ, continued) is continued
    assert list(mesh.sink.ahead_records) == ["t-continued"]


async def test_commit_refuses_when_the_decision_record_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / AHEAD_DIR).write_text("a file where the log's folder should be")
    gate = real_gate(tmp_path)
    continued = Verdict(VerdictKind.ALLOW, (await gate.check(WRITE)).decision, "continues:x", "", "t-2")
    assert_refused_unrecorded(gate.commit(READ, continued), "write-ahead log cannot be written")
    await gate.aclose()
