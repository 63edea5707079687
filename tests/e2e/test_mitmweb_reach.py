"""`agent-mesh serve --web`: mitmweb's interface resumes (approves) and aborts held calls, and lists every flow
with its headers. Like the control plane, it is for humans: an agent's request to it through the proxy is
refused in any spelling of its address, even under a policy that allows everything and with its token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.serve_support import AGENT_TOKEN, running_serve
from tests.support.net import free_port

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: everything, tools: ["*"], action: allow}}
"""
SECONDS = 30.0


@pytest.mark.e2e
def test_mitmwebs_interface_is_not_reachable_through_the_proxy(tmp_path: Path) -> None:
    web_port = free_port()
    with running_serve(tmp_path, CONFIG, extra=["--web", "--listen-web", f"127.0.0.1:{web_port}"]) as serve:
        web_url = serve.proc.wait_for_line(r"mitmweb\s+(http://\S+)", timeout=SECONDS).group(1)
        token = web_url.partition("?token=")[2]
        assert token
        with httpx.Client(timeout=SECONDS, trust_env=False) as direct:  # the operator's own browser: mitmweb
            assert direct.get(web_url).status_code == 200
        proxy = f"http://claude:{AGENT_TOKEN}@127.0.0.1:{serve.proxy_port}"
        with httpx.Client(proxy=proxy, timeout=SECONDS, trust_env=False) as agent:
            for host in ("127.0.0.1", "localhost", "127.1", "2130706433", "0.0.0.0"):
                r = agent.get(f"http://{host}:{web_port}/flows?token={token}")
                assert r.status_code == 403, (host, r.status_code, r.text[:200])
                assert r.json()["code"] == "control_plane"
