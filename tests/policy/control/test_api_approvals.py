"""Approvals, grants and memory through the control API, on a real SQLite state dir."""

from __future__ import annotations

import httpx

from policy import Gate, VerdictKind
from tests.policy.control.conftest import Call


async def test_a_held_call_is_listed_with_redacted_arguments_and_its_rule(
    client: httpx.AsyncClient, call: Call
) -> None:
    v = await call("fs.write_file", {"path": "/etc/x", "api_key": "sk-abcdefghijklmnopqrstuvwxyz"})
    assert v.kind is VerdictKind.PENDING
    r = await client.get("/api/approvals")
    [a] = r.json()["approvals"]
    assert a["id"] == v.approval_id
    assert a["tool"] == "fs.write_file"
    assert a["rule"] == "dev/writes-ask"
    assert a["arguments"] == {"path": "/etc/x", "api_key": "[REDACTED]"}
    assert a["state"] == "pending"
    assert a["injection_risk"] is False


async def test_approvals_filter_by_status_agent_and_tool_glob(client: httpx.AsyncClient, call: Call) -> None:
    await call("fs.write_file", {"path": "/a"})
    await call("gh.create_issue", {"title": "x"}, agent="cursor")
    tools = lambda r: sorted(a["tool"] for a in r.json()["approvals"])  # noqa: E731
    assert tools(await client.get("/api/approvals", params={"tool": "gh.*"})) == ["gh.create_issue"]
    assert tools(await client.get("/api/approvals", params={"agent": "clau*"})) == ["fs.write_file"]
    assert tools(await client.get("/api/approvals", params={"status": "approved"})) == []
    assert (await client.get("/api/approvals", params={"status": "maybe"})).status_code == 400
    assert (await client.get("/api/approvals", params={"tool": "[x"})).status_code == 400


async def test_approval_detail_shows_the_agents_recent_traces_and_grants(client: httpx.AsyncClient, call: Call) -> None:
    await call("fs.read_file", {"path": "/a"})
    v = await call("fs.write_file", {"path": "/b"})
    await client.post("/api/grants", json={"agent": "claude", "tool": "gh.*", "for": "10m"})
    r = await client.get(f"/api/approvals/{v.approval_id}")
    assert r.status_code == 200
    body = r.json()
    assert [t["tool"] for t in body["recent_traces"]] == ["fs.write_file", "fs.read_file"]
    assert [g["tool"] for g in body["grants"]] == ["gh.*"]


async def test_approving_lets_the_held_call_through_as_the_operator(
    client: httpx.AsyncClient, call: Call, gate: Gate
) -> None:
    v = await call("fs.write_file", {"path": "/b"})
    r = await client.post(f"/api/approvals/{v.approval_id}/approve", json={"reason": "looks fine", "confidence": 0.9})
    assert r.status_code == 200
    assert r.json()["approval"]["state"] == "approved"
    assert r.json()["approval"]["resolution"] == "looks fine (confidence 0.9)"
    settled = await gate.hold(v, seconds=1)
    assert settled.kind is VerdictKind.ALLOW
    assert settled.decided_by == "human:alice"


async def test_approving_twice_is_a_conflict_and_an_unknown_id_is_not_found(
    client: httpx.AsyncClient, call: Call
) -> None:
    v = await call("fs.write_file", {"path": "/b"})
    assert (await client.post(f"/api/approvals/{v.approval_id}/approve", json={})).status_code == 200
    again = await client.post(f"/api/approvals/{v.approval_id}/approve", json={})
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert "already approved" in again.json()["detail"]
    assert (await client.post(f"/api/approvals/{v.approval_id}/deny", json={})).status_code == 409
    for method, path in [("GET", "/api/approvals/ffffff000000"), ("POST", "/api/approvals/ffffff000000/approve"),
                         ("POST", "/api/approvals/ffffff000000/deny"), ("DELETE", "/api/grants/ffffff000000"),
                         ("DELETE", "/api/memory/ffffff000000")]:  # fmt: skip
        r = await client.request(method, path, json={})
        assert r.status_code == 404, path
        assert r.json()["code"] == "not_found"


async def test_approve_for_a_duration_also_grants_the_tool(client: httpx.AsyncClient, call: Call) -> None:
    v = await call("fs.write_file", {"path": "/b"})
    r = await client.post(f"/api/approvals/{v.approval_id}/approve", json={"for": "30m"})
    grant = r.json()["grant"]
    assert grant["agent"] == "claude"
    assert grant["tool"] == "fs.write_file"
    assert 1790 < grant["remaining_seconds"] <= 1800
    nxt = await call("fs.write_file", {"path": "/other"})
    assert nxt.kind is VerdictKind.ALLOW
    assert nxt.decided_by == f"grant:{grant['id']}"


async def test_a_denial_reaches_the_agent_with_its_reason(client: httpx.AsyncClient, call: Call, gate: Gate) -> None:
    v = await call("fs.write_file", {"path": "/b"})
    r = await client.post(f"/api/approvals/{v.approval_id}/deny", json={"reason": "not on Fridays"})
    assert r.json()["approval"]["state"] == "denied"
    settled = await gate.hold(v, seconds=1)
    assert settled.kind is VerdictKind.DENY
    assert "not on Fridays" in settled.reason


async def test_a_supervisor_resolves_as_supervisor_with_reasoning_and_confidence(
    client: httpx.AsyncClient, call: Call, gate: Gate
) -> None:
    v = await call("fs.write_file", {"path": "/tmp/x"})
    body = {"supervisor": "rules", "reason": "tmp writes are routine", "confidence": 0.75}
    r = await client.post(f"/api/approvals/{v.approval_id}/approve", json=body)
    assert r.json()["approval"]["resolved_by"] == "supervisor:rules"
    settled = await gate.hold(v, seconds=1)
    assert settled.decided_by == "supervisor:rules"
    facts = (await client.get("/api/memory")).json()["facts"]
    assert facts[0]["by"] == "supervisor:rules"
    assert facts[0]["reason"] == "tmp writes are routine (confidence 0.75)"


async def test_bad_resolution_input_is_refused_precisely(client: httpx.AsyncClient, call: Call) -> None:
    v = await call("fs.write_file", {"path": "/b"})
    url = f"/api/approvals/{v.approval_id}/approve"
    assert "confidence" in (await client.post(url, json={"confidence": 2})).json()["detail"]
    assert "for" in (await client.post(url, json={"for": "soon"})).json()["detail"]
    assert (
        "JSON" in (await client.post(url, content="{", headers={"Content-Type": "application/json"})).json()["detail"]
    )


async def test_grants_are_created_listed_and_revoked(client: httpx.AsyncClient, call: Call) -> None:
    r = await client.post(
        "/api/grants", json={"agent": "claude", "tool": "fs.write_*", "for": "1h", "max_uses": 1, "reason": "deploy"}
    )
    assert r.status_code == 201
    gid = r.json()["grant"]["id"]
    assert [g["id"] for g in (await client.get("/api/grants")).json()["grants"]] == [gid]
    assert (await call("fs.write_file", {"path": "/1"})).decided_by == f"grant:{gid}"
    assert (await call("fs.write_file", {"path": "/2"})).kind is VerdictKind.PENDING  # used up
    assert (await client.get("/api/grants")).json()["grants"] == []
    assert len((await client.get("/api/grants", params={"all": "true"})).json()["grants"]) == 1
    r = await client.delete(f"/api/grants/{gid[:8]}")
    assert r.status_code == 200
    assert r.json()["grant"]["revoked_by"] == "alice"
    assert (await client.delete(f"/api/grants/{gid}")).status_code == 409


async def test_grant_input_is_validated(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/grants", json={"agent": "a", "tool": "t"})).status_code == 400
    r = await client.post("/api/grants", json={"agent": "a", "tool": "t", "for": "5m", "when": {"args.x": {"zz": 1}}})
    assert r.status_code == 400
    assert "when" in r.json()["detail"]


async def test_memory_facts_are_listed_and_forgotten(client: httpx.AsyncClient, call: Call) -> None:
    for path in ("/a", "/b"):
        v = await call("fs.write_file", {"path": path})
        await client.post(f"/api/approvals/{v.approval_id}/approve", json={"reason": "ok"})
    facts = (await client.get("/api/memory", params={"agent": "claude"})).json()["facts"]
    assert len(facts) == 2
    assert (await client.delete(f"/api/memory/{facts[0]['id']}")).json() == {"forgotten": 1}
    assert (await client.post("/api/memory/forget", json={"agent": "claude"})).json() == {"forgotten": 1}
    assert (await client.post("/api/memory/forget", json={})).status_code == 400
