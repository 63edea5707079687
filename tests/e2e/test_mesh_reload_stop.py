"""One mesh, live: an edited config is taken by every running process (serve, `agent-mesh proxy`, an mcpwrap
with a real stdio server) within 2 s and an invalid edit by none; `agent-mesh stop --all` refuses new and
held calls in mcpwrap and the proxy, and `agent-mesh resume --all` lets them through again."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from policy.store.base import ApprovalState
from policy.store.board import Process, SqliteBoard
from policy.store.sqlite import SqliteStore
from tests.e2e.proxy_harness import running_proxy
from tests.e2e.serve_support import AGENT_MESH, running_serve
from tests.support.httpserver import http_server

SERVER = Path(__file__).resolve().parents[1] / "mcpwrap" / "stdio_server.py"
SWITCH_SECONDS = 2.0  # the bound for a reload to reach every process
STOP_SECONDS = 2.0  # a generous bound on the e2e path; the figure measured is printed (about 0.05-0.2 s)
START_SECONDS = 30.0
REPLY_SECONDS = 10.0

CONFIG = """
version: 1
state_dir: {state}
approval: {{hold_seconds: 60}}
policies:
  - name: everyone
    agent: "*"
    rules:
      - {{name: waits, tools: ["stdlib.shout", "*.POST /*"], action: human_approval}}
      - {{name: open, tools: ["*"], action: ACTION}}
"""


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._ok()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self._ok()

    def _ok(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Wrapped:
    """An MCP client on mcpwrap's stdio: one reader thread, replies by id, bounded waits."""

    def __init__(self, config: Path) -> None:
        argv = [sys.executable, "-m", "mcpwrap", "--config", str(config), "--agent", "claude", "--",
                sys.executable, str(SERVER)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.replies: dict[Any, queue.Queue[dict[str, Any]]] = {}
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}})
        self.reply(0, START_SECONDS)
        self.send({"jsonrpc": "2.0", "id": "l", "method": "tools/list", "params": {}})
        self.reply("l", REPLY_SECONDS)

    def _box(self, request_id: Any) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self.replies.setdefault(request_id, queue.Queue())

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            if "id" in message:
                self._box(message["id"]).put(message)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def call(self, request_id: int, tool: str, **arguments: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                   "params": {"name": tool, "arguments": arguments}})  # fmt: skip

    def reply(self, request_id: Any, timeout: float) -> dict[str, Any]:
        return self._box(request_id).get(timeout=timeout)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def wrapped(config: Path) -> Iterator[Wrapped]:
    client = Wrapped(config)
    try:
        yield client
    finally:
        client.close()


def refusal(reply: dict[str, Any]) -> dict[str, Any]:
    result = reply["result"]
    assert result["isError"] is True, reply
    payload: dict[str, Any] = result["structuredContent"]
    return payload


def processes(state: Path) -> list[Process]:
    board = SqliteBoard(state)
    try:
        now = time.time()
        return [p for p in board.processes() if p.alive(now)]
    finally:
        board.close()


def wait_for_board(state: Path, test: Any, timeout: float) -> tuple[list[Process], float]:
    """Poll the board until `test(processes)` holds; (processes, seconds it took). Raises on timeout."""
    start = time.monotonic()
    while True:
        procs = processes(state)
        if test(procs):
            return procs, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"the board never got there in {timeout} s: {procs}")
        time.sleep(0.02)


def records(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "traces.jsonl").read_text().splitlines()]


def record_of(state: Path, tool: str, timeout: float = 10.0) -> dict[str, Any]:
    """The newest call record of `tool` once written (the trace writer batches in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in records(state) if r.get("tool") == tool and r.get("kind") != "event"]
        if found and "outcome" in found[-1] and found[-1].get("outcome") != "unknown":
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no record of {tool}")
        time.sleep(0.05)


def events_named(state: Path, event: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The trace's `event` records of that name, once `count` are written (each process's writer batches)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in records(state) if r.get("kind") == "event" and r.get("event") == event]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} {event} events, not {count}")
        time.sleep(0.05)


def get(proxy: str, url: str) -> httpx.Response:
    with httpx.Client(proxy=proxy, trust_env=False, timeout=REPLY_SECONDS) as client:
        return client.get(url)


def test_an_edit_reaches_serve_the_proxy_and_mcpwrap_within_two_seconds_and_an_invalid_edit_none(
    tmp_path: Path,
) -> None:
    text = CONFIG.replace("ACTION", "allow")
    with http_server(Upstream) as upstream, running_serve(tmp_path, text) as serve:
        config, state = serve.config, serve.state
        with running_proxy(config) as proxy, wrapped(config) as client:
            procs, _ = wait_for_board(state, lambda ps: {p.kind for p in ps} == {"serve", "proxy", "mcpwrap"}, 30)
            (before,) = {p.policy_hash for p in procs}
            # mcpwrap names the server as it introduced itself (initialize), not the command's basename
            wait_for_board(state, lambda ps: any(p.kind == "mcpwrap" and p.server == "stdlib" for p in ps), 5)
            assert get(proxy.url, f"{upstream}/a").status_code == 200

            config.write_text(config.read_text().replace("action: allow", "action: deny"))
            procs, took = wait_for_board(
                state, lambda ps: len(ps) == 3 and all(p.policy_hash != before for p in ps), SWITCH_SECONDS
            )
            (after,) = {p.policy_hash for p in procs}
            print(f"\nall three processes switched {took:.2f} s after the edit was seen on the board")

            client.call(1, "echo", text="hi")
            assert refusal(client.reply(1, REPLY_SECONDS))["rule"] == "everyone/open"
            assert record_of(state, "stdlib.echo")["policy_hash"] == after
            for port in (proxy.port, serve.proxy_port):
                answer = get(f"http://127.0.0.1:{port}", f"{upstream}/b")
                assert answer.status_code == 403
                assert answer.json()["rule"] == "everyone/open"
            assert record_of(state, "127.0.0.1.GET /b")["policy_hash"] == after

            config.write_text(text.format(state=state).replace("ACTION", "allow") + "policies: [oops\n")
            procs, _ = wait_for_board(
                state, lambda ps: len(ps) == 3 and all(p.reload_error for p in ps), SWITCH_SECONDS
            )
            assert {p.policy_hash for p in procs} == {after}
            assert all("agent-mesh.yaml" in (p.reload_error or "") for p in procs)
            client.call(2, "echo", text="still denied")
            assert refusal(client.reply(2, REPLY_SECONDS))["rule"] == "everyone/open"
            assert get(proxy.url, f"{upstream}/c").status_code == 403
            failed = events_named(state, "policy_reload_failed", 3)
            assert {r["args"]["process"].split()[0] for r in failed} == {"serve", "proxy", "mcpwrap"}
            status = subprocess.run(
                [AGENT_MESH, "status", "--config", str(config), "--state-dir", str(state), "--json"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            shown = json.loads(status.stdout)["processes"]
            assert {p["kind"] for p in shown if p["reload_error"]} == {"serve", "proxy", "mcpwrap"}
        assert "still running policy" in proxy.proc.output()
        assert any("still running policy" in line for line in client.stderr)
    assert "still running policy" in serve.proc.output()


def test_stop_all_refuses_new_and_held_calls_in_mcpwrap_and_the_proxy_and_resume_restores_them(
    tmp_path: Path,
) -> None:
    config = tmp_path / "agent-mesh.yaml"
    state = tmp_path / "state"
    config.write_text(CONFIG.replace("ACTION", "allow").format(state=state))
    with http_server(Upstream) as upstream, running_proxy(config) as proxy, wrapped(config) as client:
        wait_for_board(state, lambda ps: {p.kind for p in ps} == {"proxy", "mcpwrap"}, START_SECONDS)
        client.call(1, "shout", text="needs a human")  # held by mcpwrap
        held_http: queue.Queue[httpx.Response] = queue.Queue()

        def post() -> None:
            with httpx.Client(proxy=proxy.url, trust_env=False, timeout=60) as http:
                held_http.put(http.post(f"{upstream}/deploy", json={"x": 1}))

        threading.Thread(target=post, daemon=True).start()
        store = SqliteStore(state)
        try:
            deadline = time.monotonic() + START_SECONDS
            while len(store.list_approvals(ApprovalState.PENDING, time.time())) < 2:
                assert time.monotonic() < deadline, "the two calls were never held"
                time.sleep(0.02)
        finally:
            store.close()

        stop = subprocess.run(
            [AGENT_MESH, "stop", "--config", str(config), "--all", "--reason", "e2e: runaway agent", "--by", "alice",
             "--json"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        stopped_at = time.monotonic()
        assert stop.returncode == 0, stop.stderr

        written_at = json.loads(stop.stdout)["stop"]["at"]  # when the stop row was written (wall clock)
        mcp_held = refusal(client.reply(1, STOP_SECONDS))
        mcp_took, mcp_since_row = time.monotonic() - stopped_at, time.time() - written_at
        http_held = held_http.get(timeout=STOP_SECONDS)
        http_took, http_since_row = time.monotonic() - stopped_at, time.time() - written_at
        print(
            f"\nheld calls refused {mcp_took:.3f} s (mcpwrap) and {http_took:.3f} s (proxy) after `stop` returned;"
            f" at most {mcp_since_row:.3f} s / {http_since_row:.3f} s after the stop row was written"
        )
        assert mcp_held["code"] == "stopped"
        assert "e2e: runaway agent" in mcp_held["reason"]
        assert "alice" in mcp_held["reason"]
        assert http_held.status_code == 403
        assert http_held.json()["code"] == "stopped"

        client.call(2, "echo", text="new")
        assert refusal(client.reply(2, REPLY_SECONDS))["code"] == "stopped"
        answer = get(proxy.url, f"{upstream}/new")
        assert answer.status_code == 403
        assert answer.json()["code"] == "stopped"
        assert record_of(state, "stdlib.echo")["rule"] == "stop"

        done = subprocess.run(
            [AGENT_MESH, "resume", "--config", str(config), "--all"], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + STOP_SECONDS
        request_id = 10
        while True:
            request_id += 1
            client.call(request_id, "echo", text="again")
            reply = client.reply(request_id, REPLY_SECONDS)
            if not reply["result"].get("isError"):
                break
            assert time.monotonic() < deadline, reply
        assert get(proxy.url, f"{upstream}/again").status_code == 200
        events = [
            r["event"] for r in records(state) if r.get("kind") == "event" and r.get("event") in ("stop", "resume")
        ]
        assert events == ["stop", "resume"]


def test_a_one_shot_mcpwrap_exec_started_during_a_stop_is_refused_and_runs_after_resume(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(CONFIG.replace("ACTION", "allow").format(state=tmp_path / "state"))
    marker = tmp_path / "ran"
    argv = [sys.executable, "-m", "mcpwrap", "exec", "--config", str(config), "--", "touch", str(marker)]
    stop = [AGENT_MESH, "stop", "--config", str(config), "--all", "--reason", "e2e: hands off"]
    assert subprocess.run(stop, capture_output=True, timeout=30).returncode == 0
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 126
    assert "e2e: hands off" in refused.stderr
    assert not marker.exists()
    resume = [AGENT_MESH, "resume", "--config", str(config), "--all"]
    assert subprocess.run(resume, capture_output=True, timeout=30).returncode == 0
    assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    assert marker.exists()
