"""Observing through the control API: traces, sessions, policies, the /decide dry run, metrics, OpenAPI."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from policy.control import create_app
from policy.control.plane import ControlPlane
from tests.policy.control.conftest import Call


async def test_traces_are_queried_newest_first_with_filters(client: httpx.AsyncClient, call: Call) -> None:
    await call("fs.read_file", {"path": "/a"})
    await call("fs.delete_file", {"path": "/a"})
    await call("gh.create_issue", {"title": "t"}, agent="cursor")
    tools = lambda r: [t["tool"] for t in r.json()["traces"]]  # noqa: E731
    assert tools(await client.get("/api/traces")) == ["gh.create_issue", "fs.delete_file", "fs.read_file"]
    assert tools(await client.get("/api/traces", params={"verdict": "deny"})) == ["fs.delete_file"]
    assert tools(await client.get("/api/traces", params={"tool": "fs.*", "limit": 1})) == ["fs.delete_file"]
    assert tools(await client.get("/api/traces", params={"agent": "cursor"})) == ["gh.create_issue"]
    assert tools(await client.get("/api/traces", params={"decided_by": "policy:dev/reads"})) == ["fs.read_file"]
    r = await client.get("/api/traces", params={"since": "yesterday"})
    assert r.status_code == 400
    assert "since" in r.json()["detail"]


async def test_sessions_summarise_calls_per_session(client: httpx.AsyncClient, call: Call) -> None:
    await call("fs.read_file", {"path": "/a"})
    await call("fs.delete_file", {"path": "/a"})
    [s] = (await client.get("/api/sessions")).json()["sessions"]
    assert (s["session_id"], s["agent"], s["calls"], s["allowed"], s["refused"]) == ("s1", "claude", 2, 1, 1)


async def test_policies_come_in_evaluation_order_with_their_rules(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/policies")).json()
    [p] = body["policies"]
    assert p["name"] == "dev"
    assert [r["action"] for r in p["rules"]] == ["allow", "deny", "human_approval"]
    assert body["policy_hash"]


async def test_decide_is_a_dry_run_that_changes_nothing(client: httpx.AsyncClient, call: Call) -> None:
    body = {"agent": "claude", "tool": "fs.write_file", "args": {"path": "/x"}}
    r = await client.post("/decide", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["decision"]["action"] == "human_approval"
    assert out["would_be"] == "pending"
    assert (await client.get("/api/approvals")).json()["approvals"] == []
    await client.post("/api/grants", json={"agent": "claude", "tool": "fs.*", "for": "5m"})
    out = (await client.post("/api/decide", json=body)).json()
    assert (out["would_be"], out["lifted_by"][:6]) == ("allow", "grant:")
    assert (await client.post("/api/decide", json={"agent": "claude"})).status_code == 400
    assert (await client.post("/api/decide", json={**body, "surface": "carrier-pigeon"})).status_code == 400


async def test_metrics_count_calls_recorded_by_any_process(
    client: httpx.AsyncClient, call: Call, plane: ControlPlane
) -> None:
    await call("fs.read_file", {"path": "/a"})  # before the first poll: counted from the history
    plane.watcher.step()
    await call("fs.read_file", {"path": "/b"})
    await call("fs.write_file", {"path": "/b"})
    plane.watcher.step()
    r = await client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert 'agent_mesh_calls_total{agent="claude",tool="fs.read_file",verdict="allow"} 2' in text
    assert 'agent_mesh_calls_total{agent="claude",tool="fs.write_file",verdict="pending"} 1' in text
    assert "agent_mesh_pending_approvals 1" in text
    assert "# TYPE agent_mesh_decision_latency_seconds histogram" in text
    assert "agent_mesh_decision_latency_seconds_count 2" in text  # decision_ms of the two calls after the seed
    assert 'agent_mesh_upstream_latency_seconds_bucket{le="0.005"} 2' in text


async def test_the_openapi_document_describes_every_api_route(client: httpx.AsyncClient, plane: ControlPlane) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    app = create_app(plane)
    served = {
        (r.path, m)
        for r in app.routes
        if isinstance(r, Route) and not r.path.startswith(("/ui", "/static", "/login", "/logout")) and r.path != "/"
        for m in (r.methods or ()) - {"HEAD"}
    }
    assert served == documented


def test_the_openapi_document_loads_in_the_proxys_own_openapi_parser_with_unique_operation_ids() -> None:
    from addons.openapi_spec import parse_spec
    from policy.control.openapi import document

    ops = parse_spec(document("1"), "control").operations
    ids = [o.tool for o in ops]
    assert len(ids) == len(set(ids)) == 23
    assert "approve" in ids
