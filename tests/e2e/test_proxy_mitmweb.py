"""mitmweb (`agent-mesh proxy --web`): a held call shows as intercepted with its approval in the comment, and
a Resume click approves it through the Operator instead of forwarding around the gate."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.proxy_harness import AGENT_MESH, make_private_ca, running_proxy, tls_upstream
from tests.support.net import free_port, wait_for_port
from tests.support.proc import run

CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  echo: {{base_url: "{base}"}}
proxy: {{extra_ca: ["{ca}"]}}
approval: {{hold_seconds: 60}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: writes-ask, tools: ["echo.POST *"], action: human_approval}}
"""
WEB_PASSWORD = "web-secret"


def test_resume_in_mitmweb_approves_the_held_call(tmp_path: Path) -> None:
    ca, leaf = make_private_ca(tmp_path)
    with tls_upstream(leaf) as (base, seen):
        config = tmp_path / "agent-mesh.yaml"
        config.write_text(CONFIG.format(base=base, ca=ca))
        web_port = free_port()
        extra = ["--web-port", str(web_port), "--set", f"web_password={WEB_PASSWORD}"]
        with running_proxy(config, *extra, web=True) as proxy:
            wait_for_port(web_port, timeout=30)
            answer: dict[str, httpx.Response] = {}

            def post() -> None:
                with httpx.Client(proxy=f"http://claude:s3cret@127.0.0.1:{proxy.port}", verify=False, timeout=90) as c:
                    answer["r"] = c.post(f"{base}/notes", json={"text": "hi"})

            agent = threading.Thread(target=post)
            agent.start()
            web = httpx.Client(
                base_url=f"http://127.0.0.1:{web_port}", headers={"authorization": f"Bearer {WEB_PASSWORD}"}
            )
            with web:
                held: list[dict[str, Any]] = []
                for _ in range(100):
                    held = [f for f in web.get("/flows").json() if f["intercepted"]]
                    if held:
                        break
                    agent.join(0.1)
                assert held, "no intercepted flow appeared in mitmweb"
                assert "held for approval" in held[0]["comment"]
                assert ("POST", "/notes") not in seen
                # Tornado's double-submit XSRF check: the same value as cookie and header, as mitmweb's page sends.
                web.cookies.set("_mitmproxy_xsrf", "t0k3n")
                resumed = web.post(f"/flows/{held[0]['id']}/resume", headers={"x-xsrftoken": "t0k3n"})
                assert resumed.status_code == 200
            agent.join(30)
            approvals = json.loads(
                run([AGENT_MESH, "approvals", "list", "--state", "all", "--config", config, "--json"]).stdout
            )
    assert answer["r"].status_code == 200
    assert ("POST", "/notes") in seen
    assert approvals[0]["state"] == "approved"
    assert approvals[0]["resolved_by"] == "mitmweb"
    # The proxy has stopped (traces flushed): the call is recorded as decided by human:mitmweb, once.
    out = run([AGENT_MESH, "traces", "query", "--config", config, "--json", "--limit", "0"]).stdout
    calls = [r for r in map(json.loads, out.splitlines()) if r.get("kind", "call") == "call"]
    assert [(r["tool"], r["decided_by"]) for r in calls] == [("echo.POST /notes", "human:mitmweb")]
