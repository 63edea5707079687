"""Several real adapter processes on one state dir: one approval, one budget, state that survives SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from policy import Gate, Operator, SqliteStore, ToolCall, VerdictKind, load_config
from policy.trace import MemoryTraceSink
from tests.policy.gate.conftest import config_text
from tests.policy.store.procs import race, spawn

WORKER = "tests.policy.gate.worker"
ARGS = {"path": "/srv/deploy.txt", "content": "v2"}
LIMITED = """  - name: limited
    agent: claude
    rate_limit: {max_per_minute: 40}
    rules: [{tools: ["fs.read*"], action: allow}]
"""


def write_config(state: Path, more_policies: str = "") -> Path:
    state.mkdir(parents=True, exist_ok=True)
    path = state / "agent-mesh.yaml"
    path.write_text(config_text(state, more_policies=more_policies))
    return path


def read_line(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"worker ended early: {proc.communicate(timeout=30)[1]}"
    result: dict[str, object] = json.loads(line)
    return result


async def test_two_processes_racing_to_use_one_approval_exactly_one_call_passes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    loaded = load_config(str(config))
    gate = Gate.open(loaded, sink=MemoryTraceSink())
    pending = await gate.check(ToolCall("claude", "mcp_stdio", "fs", "write_file", ARGS))
    assert pending.approval_id is not None
    operator = Operator.open(loaded)
    operator.approve(pending.approval_id, by="alice")
    operator.close()
    args = json.dumps(ARGS)
    answers = race(tmp_path, WORKER, [["check", args], ["check", args]])
    assert sorted(str(a["kind"]) for a in answers) == ["allow", "pending"]
    await gate.aclose()


def test_a_rate_limit_is_one_budget_across_processes(tmp_path: Path) -> None:
    write_config(tmp_path, LIMITED)
    burst = json.dumps({"tool": "read_file", "n": 30})
    answers = race(tmp_path, WORKER, [["burst", burst], ["burst", burst]])
    assert sum(int(str(a.get("allowed", 0))) for a in answers) == 40
    assert sum(int(str(a.get("rate_limited", 0))) for a in answers) == 20


async def test_a_call_held_in_another_process_wakes_when_a_human_approves(tmp_path: Path) -> None:
    write_config(tmp_path)
    proc = spawn(WORKER, str(tmp_path), "hold", json.dumps(ARGS))
    try:
        read_line(proc)
        (tmp_path / "go").touch()
        pending = read_line(proc)
        assert pending["kind"] == "pending"
        operator = Operator.open(load_config(str(tmp_path / "agent-mesh.yaml")))
        operator.approve(str(pending["approval_id"]), by="alice", reason="go ahead")
        assert read_line(proc) == {"kind": "allow", "decided_by": "human:alice", "approval_id": pending["approval_id"]}
        operator.close()
    finally:
        proc.kill()
        proc.communicate(timeout=30)


async def test_a_pending_approval_survives_sigkill_of_every_process(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    procs = [spawn(WORKER, str(tmp_path), "hold", json.dumps(ARGS)) for _ in range(2)]
    try:
        for p in procs:
            read_line(p)
        (tmp_path / "go").touch()
        ids = {read_line(p)["approval_id"] for p in procs}
        assert len(ids) == 1  # the identical call shares one pending approval
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.communicate(timeout=30)
    assert all(p.returncode == -signal.SIGKILL for p in procs)
    loaded = load_config(str(config))
    operator = Operator.open(loaded)
    [approval] = operator.approvals()
    assert approval.id in ids
    operator.approve(approval.id, by="alice", reason="after the crash")
    gate = Gate.open(loaded, store=SqliteStore(tmp_path), sink=MemoryTraceSink())
    v = await gate.check(ToolCall("claude", "mcp_stdio", "fs", "write_file", ARGS))
    assert (v.kind, v.approval_id) == (VerdictKind.ALLOW, approval.id)
    await gate.aclose()
    operator.close()
