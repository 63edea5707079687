"""REST through the addon: OpenAPI operations are judged, refusals are problem+json, holds wait inside the hook."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from policy import ApprovalState, Operator
from tests.addons.harness import creds, harness, make_flow, wait_until


async def test_an_allowed_operation_is_forwarded_and_traced_with_its_operation_id(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("GET", "https://petstore.test/v2/pet/7?fields=name")
        await h.addon.request(flow)
        assert flow.response is None
        assert "proxy-authorization" not in flow.request.headers
        assert flow.marked == ":heavy_check_mark:"  # ✔: a text font has it, unlike ✅
        assert "allow: petstore.getPetById (rule claude/reads)" in flow.comment
        h.respond(flow, 200, {"id": 7})
        (rec,) = h.records
        assert rec["tool"] == "petstore.getPetById"
        assert rec["server"] == "petstore"
        assert rec["agent"] == "claude"
        assert rec["surface"] == "openapi"
        assert rec["status"] == 200
        assert flow.metadata["agent-mesh"][0]["trace_id"] == rec["trace_id"]


async def test_a_denied_operation_gets_problem_json_and_never_reaches_the_upstream(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("DELETE", "https://petstore.test/v2/pet/7")
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 403
        assert flow.response.headers["content-type"] == "application/problem+json"
        body = json.loads(flow.response.content or b"")
        assert body["code"] == "denied"
        assert body["status"] == 403
        assert body["rule"] == "claude/no-deletes"
        assert body["type"].endswith("/denied")
        assert flow.marked == ":heavy_multiplication_x:"  # ✖
        (rec,) = h.records
        assert rec["verdict"] == "deny"
        assert rec["trace_id"] == body["trace_id"]


async def test_a_write_waits_for_a_human_and_proceeds_once_approved(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(flow))
        await wait_until(lambda: flow.intercepted)
        (pending,) = h.store.list_approvals(ApprovalState.PENDING, 0.0)
        assert pending.tool == "addPet"
        assert pending.arguments == {"name": "rex"}
        assert pending.id in flow.comment
        Operator(h.addon.judge.gate.config, h.store).approve(pending.id[:8], by="human:test")  # type: ignore[union-attr]
        await asyncio.wait_for(task, 5)
        assert flow.response is None
        assert not flow.intercepted
        assert "allow: petstore.addPet" in flow.comment


async def test_an_undecided_hold_answers_pending_with_the_approval_id(tmp_path: Path) -> None:
    with harness(tmp_path, hold_seconds=0.2) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        await h.addon.request(flow)
        assert flow.response is not None
        body = json.loads(flow.response.content or b"")
        assert flow.response.status_code == 403
        assert body["code"] == "approval_pending"
        assert body["approval_id"]
        assert "retry-after" in flow.response.headers
        assert not flow.intercepted


async def test_resume_in_mitmweb_approves_through_the_governor(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(flow))
        await wait_until(lambda: flow.intercepted)
        flow.resume()
        await asyncio.wait_for(task, 5)
        assert flow.response is None
        (approval,) = h.store.list_approvals(None, 0.0)
        assert approval.resolved_by == "mitmweb"  # the trace says human:mitmweb (once)


async def test_kill_in_mitmweb_denies_and_the_agent_still_gets_a_readable_answer(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(flow))
        await wait_until(lambda: flow.intercepted)
        flow.kill()
        await asyncio.wait_for(task, 5)
        assert flow.error is None
        assert flow.response is not None
        assert json.loads(flow.response.content or b"")["code"] == "denied"


async def test_mesh_commands_approve_a_held_call(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(flow))
        await wait_until(lambda: flow.intercepted)
        (pending,) = h.store.list_approvals(ApprovalState.PENDING, 0.0)
        assert "approved" in h.addon.approve(pending.id)
        await asyncio.wait_for(task, 5)
        assert flow.response is None
        assert "not pending" in h.addon.deny(pending.id) or "approved" in h.addon.deny(pending.id)


async def test_other_flows_keep_moving_while_one_is_held(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        held = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(held))
        await wait_until(lambda: held.intercepted)
        quick = make_flow("GET", "https://petstore.test/v2/pet/1")
        await asyncio.wait_for(h.addon.request(quick), 1)
        assert quick.response is None
        assert not task.done()
        task.cancel()


@pytest.mark.parametrize("credentials", [None, creds("claude", "wrong"), creds("mallory", "x"), "Bearer abc"])
async def test_wrong_or_missing_credentials_get_407(tmp_path: Path, credentials: str | None) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("GET", "https://petstore.test/v2/pet/1", agent=None)
        if credentials is not None:
            flow.request.headers["proxy-authorization"] = credentials
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 407
        assert flow.response.headers["proxy-authenticate"] == 'Basic realm="agent-mesh"'
        assert h.records == []


async def test_the_control_plane_is_refused_through_the_proxy(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        for url in ("http://127.0.0.1:8181/api/approvals", "http://localhost:8181/"):
            flow = make_flow("POST", url, {"approve": True})
            await h.addon.request(flow)
            assert flow.response is not None
            assert flow.response.status_code == 403
            assert json.loads(flow.response.content or b"")["code"] == "control_plane"


async def test_unknown_hosts_are_judged_as_plain_http(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        get = make_flow("GET", "https://example.test/a?q=1")
        await h.addon.request(get)
        assert get.response is None
        post = make_flow("POST", "https://example.test/a", {"x": 1})
        await h.addon.request(post)
        assert post.response is not None
        assert post.response.status_code == 403
        assert [(r["surface"], r["server"], r["tool"]) for r in h.records] == [
            ("http", "example.test", "example.test.POST /a")
        ]


async def test_a_path_that_upstreams_read_differently_is_refused(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("GET", "https://petstore.test/v2/pet/1/../../admin")
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 400


async def test_a_session_tag_in_the_proxy_user_name_becomes_the_calls_session(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("GET", "https://petstore.test/v2/pet/7", agent=None)
        flow.request.headers["proxy-authorization"] = creds("claude/mcpwrap-42", "s3cret")
        await h.addon.request(flow)
        h.respond(flow, 200, {"id": 7})
        (rec,) = h.records
        assert (rec["agent"], rec["session_id"]) == ("claude", "mcpwrap-42")


async def test_a_bug_while_judging_refuses_the_request_instead_of_forwarding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: mitmproxy forwards a flow whose addon hook raised, so the hook must answer itself.
    def broken(*_: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("addons.governance.classify", broken)
    with harness(tmp_path) as h:
        flow = make_flow("GET", "https://petstore.test/v2/pet/7")
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 500
        body = json.loads(flow.response.content or b"")
        assert body["code"] == "judge_error"
        assert "RuntimeError" in body["detail"]
