"""The same request through `agent-mesh serve` and through `agent-mesh proxy`, both with the operator's
mitmproxy `map_remote` pointing the configured server's URL at a local upstream: each judges it by the URL the
agent asked for (server, tool and rule agree), and each sends it where the rewrite says."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.proxy_harness import AGENT_MESH, running_proxy
from tests.e2e.serve_support import AGENT_TOKEN, running_serve, upstream
from tests.support.proc import run

# `api.mesh-test.invalid` never resolves: only the rewrite can take a request there anywhere.
PUBLIC = "http://api.mesh-test.invalid"
CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
servers:
  api: {{base_url: "http://api.mesh-test.invalid/v1"}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: reads, tools: ["api.GET /v1/items*"], action: allow}}
      - {{name: no-deletes, tools: ["api.DELETE *"], action: deny}}
"""
WAIT_SECONDS = 30.0

Surface = Callable[[Path, str], AbstractContextManager[tuple[int, Path]]]


@contextmanager
def through_serve(folder: Path, rewrite: str) -> Iterator[tuple[int, Path]]:
    with running_serve(folder, CONFIG, extra=["--set", f"map_remote={rewrite}"]) as serve:
        yield serve.proxy_port, serve.config


@contextmanager
def through_proxy(folder: Path, rewrite: str) -> Iterator[tuple[int, Path]]:
    config = folder / "agent-mesh.yaml"
    config.write_text(CONFIG.format(state=folder / "state", agent_token=AGENT_TOKEN))
    with running_proxy(config, "--set", f"map_remote={rewrite}") as proxy:
        yield proxy.port, config


def traced(config: Path, count: int) -> list[dict[str, Any]]:
    """The trace records once `count` are written (the writer batches), oldest first."""
    stop = threading.Event()
    records: list[dict[str, Any]] = []
    for _ in range(int(WAIT_SECONDS / 0.1)):
        out = run([AGENT_MESH, "traces", "query", "--config", config, "--json", "--limit", "0"]).stdout
        records = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(records) >= count:
            break
        stop.wait(0.1)
    return sorted(records, key=lambda r: r.get("seq", 0))


@pytest.mark.parametrize("surface", [through_serve, through_proxy], ids=["serve", "proxy"])
def test_a_rewritten_request_is_judged_by_the_url_the_agent_asked_for(surface: Surface, tmp_path: Path) -> None:
    with upstream() as local, surface(tmp_path, f"|{PUBLIC}|{local}") as (port, config):
        proxy = f"http://claude:{AGENT_TOKEN}@127.0.0.1:{port}"
        with httpx.Client(proxy=proxy, timeout=30, trust_env=False) as client:
            read = client.get(f"{PUBLIC}/v1/items?page=2")
            delete = client.delete(f"{PUBLIC}/v1/items/7")
        records = traced(config, 2)
    assert read.status_code == 200, read.text
    assert read.json() == {"ok": True, "path": "/v1/items?page=2"}  # sent where map_remote says
    assert delete.status_code == 403
    assert delete.json()["rule"] == "claude/no-deletes"
    seen = [(r["server"], r["tool"], r["verdict"], r["rule"]) for r in records]
    assert seen == [
        ("api", "api.GET /v1/items", "allow", "claude/reads"),
        ("api", "api.DELETE /v1/items/7", "deny", "claude/no-deletes"),
    ]
