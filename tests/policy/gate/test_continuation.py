"""A 2026-07-28 retry carrying input is judged by the Gate bound to its original call: it continues a call the
Gate let through and saw answered `input_required` (no second approval), and is refused otherwise."""

from __future__ import annotations

from pathlib import Path

from policy import MemoryStore, ToolCall, Verdict, VerdictKind
from policy.gate.continuation import CONTINUATION_SECONDS, RULE
from tests.policy.gate.conftest import Mesh

WRITE = ToolCall("claude", "mcp_http", "fs", "write_file", {"path": "/srv/a", "content": "x"})
READ = ToolCall("claude", "mcp_http", "fs", "read_file", {"path": "/srv/a"})


async def approved_write(mesh: Mesh, call: ToolCall = WRITE) -> Verdict:
    pending = await mesh.gate.check(call)
    assert pending.kind is VerdictKind.PENDING
    assert pending.approval_id is not None
    mesh.operator.approve(pending.approval_id, by="human:alice")
    verdict = await mesh.gate.hold(pending, seconds=1)
    assert verdict.allowed
    return verdict


async def test_the_retry_of_an_approved_call_continues_it_without_a_second_approval(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    original = await approved_write(mesh)
    mesh.gate.input_required(WRITE, original)
    retry = await mesh.gate.check_continuation(WRITE)
    assert retry.kind is VerdictKind.ALLOW
    assert retry.decided_by == f"continues:{original.trace_id}"
    assert retry.trace_id != original.trace_id
    assert retry.trace_id in mesh.sink.ahead_records  # durable before it runs, as any allow
    assert len(mesh.operator.store.list_approvals(None, 0.0)) == 1


async def test_a_retry_continuing_no_call_is_refused(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    refused = await mesh.gate.check_continuation(WRITE)
    assert (refused.kind, refused.decision.rule) == (VerdictKind.DENY, RULE)
    assert not mesh.operator.store.list_approvals(None, 0.0)  # no approval opened for input nobody judged


async def test_a_retry_with_other_arguments_or_of_another_agent_is_refused(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    original = await approved_write(mesh)
    mesh.gate.input_required(WRITE, original)
    other_args = ToolCall("claude", "mcp_http", "fs", "write_file", {"path": "/srv/b", "content": "x"})
    other_agent = ToolCall("bot", "mcp_http", "fs", "write_file", dict(WRITE.arguments))
    for call in (other_args, other_agent):
        assert (await mesh.gate.check_continuation(call)).decision.rule == RULE
    assert (await mesh.gate.check_continuation(WRITE)).allowed  # the original is still open for its own retry


async def test_a_continuation_is_taken_once(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    original = await approved_write(mesh)
    mesh.gate.input_required(WRITE, original)
    assert (await mesh.gate.check_continuation(WRITE)).allowed
    assert (await mesh.gate.check_continuation(WRITE)).decision.rule == RULE


async def test_the_retry_of_a_call_whose_input_was_refused_is_refused_in_either_order(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    original = await approved_write(mesh)
    mesh.gate.input_required(WRITE, original)
    mesh.gate.inputs_refused(WRITE)
    assert (await mesh.gate.check_continuation(WRITE)).decision.rule == RULE
    # The refusal may be known before the answer is recorded (mcpwrap judges the input first).
    mesh.gate.inputs_refused(WRITE)
    mesh.gate.input_required(WRITE, original)
    assert (await mesh.gate.check_continuation(WRITE)).decision.rule == RULE


async def test_a_retry_too_late_is_refused(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    original = await approved_write(mesh)
    mesh.gate.input_required(WRITE, original)
    mesh.clock.advance(CONTINUATION_SECONDS + 1)
    assert (await mesh.gate.check_continuation(WRITE)).decision.rule == RULE


async def test_a_refused_call_opens_no_continuation(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    etc = ToolCall("claude", "mcp_http", "fs", "write_file", {"path": "/etc/passwd", "content": "x"})
    denied = await mesh.gate.check(etc)
    mesh.gate.input_required(etc, denied)
    assert (await mesh.gate.check_continuation(etc)).decision.rule == RULE


async def test_a_continued_call_the_policy_allows_climbs_the_ladder_as_any_call(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    original = await mesh.gate.check(READ)
    mesh.gate.input_required(READ, original)
    retry = await mesh.gate.check_continuation(READ)
    assert (retry.kind, retry.decided_by) == (VerdictKind.ALLOW, "policy:dev/reads")


async def test_a_refusal_made_before_policy_is_the_gates_with_its_own_trace_id(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    one, two = mesh.gate.refuse("proxy.unknown_hosts", "x is not configured"), mesh.gate.refuse("r", "why")
    assert (one.kind, one.decision.rule, one.decided_by, one.reason) == (
        VerdictKind.DENY, "proxy.unknown_hosts", "default", "x is not configured",
    )  # fmt: skip
    assert one.trace_id != two.trace_id
    assert len(one.trace_id) == 32


async def test_a_call_that_cannot_wait_is_refused_by_the_guard_or_the_policy_alone_and_nothing_is_recorded(
    tmp_path: Path,
) -> None:
    mesh = Mesh(tmp_path / "state", MemoryStore())
    denied = mesh.gate.policy_refusal(ToolCall("claude", "mcp_http", "fs", "format_disk", {}))
    assert denied is not None
    assert (denied.kind, denied.decided_by) == (VerdictKind.DENY, "policy:dev/never")
    token = ToolCall("claude", "mcp_http", "fs", "read_file", {"path": str(tmp_path / "state" / "operator.token")})
    guarded = mesh.gate.policy_refusal(token)
    assert guarded is not None
    assert guarded.decision.rule.startswith("guard/")
    assert mesh.gate.policy_refusal(READ) is None
    assert mesh.gate.policy_refusal(WRITE) is None  # held for a human: the whole ladder judges it when it can wait
    assert not mesh.sink.records
