"""A control plane on a real SQLite state dir in tmp, driven through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from policy import Gate, LoadedConfig, Outcome, ToolCall, Verdict, load_config_text
from policy.control import ControlPlane, OperatorAuth, create_app
from policy.trace import TraceWriter

TOKEN = "operator-token-for-tests-0123456789"
AGENT_TOKEN = "agent-proxy-token-abcdef"
BASE = "http://127.0.0.1:8181"

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
policies:
  - name: dev
    agent: "*"
    rules:
      - {{name: reads, tools: ["fs.read*"], action: allow}}
      - {{name: deletes, tools: ["fs.delete*"], action: deny, reason: deleting is never allowed}}
      - {{name: writes-ask, tools: ["fs.write*", "gh.*"], action: human_approval, reason: writes need a human}}
approval: {{hold_seconds: 1, deny_cooldown: 0}}
memory: {{auto_approve_after: 0}}
traces: {{redact: [authorization, token, password, api_key]}}
"""


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedConfig:
    text = CONFIG.format(state=tmp_path / "state", agent_token=AGENT_TOKEN)
    return load_config_text(text, str(tmp_path / "agent-mesh.yaml"), base_dir=str(tmp_path))


@pytest.fixture
async def gate(loaded: LoadedConfig) -> AsyncIterator[Gate]:
    g = Gate.open(loaded, sink=TraceWriter(loaded.config.state_dir, loaded.config.traces))
    yield g
    await g.aclose()


@pytest.fixture
def plane(loaded: LoadedConfig) -> Iterator[ControlPlane]:
    p = ControlPlane(loaded, OperatorAuth(TOKEN, "alice"), allowed_hosts=frozenset({"127.0.0.1"}))
    yield p
    p.close()


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(plane))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as c:
        yield c


@pytest.fixture
async def anonymous(plane: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(plane))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c


type Call = Callable[..., Any]


@pytest.fixture
def call(gate: Gate) -> Call:
    """Run one call through the gate and record it; returns its verdict."""

    async def run(tool: str, args: dict[str, Any] | None = None, agent: str = "claude") -> Verdict:
        server, _, name = tool.partition(".")
        c = ToolCall(agent, "mcp_stdio", server, name, args or {}, session_id="s1")
        verdict = await gate.check(c)
        gate.finish(c, verdict, Outcome(forwarded=verdict.allowed, latency_ms=3.0))
        gate.sink.flush()
        return verdict

    return run
