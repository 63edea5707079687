"""`agent-mesh serve --web`: mitmweb is serve's proxy. With a mitmweb tab open (headless Debian chromium), a
call that waits for a human shows as intercepted without a reload; Resume approves it through the Operator,
recorded once (`mitmweb` on the approval, `human:mitmweb` in the trace), and the agent's request goes on."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.browser import browser
from tests.e2e.serve_support import AGENT_TOKEN, running_serve
from tests.support.httpserver import http_server
from tests.support.net import free_port
from tests.support.targets import Targets

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
servers:
  notes: {{base_url: "NOTES"}}
approval: {{hold_seconds: 120}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: reads, tools: ["notes.GET *"], action: allow}}
      - {{name: writes-ask, tools: ["notes.POST *"], action: human_approval, reason: a human reads every note first}}
"""
SECONDS = 30.0


@contextmanager
def notes_api() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A plain HTTP upstream that answers 201 to a POST and records what reached it."""
    seen: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append((self.command, self.path, body))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with http_server(Handler) as base:
        yield base, seen


def traced_calls(api: httpx.Client, count: int) -> list[dict[str, Any]]:
    """The call records of notes.* once `count` are written (the trace writer batches)."""
    calls: list[dict[str, Any]] = []
    for _ in range(int(SECONDS / 0.1)):
        records = api.get("/api/traces", params={"tool": "notes.*"}).json()["traces"]
        calls = [r for r in records if r.get("kind", "call") == "call"]
        if len(calls) >= count:
            break
        threading.Event().wait(0.1)
    return calls


def test_a_held_call_shows_live_in_mitmweb_and_resume_approves_it_once(
    tmp_path: Path, targets: Targets, chromium: Path
) -> None:
    web_port = free_port()
    with (
        notes_api() as (notes, seen),
        running_serve(
            tmp_path, CONFIG.replace("NOTES", notes), extra=["--web", "--listen-web", f"127.0.0.1:{web_port}"]
        ) as serve,
        browser(targets, chromium) as b,
    ):
        web_url = serve.proc.wait_for_line(r"mitmweb\s+(http://\S+)", timeout=SECONDS).group(1)
        assert web_url.startswith(f"http://127.0.0.1:{web_port}/?token=")
        b.goto(web_url)
        b.wait_for_text("#mitmproxy", "mitmproxy is running", timeout=SECONDS)  # no flows yet
        answer: dict[str, httpx.Response] = {}

        def agent() -> None:
            proxy = f"http://claude:{AGENT_TOKEN}@127.0.0.1:{serve.proxy_port}"
            with httpx.Client(proxy=proxy, timeout=SECONDS * 3, trust_env=False) as client:
                answer["r"] = client.post(f"{notes}/notes", json={"text": "from the agent"})

        thread = threading.Thread(target=agent)
        thread.start()
        try:
            # Live: the open tab is never reloaded; mitmweb's websocket brings the intercepted state.
            b.wait_for("tr.intercepted", timeout=SECONDS)
            assert "/notes" in b.text("tr.intercepted")
            assert seen == []
            b.click("tr.intercepted")
            b.click(".flow-detail nav a:has-text('Comment')")
            b.wait_for_text(".flow-detail", "held for approval", timeout=SECONDS)
            assert "Resume approves, Abort denies" in b.text(".flow-detail")
            b.screenshot("mitmweb-held-call.png")
            b.click("button:has-text('Resume')")
            thread.join(SECONDS)
            assert not thread.is_alive()
            b.wait_for("tr.intercepted", state="detached", timeout=SECONDS)
        finally:
            thread.join(SECONDS * 3)
        assert b.state()["errors"] == []
        with serve.api() as api:
            approvals = api.get("/api/approvals", params={"status": "all"}).json()["approvals"]
            records = traced_calls(api, 1)
    assert answer["r"].status_code == 201
    assert [(m, p, json.loads(body)) for m, p, body in seen] == [("POST", "/notes", {"text": "from the agent"})]
    assert [(a["state"], a["resolved_by"]) for a in approvals] == [("approved", "mitmweb")]
    assert [(r["tool"], r["verdict"], r["decided_by"]) for r in records] == [
        ("notes.POST /notes", "allow", "human:mitmweb")
    ]
