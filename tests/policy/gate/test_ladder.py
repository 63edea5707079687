"""Each rung of the decision ladder and their order, on both store twins."""

from __future__ import annotations

from typing import Any

from policy import HttpInfo, ToolCall, VerdictKind
from tests.policy.gate.conftest import Mesh


def call(tool: str = "write_file", agent: str = "claude", **args: Any) -> ToolCall:
    return ToolCall(agent, "mcp_stdio", "fs", tool, args or {"path": "/srv/notes.txt", "content": "hi"})


async def approve_once(mesh: Mesh, c: ToolCall, by: str = "alice") -> None:
    pending = await mesh.gate.check(c)
    assert pending.kind is VerdictKind.PENDING
    assert pending.approval_id is not None
    mesh.operator.approve(pending.approval_id, by=by, reason="routine")
    assert (await mesh.gate.check(c)).allowed
    mesh.clock.advance(20)  # past loop detection's window: a human is slower than that anyway


async def test_a_read_is_allowed_by_its_rule(mesh: Mesh) -> None:
    v = await mesh.gate.check(call("read_file", path="/srv/a"))
    assert (v.kind, v.decided_by, v.code) == (VerdictKind.ALLOW, "policy:dev/reads", "allowed")
    assert len(v.trace_id) == 32


async def test_an_unknown_tool_is_denied_by_default(mesh: Mesh) -> None:
    v = await mesh.gate.check(call("rename_file"))
    assert (v.kind, v.decided_by, v.code) == (VerdictKind.DENY, "default", "denied")


async def test_a_write_waits_for_a_human_and_a_retry_reuses_the_same_approval(mesh: Mesh) -> None:
    first = await mesh.gate.check(call())
    assert (first.kind, first.decided_by, first.code) == (VerdictKind.PENDING, "policy:dev/writes", "approval_pending")
    assert first.approval_id is not None
    assert len(first.approval_id) >= 8
    assert first.retry_after == 2.0
    again = await mesh.gate.check(call())
    assert again.approval_id == first.approval_id
    [pending] = mesh.operator.approvals()
    assert (pending.agent, pending.full_name) == ("claude", "fs.write_file")
    assert pending.arguments["path"] == "/srv/notes.txt"


async def test_an_approved_call_passes_exactly_once(mesh: Mesh) -> None:
    first = await mesh.gate.check(call())
    assert first.approval_id is not None
    mesh.operator.approve(first.approval_id[:6], by="alice", reason="ok")
    passed = await mesh.gate.check(call())
    assert (passed.kind, passed.decided_by, passed.approval_id) == (VerdictKind.ALLOW, "human:alice", first.approval_id)
    again = await mesh.gate.check(call())
    assert again.kind is VerdictKind.PENDING
    assert again.approval_id != first.approval_id


async def test_an_approval_covers_only_the_identical_call(mesh: Mesh) -> None:
    first = await mesh.gate.check(call(path="/srv/a", content="x"))
    assert first.approval_id is not None
    mesh.operator.approve(first.approval_id, by="alice")
    other = await mesh.gate.check(call(path="/srv/a", content="y"))
    assert other.kind is VerdictKind.PENDING


async def test_deny_beats_grant_and_memory(mesh: Mesh) -> None:
    etc = call(path="/etc/passwd", content="x")
    mesh.operator.add_grant("claude", "fs.*", 3600, by="alice")
    for i in range(3):
        mesh.gate.store.add_fact(_fact(mesh, etc, i))
    v = await mesh.gate.check(etc)
    assert (v.kind, v.decided_by) == (VerdictKind.DENY, "policy:dev/no-etc")
    assert mesh.operator.grants()[0].uses == 0


async def test_a_grant_beats_memory(mesh: Mesh) -> None:
    c = call()
    for _ in range(3):
        await approve_once(mesh, c)
    grant = mesh.operator.add_grant("claude", "fs.write_file", 3600, by="alice")
    v = await mesh.gate.check(c)
    assert (v.kind, v.decided_by) == (VerdictKind.ALLOW, f"grant:{grant.id}")


async def test_an_exact_call_approval_comes_before_a_grant(mesh: Mesh) -> None:
    first = await mesh.gate.check(call())
    assert first.approval_id is not None
    mesh.operator.approve(first.approval_id, by="alice")
    mesh.operator.add_grant("claude", "fs.*", 3600, by="bob")
    v = await mesh.gate.check(call())
    assert (v.decided_by, v.approval_id) == ("human:alice", first.approval_id)
    assert mesh.operator.grants()[0].uses == 0


async def test_a_grant_lifts_only_calls_its_conditions_cover_and_counts_uses(mesh: Mesh) -> None:
    when = {"args.path": {"glob": "/srv/**"}}
    grant = mesh.operator.add_grant("cl*", "fs.write_*", 600, by="alice", when=when, max_uses=2)
    assert (await mesh.gate.check(call(path="/srv/a", content="1"))).decided_by == f"grant:{grant.id}"
    assert (await mesh.gate.check(call(path="/home/x", content="1"))).kind is VerdictKind.PENDING
    assert (await mesh.gate.check(call(path="/srv/b", content="2"))).allowed
    assert (await mesh.gate.check(call(path="/srv/c", content="3"))).kind is VerdictKind.PENDING


async def test_an_expired_or_revoked_grant_lifts_nothing(mesh: Mesh) -> None:
    short = mesh.operator.add_grant("claude", "fs.write_file", 60, by="alice")
    mesh.clock.advance(61)
    assert (await mesh.gate.check(call(path="/srv/1"))).kind is VerdictKind.PENDING
    g = mesh.operator.add_grant("claude", "fs.write_file", 600, by="alice")
    assert (await mesh.gate.check(call(path="/srv/2"))).decided_by == f"grant:{g.id}"
    mesh.operator.revoke_grant(g.id[:6], by="alice")
    assert (await mesh.gate.check(call(path="/srv/3"))).kind is VerdictKind.PENDING
    assert short.id not in {x.id for x in mesh.operator.grants()}


async def test_three_approvals_teach_memory_and_the_fourth_is_auto_approved(mesh: Mesh) -> None:
    c = call()
    for _ in range(3):
        await approve_once(mesh, c)
    v = await mesh.gate.check(c)
    assert (v.kind, v.decided_by) == (VerdictKind.ALLOW, "memory:3")
    assert len(v.precedents) == 3
    assert "alice" in v.reason
    assert len(mesh.operator.facts()) == 3  # the auto-approval is not a new precedent


async def test_memory_does_not_cover_different_arguments(mesh: Mesh) -> None:
    for _ in range(3):
        await approve_once(mesh, call())
    assert (await mesh.gate.check(call(path="/srv/other.txt", content="hi"))).kind is VerdictKind.PENDING


async def test_one_rejection_blocks_the_memory_pattern(mesh: Mesh) -> None:
    c = call()
    for _ in range(3):
        await approve_once(mesh, c)
    mesh.gate.store.add_fact(_fact(mesh, c, 9, decision="deny"))
    assert (await mesh.gate.check(c)).kind is VerdictKind.PENDING


async def test_precedents_older_than_the_memory_window_do_not_count(mesh: Mesh) -> None:
    for _ in range(3):
        await approve_once(mesh, call())
    mesh.clock.advance(8 * 86400)
    assert (await mesh.gate.check(call())).kind is VerdictKind.PENDING


async def test_a_memory_key_on_some_fields_ignores_the_others(tmp_path: Any, store: Any) -> None:
    mesh = Mesh(tmp_path / "state", store, extra="memory: {auto_approve_after: 2, key: [args.path]}")
    for content in ("a", "b"):
        await approve_once(mesh, call(path="/srv/log", content=content))
    v = await mesh.gate.check(call(path="/srv/log", content="c"))
    assert v.decided_by == "memory:2"
    assert (await mesh.gate.check(call(path="/srv/other", content="c"))).kind is VerdictKind.PENDING


async def test_a_denied_call_is_refused_at_once_during_the_cooldown(mesh: Mesh) -> None:
    first = await mesh.gate.check(call())
    assert first.approval_id is not None
    mesh.operator.deny(first.approval_id, by="bob", reason="not today")
    again = await mesh.gate.check(call())
    assert (again.kind, again.decided_by, again.approval_id) == (VerdictKind.DENY, "human:bob", first.approval_id)
    assert "not today" in again.reason
    mesh.clock.advance(301)
    assert (await mesh.gate.check(call())).kind is VerdictKind.PENDING


async def test_approve_for_a_while_also_grants_the_tool(mesh: Mesh) -> None:
    first = await mesh.gate.check(call())
    assert first.approval_id is not None
    _, grant = mesh.operator.approve(first.approval_id, by="alice", for_seconds=1800)
    assert grant is not None
    assert (grant.agent, grant.tool) == ("claude", "fs.write_file")
    assert (await mesh.gate.check(call())).decided_by == "human:alice"
    assert (await mesh.gate.check(call(path="/srv/x"))).decided_by == f"grant:{grant.id}"
    assert (await mesh.gate.check(call("delete_file", path="/srv/x"))).kind is VerdictKind.PENDING
    assert mesh.operator.show(first.approval_id).grant_id == grant.id


async def test_visible_hides_only_tools_denied_whatever_the_arguments(mesh: Mesh) -> None:
    assert mesh.gate.visible(call("read_file"))
    assert mesh.gate.visible(call("write_file"))  # denied only for /etc/
    assert not mesh.gate.visible(call("format_disk"))
    assert not mesh.gate.visible(call("unknown_tool"))
    assert not mesh.gate.visible(call("read_file", agent="stranger"))


async def test_finish_records_exactly_one_trace_per_call_refused_ones_too(mesh: Mesh) -> None:
    from policy import Outcome

    allowed = await mesh.gate.check(call("read_file", path="/srv/a", token="s3cret"))
    mesh.gate.finish(call("read_file", path="/srv/a", token="s3cret"), allowed, Outcome(True, status=200))
    denied = await mesh.gate.check(call("format_disk"))
    mesh.gate.finish(call("format_disk"), denied, Outcome(False))
    first, second = mesh.sink.records
    assert (first["trace_id"], first["verdict"], first["decided_by"]) == (allowed.trace_id, "allow", "policy:dev/reads")
    assert first["args"]["token"] == "[REDACTED]"
    assert (second["verdict"], second["outcome"]) == ("deny", "refused")
    assert second["prev_hash"] == first["hash"]


def _fact(mesh: Mesh, c: ToolCall, i: int, decision: str = "approve") -> Any:
    from policy.store import Fact

    return Fact(
        id=f"f{i:011x}",
        agent=c.agent,
        tool=c.full_name,
        memory_key=mesh.gate._ladder.memory_key(c),
        decision=decision,
        by="carol",
        reason="",
        ts=mesh.clock(),
    )


async def test_a_rule_with_a_condition_is_judged_on_every_call_of_the_tool(mesh: Mesh) -> None:
    assert (await mesh.gate.check(call(path="/etc/passwd", content="x"))).kind is VerdictKind.DENY
    assert (await mesh.gate.check(call(path="/srv/a.txt", content="x"))).kind is VerdictKind.PENDING
    assert (await mesh.gate.check(call(path="/etc/hosts", content="x"))).kind is VerdictKind.DENY


async def test_a_tool_whose_first_rule_has_no_condition_gets_the_same_decision_for_any_arguments(mesh: Mesh) -> None:
    first = await mesh.gate.check(call("read_file", path="/srv/a"))
    second = await mesh.gate.check(call("read_file", path="/srv/b"))
    assert first.decision == second.decision
    assert first.trace_id != second.trace_id


async def test_past_the_pending_cap_a_new_call_is_refused_but_an_identical_retry_still_waits(
    tmp_path: Any, store: Any
) -> None:
    mesh = Mesh(tmp_path / "state", store, approval=", max_pending_per_agent: 2")
    first = await mesh.gate.check(call(path="/srv/1"))
    second = await mesh.gate.check(call(path="/srv/2"))
    assert first.kind is second.kind is VerdictKind.PENDING
    third = await mesh.gate.check(call(path="/srv/3"))
    assert (third.kind, third.decided_by) == (VerdictKind.RATE_LIMITED, "limit:max_pending")
    retry = await mesh.gate.check(call(path="/srv/1"))
    assert (retry.kind, retry.approval_id) == (VerdictKind.PENDING, first.approval_id)


async def test_approve_for_a_while_on_an_http_call_grants_only_that_host(mesh: Mesh) -> None:
    def at(host: str, path: str = "/srv/a") -> ToolCall:
        info = HttpInfo("POST", host, "/v1/files", 443, "https", path)
        return ToolCall("claude", "openapi", "fs", "write_file", {"path": path}, None, info)

    first = await mesh.gate.check(at("staging.example"))
    assert first.approval_id is not None
    _, grant = mesh.operator.approve(first.approval_id, by="alice", for_seconds=1800)
    assert grant is not None
    assert grant.when == {"http.host": {"eq": "staging.example"}}
    assert (await mesh.gate.check(at("staging.example"))).decided_by == "human:alice"  # the approval, once
    assert (await mesh.gate.check(at("staging.example", "/srv/b"))).decided_by == f"grant:{grant.id}"
    assert (await mesh.gate.check(at("prod.example", "/srv/b"))).kind is VerdictKind.PENDING


async def test_a_call_whose_arguments_hold_a_lone_surrogate_is_judged_and_recorded(mesh: Mesh) -> None:
    odd = call("read_file", path="/srv/\udcff\ud800")
    verdict = await mesh.gate.check(odd)
    assert verdict.allowed
    assert verdict.trace_id in mesh.sink.ahead_records
