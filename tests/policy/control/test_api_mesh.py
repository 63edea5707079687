"""The control plane's mesh routes and page section: processes with the policy each runs, and the emergency
stop / resume (operator only, CSRF for browsers), which the gates of the same state dir obey."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from policy import Gate, load_config_text
from policy.control import ControlPlane, create_app
from policy.mesh.reload import MeshWatcher, ProcessInfo
from policy.store.board import Process, SqliteBoard, this_host
from tests.policy.control.conftest import BASE, CONFIG, Call


def beat(plane: ControlPlane, policy_hash: str, reload_error: str | None = None) -> None:
    now = time.time()
    plane.board.beat(
        Process(this_host(), os.getpid(), "mcpwrap", "fs", "claude", now, now, policy_hash, plane.loaded.file,
                reload_error)
    )  # fmt: skip


async def test_processes_show_whether_each_runs_the_policy_on_disk(
    plane: ControlPlane, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state", agent_token="agent-proxy-token-abcdef"))
    beat(plane, plane.policy_set.policy_hash)
    r = await client.get("/api/processes")
    assert r.status_code == 200
    (row,) = r.json()["processes"]
    assert (row["kind"], row["current"], row["state"]) == ("mcpwrap", True, "running")
    beat(plane, "0123456789abcdef", reload_error="agent-mesh.yaml:3: bad")
    (row,) = (await client.get("/api/processes")).json()["processes"]
    assert row["current"] is False
    assert any("last reload failed" in n for n in row["notes"])


async def test_stop_all_reaches_a_gate_on_the_same_state_dir_and_resume_lifts_it(
    plane: ControlPlane, client: httpx.AsyncClient, gate: Gate, call: Call
) -> None:
    watcher = MeshWatcher(gate.loaded, gate.policy_set.policy_hash, ProcessInfo("proxy"),
                          board=SqliteBoard(gate.config.state_dir), stops=gate.stops, on_reload=None)  # fmt: skip
    try:
        assert (await call("fs.read_file")).allowed
        r = await client.post("/api/stop", json={"all": True, "reason": "runaway agent"})
        assert r.status_code == 201
        assert r.json()["stop"]["by"] == "alice"
        assert watcher.poll_stops()
        refused = await call("fs.read_file")
        assert refused.decision.rule == "stop"
        assert "runaway agent" in refused.reason
        r = await client.post("/api/resume", json={"all": True})
        assert [s["reason"] for s in r.json()["lifted"]] == ["runaway agent"]
        assert watcher.poll_stops()
        assert (await call("fs.read_file")).allowed
    finally:
        watcher.close()
    events = [json.loads(line) for line in (Path(gate.config.state_dir) / "traces.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e.get("kind") == "event"] == ["stop", "resume"]


async def test_a_stop_needs_a_reason_and_one_scope(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/stop", json={"all": True, "reason": "  "})
    assert r.status_code == 400
    r = await client.post("/api/stop", json={"all": True, "agent": "claude", "reason": "why"})
    assert r.status_code == 400
    r = await client.post("/api/stop", json={"reason": "why"})
    assert r.status_code == 400


async def test_the_stop_routes_need_the_operator(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.post("/api/stop", json={"all": True, "reason": "x"})).status_code == 401
    assert (await anonymous.post("/api/resume", json={"all": True})).status_code == 401
    assert (await anonymous.get("/api/processes")).status_code == 401


async def test_the_page_shows_a_banner_for_a_stop_and_a_failed_reload(plane: ControlPlane) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(plane)), base_url=BASE) as c:
        assert (await c.get(f"/login?code={plane.auth.login_code()}")).status_code == 200
        page = (await c.get("/")).text
        assert 'id="mesh-section"' in page
        csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
        stop = await c.post(
            "/api/stop", json={"agent": "claude", "reason": "<b>loop</b>"}, headers={"X-CSRF-Token": csrf}
        )
        assert stop.status_code == 201
        beat(plane, "0123456789abcdef", reload_error="agent-mesh.yaml:3: bad")
        fragment = (await c.get("/ui/mesh")).text
        assert "STOPPED: emergency stop of agent &#x27;claude&#x27;" in fragment
        assert "&lt;b&gt;loop&lt;/b&gt;" in fragment
        assert "was not taken by mcpwrap" in fragment
        assert 'data-action="resume" data-scope="claude"' in fragment


def test_a_reload_reaches_the_planes_policies(plane: ControlPlane, tmp_path: Path) -> None:
    from policy import compile_policies
    from policy.mesh.reload import Reloaded

    text = CONFIG.format(state=tmp_path / "state", agent_token="agent-proxy-token-abcdef").replace("deny,", "allow,")
    loaded = load_config_text(text, str(tmp_path / "agent-mesh.yaml"), base_dir=str(tmp_path))
    plane.reload(Reloaded(loaded, compile_policies(loaded), ()))
    assert plane.policy_set.policy_hash == compile_policies(loaded).policy_hash
    assert plane.operator is not None
