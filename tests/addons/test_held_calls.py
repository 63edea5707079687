"""Held calls wait on a notification from one waiter thread, not a poll of SQLite on the event loop: a batch of
hundreds of held calls leaves the proxy serving other agents, and a decision by another process wakes its call."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mitmproxy.test import taddons

from addons.governance import Governance
from policy import Gate, LoadedConfig, Operator, load_config
from policy.store.base import ApprovalState
from policy.store.sqlite import SqliteStore
from policy.trace import MemoryTraceSink
from tests.addons.harness import Harness, ListingServer, make_flow, rpc, wait_until

HELD = 1000
CONFIG = f"""
version: 1
state_dir: state
agents:
  claude: {{token: s3cret}}
  bot: {{token: other}}
servers:
  notes: {{mcp_url: "http://127.0.0.1:9000/mcp"}}
proxy: {{max_batch: {HELD}}}
approval: {{hold_seconds: 30, max_pending_per_agent: {HELD}}}
policies:
  - name: all
    agent: "*"
    rules:
      - {{name: ask, tools: ["notes.write*"], action: human_approval}}
      - {{name: reads, tools: ["*"], when: {{http.method: {{in: [GET]}}}}, action: allow}}
"""


@contextmanager
def on_sqlite(tmp_path: Path) -> Iterator[tuple[Harness, Path]]:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    sink = MemoryTraceSink()
    stores: list[SqliteStore] = []

    def factory(loaded: LoadedConfig) -> Gate:
        stores.append(SqliteStore(loaded.config.state_dir))
        return Gate.open(loaded, store=stores[-1], sink=sink)

    addon = Governance(factory, fetch_tools=ListingServer())
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mesh_config=str(path))
        yield Harness(addon, tctx, sink, stores[0]), path  # type: ignore[arg-type]


async def test_a_batch_of_held_calls_does_not_stop_the_proxy_for_other_agents(tmp_path: Path) -> None:
    with on_sqlite(tmp_path) as (h, path):
        batch = [rpc("tools/call", {"name": "write_note", "arguments": {"n": i}}, i) for i in range(HELD)]
        held = make_flow("POST", "http://127.0.0.1:9000/mcp", batch)
        holding = asyncio.create_task(h.addon.request(held))
        judge = h.addon.judge
        assert judge is not None
        await wait_until(lambda: len(judge.held) == HELD, seconds=60)
        # Another agent is served while all of them wait.
        other = make_flow("GET", "http://127.0.0.1:9000/mcp", agent="bot")
        async with asyncio.timeout(10):
            await h.addon.request(other)
        assert other.response is None
        assert not holding.done()
        # A human decides each of them from another process's store: the waiter thread wakes them all.
        loaded = load_config(str(path))
        human = Operator(loaded.config, SqliteStore(loaded.config.state_dir))
        pending = human.store.list_approvals(ApprovalState.PENDING, time.time(), limit=HELD + 1)
        assert len(pending) == HELD
        for approval in pending:
            if approval.arguments["n"] == 0:
                human.approve(approval.id, by="human:test")
            else:
                human.deny(approval.id, by="human:test", reason="no")
        async with asyncio.timeout(30):
            await holding
        assert held.request.content is not None
        forwarded = json.loads(held.request.content)
        assert [m.get("method") for m in forwarded].count("tools/call") == 1
        human.store.close()
        await h.addon.done()
