"""`agent-mesh serve` as an operator runs it: proxy and control plane in one process, one Ctrl-C."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

import httpx

from policy import Gate, Outcome, ToolCall, VerdictKind, load_config
from policy.cli.look import runnable
from policy.control import verify
from tests.e2e.serve_support import (
    AGENT_MESH,
    AGENT_TOKEN,
    TOKEN,
    receiver,
    running_serve,
    upstream,
)
from tests.support.net import free_port
from tests.support.proc import Proc, run

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: reads, tools: ["*"], when: {{http.method: {{eq: GET}}}}, action: allow}}
      - {{name: writes-ask, tools: ["notes.*"], action: human_approval, reason: notes change}}
approval: {{hold_seconds: 1, notify_url: NOTIFY, notify_secret: hook-secret}}
"""
EVENT_SECONDS = 5.0


def _config(notify: str = "null") -> str:
    return CONFIG.replace("NOTIFY", notify)


def _proxy(port: int) -> str:
    return f"http://claude:{AGENT_TOKEN}@127.0.0.1:{port}"


async def _held_call(config: Path, tool: str = "write", args: dict[str, object] | None = None) -> str:
    """A call by another process than serve (like an mcpwrap): queued for approval; returns its id."""
    gate = Gate.open(load_config(str(config)))
    try:
        call = ToolCall("claude", "mcp_stdio", "notes", tool, args or {"text": "hi"}, session_id="other-process")
        verdict = await gate.check(call)
        gate.finish(call, verdict, Outcome(forwarded=False))
        assert verdict.kind is VerdictKind.PENDING
        assert verdict.approval_id is not None
        return verdict.approval_id
    finally:
        await gate.aclose()


def test_serve_governs_proxy_traffic_and_flushes_the_trace_on_ctrl_c(tmp_path: Path) -> None:
    with upstream() as up, running_serve(tmp_path, _config()) as s:
        r = httpx.get(f"{up}/items?page=1", proxy=_proxy(s.proxy_port), trust_env=False, timeout=10)
        assert r.status_code == 200
        assert r.json()["ok"] is True
        assert s.interrupt() == 0
        out = s.proc.output()
        assert "stopped; traces flushed" in out
        # the commands by name when PATH finds them, else by full path (a fresh clone before `make install`)
        mesh, wrap = runnable("agent-mesh"), runnable("mcpwrap")
        assert f"{wrap} install --config {s.config.resolve()} --client-config FILE" in out
        env = f"{mesh} env --config {s.config.resolve()} --listen 127.0.0.1:{s.proxy_port} --agent NAME"
        assert f'eval "$({env})"' in out
    records = [json.loads(line) for line in (s.state / "traces.jsonl").read_text().splitlines()]
    assert [(r["agent"], r["verdict"], r["outcome"]) for r in records] == [("claude", "allow", "ok")]
    assert run([AGENT_MESH, "traces", "verify", "--config", s.config]).returncode == 0


async def test_serve_prints_a_line_for_each_held_call_with_its_id_and_page_link(tmp_path: Path) -> None:
    with running_serve(tmp_path, _config()) as s:
        approval_id = await _held_call(s.config)
        line = s.proc.wait_for_line(rf"held: claude -> notes\.write  approval {approval_id}  (\S+)", timeout=10)
        assert line.group(1) == f"{s.control}#approval-{approval_id}"
        assert s.interrupt() == 0


async def test_serve_counts_the_calls_already_waiting_and_does_not_announce_them_as_new(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(_config().format(state=tmp_path / "state", agent_token=AGENT_TOKEN))
    await _held_call(config)
    with running_serve(tmp_path, _config()) as s:
        s.proc.wait_for_line(r"^1 call already waiting for a human: \S*agent-mesh approvals list$", timeout=10)
        assert s.interrupt() == 0
        assert "held: " not in s.proc.output()


def test_the_control_plane_refuses_agents_directly_and_through_the_proxy(tmp_path: Path) -> None:
    with running_serve(tmp_path, _config()) as s:
        with httpx.Client(proxy=_proxy(s.proxy_port), trust_env=False, timeout=10) as agent:
            routes = [("GET", "/api/approvals"), ("POST", "/api/approvals/abcdef123456/approve"), ("GET", "/metrics"),
                      ("GET", "/health"), ("GET", "/"), ("POST", "/login")]  # fmt: skip
            for method, path in routes:
                headers = {"Authorization": f"Bearer {TOKEN}"}  # even an agent that stole the operator token
                through = agent.request(method, f"{s.control}{path}", headers=headers, json={})
                assert through.status_code == 403, path
                assert through.json()["code"] == "control_plane"
        basic = "Basic " + base64.b64encode(f"claude:{AGENT_TOKEN}".encode()).decode()
        for headers in ({}, {"Authorization": f"Bearer {AGENT_TOKEN}"}, {"Authorization": basic}):
            r = httpx.get(f"{s.control}/api/approvals", headers=headers, trust_env=False)
            assert r.status_code == 401, headers
            assert r.headers["content-type"] == "application/problem+json"
        assert httpx.get(f"{s.control}/health", trust_env=False).status_code == 200
        with s.api() as api:
            assert api.get("/api/approvals").status_code == 200


async def test_the_live_stream_and_metrics_see_calls_made_by_other_processes(tmp_path: Path) -> None:
    with running_serve(tmp_path, _config()) as s:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx.AsyncClient(base_url=s.control, headers=headers, trust_env=False, timeout=10) as api,
            api.stream("GET", "/api/traces/stream", params={"agent": "claude"}) as stream,
        ):
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: ready"
            approval_id = await _held_call(s.config)
            started = time.monotonic()
            async with asyncio.timeout(EVENT_SECONDS):
                async for line in lines:
                    if line.startswith("data: ") and "other-process" in line:
                        break
            assert time.monotonic() - started < EVENT_SECONDS
            record = json.loads(line.removeprefix("data: "))
            assert (record["verdict"], record["approval_id"]) == ("pending", approval_id)
            metrics = (await api.get("/metrics")).text
        assert 'agent_mesh_calls_total{agent="claude",tool="notes.write",verdict="pending"} 1' in metrics
        assert "agent_mesh_pending_approvals 1" in metrics


async def test_notifications_are_signed_retried_and_sent_on_pending_and_resolution(tmp_path: Path) -> None:
    with receiver() as rec:
        rec.statuses = [503]  # the first delivery fails once and is retried
        with running_serve(tmp_path, _config(rec.url)) as s:
            approval_id = await _held_call(s.config)
            [pending] = await asyncio.to_thread(rec.wait_for, 1, EVENT_SECONDS)
            with s.api() as api:
                r = api.post(f"/api/approvals/{approval_id}/deny", json={"reason": "not today"})
                assert r.status_code == 200
            events = await asyncio.to_thread(rec.wait_for, 2, EVENT_SECONDS)
    assert pending["event"] == "approval.pending"
    assert pending["approval"]["id"] == approval_id
    assert pending["approval"]["tool"] == "notes.write"
    assert pending["approval"]["page_url"].endswith(f"#approval-{approval_id}")
    assert events[1]["event"] == "approval.denied"
    assert events[1]["approval"]["resolution"] == "not today"
    for headers, body in rec.received:
        assert verify("hook-secret", body, headers["x-agent-mesh-signature"])
        assert not verify("other-secret", body, headers["x-agent-mesh-signature"])


def test_serve_refuses_a_busy_port_with_a_clear_message(tmp_path: Path) -> None:
    port = free_port()
    with Proc([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=tmp_path) as busy:
        busy.wait_for_port(port)
        control = f"127.0.0.1:{free_port()}"
        argv = [AGENT_MESH, "serve", "--listen-proxy", f"127.0.0.1:{port}", "--listen-control", control]
        result = run(argv, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert f"cannot listen for the proxy on 127.0.0.1:{port}" in result.stderr


def test_serve_runs_on_the_built_in_default_in_an_empty_folder_with_state_in_the_user_s_data_dir(
    tmp_path: Path,
) -> None:
    proxy, control = free_port(), free_port()
    argv = [AGENT_MESH, "serve", "--listen-proxy", f"127.0.0.1:{proxy}", "--listen-control", f"127.0.0.1:{control}"]
    state = Path(os.environ["XDG_DATA_HOME"]) / "agent-mesh" / ".agent-mesh"  # per test (tests/conftest.py)
    with Proc(argv, cwd=tmp_path, env={"AGENT_MESH_CONFIG": ""}) as p:
        p.wait_for_line("Ctrl-C stops everything", timeout=30)
        assert "governing with <built-in default>" in p.output()
        assert "built-in default is the active mesh" in p.output()
        assert not (tmp_path / ".agent-mesh").exists()
        token = (state / "operator.token").read_text().strip()
        assert oct((state / "operator.token").stat().st_mode & 0o777) == "0o600"
        r = httpx.get(f"http://127.0.0.1:{control}/api/policies", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["policies"][0]["name"] == "default"
        p.popen.send_signal(2)
        assert p.wait_exit(timeout=15) == 0


def test_serve_exports_a_span_per_call_to_an_opentelemetry_collector(tmp_path: Path) -> None:
    with receiver() as collector, upstream() as up:
        endpoint = collector.url.removesuffix("/hook")
        config = _config().replace("approval:", f"traces: {{{{otlp_endpoint: {endpoint}}}}}\napproval:")
        with running_serve(tmp_path, config) as s:
            r = httpx.get(f"{up}/items", proxy=_proxy(s.proxy_port), trust_env=False, timeout=10)
            assert r.status_code == 200
            assert s.interrupt() == 0  # the SDK's batch processor flushes at exit
        [(headers, body)] = [(h, b) for h, b in collector.received if b"execute_tool" in b]
    assert headers["content-type"] == "application/x-protobuf"
    assert b"agent_mesh.agent" in body
    assert b"claude" in body
