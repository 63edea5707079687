"""The in-memory harness: client pipes <-> Relay (real FrameJudge, real Gate on a MemoryStore) <-> FakeServer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mcpwrap.frame_judge import FrameJudge
from mcpwrap.framing import MemoryPipe, read_frames
from mcpwrap.relay import Relay
from policy import Gate, MemoryStore, load_config_text
from policy.trace import MemoryTraceSink
from tests.mcpwrap.fake_server import FakeServer, tool

WAIT = 5.0  # bounded wait for any single frame in these tests

POLICY = """
version: 1
state_dir: {state}
approval: {{hold_seconds: {hold}}}
mcp: {{refuse_as: {refuse_as}, pin_changed: {pin_changed}, pin_new: warn}}
policies:
  - name: test
    agent: "*"
    rate_limit: {{max_per_minute: 1000}}
    loop_detection: {{max_repeats: 50}}
    rules:
      - tools: ["*.forbidden", "*.move_file", "*.mystery/method"]
        action: deny
      - tools: ["*.resources/read", "*.resources/subscribe"]
        when: {{args.uri: {{glob: "file:///etc/**"}}}}
        action: deny
      - tools: ["*.resources/read"]
        when: {{args.uri: {{glob: "demo://private/**"}}}}
        action: deny
      - tools: ["*.prompts/get"]
        when: {{args.name: {{eq: "secret_prompt"}}}}
        action: deny
      - tools: ["*.sampling/createMessage"]
        when: {{args.systemPrompt: {{eq: "exfiltrate"}}}}
        action: deny
      - tools: ["*.elicitation/create"]
        when: {{args.message: {{eq: "give me your password"}}}}
        action: deny
      - tools: ["*.sampling/createMessage"]
        when: {{args.systemPrompt: {{eq: "ask a human"}}}}
        action: human_approval
      - tools: ["*.echo"]
        when: {{args.text: {{eq: "bad"}}}}
        action: deny
      - tools: ["*"]
        when: {{tool.annotations.destructiveHint: {{eq: true}}}}
        action: human_approval
      - tools: ["*.write_file"]
        action: human_approval
      - tools: ["*"]
        action: allow
"""


class Harness:
    """One relay session in memory; `send` as the client, `recv` what the client gets."""

    def __init__(self, gate: Gate, server: FakeServer, *, name: str | None) -> None:
        self.gate = gate
        self.server = server
        self.store = gate.store
        self.sink = gate.sink
        self.client_in = MemoryPipe()
        self.client_out = MemoryPipe()
        self.frame_judge = FrameJudge(
            gate, agent="claude", session_id="s1", server=name, fallback_server="fallback", keepalive_seconds=0.05
        )
        self.relay = Relay(self.client_in.reader, self.client_out, server.inbox, server.outbox.reader, self.frame_judge)
        self._frames = read_frames(self.client_out.reader)
        self.raw: list[bytes] = []
        self.server_task: asyncio.Task[None] | None = None

    def send(self, msg: Any) -> None:
        self.client_in.write((msg if isinstance(msg, bytes) else json.dumps(msg).encode()) + b"\n")

    async def recv(self) -> Any:
        frame = await asyncio.wait_for(anext(self._frames), WAIT)
        self.raw.append(frame)
        return json.loads(frame)

    async def call(self, request_id: Any, name: str, arguments: dict[str, Any], **params: Any) -> Any:
        self.send(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments, **params},
            }
        )
        return await self.recv()

    def traces(self) -> list[dict[str, Any]]:
        assert isinstance(self.sink, MemoryTraceSink)
        return self.sink.records

    def approve(self, approval_id: str) -> None:
        self.store.resolve_approval(approval_id, True, "alice", "looks fine", time.time(), 3600.0)

    def deny(self, approval_id: str) -> None:
        self.store.resolve_approval(approval_id, False, "alice", "no", time.time(), 3600.0)


async def until(condition: Callable[[], bool], what: str = "condition") -> None:
    """Wait (bounded by WAIT) until `condition()` holds, yielding to the event loop in between."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {WAIT} s")
        await asyncio.sleep(0.005)


type MakeHarness = Callable[..., Harness]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[MakeHarness]:
    tasks: list[asyncio.Task[Any]] = []
    made: list[Harness] = []

    def make(
        tools: list[dict[str, Any]] | None = None,
        *,
        name: str | None = None,
        server_name: str = "fake",
        hold: float = 5.0,
        refuse_as: str = "result",
        pin_changed: str = "human_approval",
    ) -> Harness:
        text = POLICY.format(state=tmp_path / "state", hold=hold, refuse_as=refuse_as, pin_changed=pin_changed)
        gate = Gate.open(
            load_config_text(text, "test.yaml", str(tmp_path)), store=MemoryStore(), sink=MemoryTraceSink()
        )
        server = FakeServer(tools if tools is not None else [tool("echo"), tool("forbidden")], server_name)
        h = Harness(gate, server, name=name)
        h.server_task = asyncio.ensure_future(h.relay.pump_server())
        tasks.extend(
            [asyncio.ensure_future(server.serve()), asyncio.ensure_future(h.relay.pump_client()), h.server_task]
        )
        made.append(h)
        return h

    yield make
    for h in made:
        h.client_in.close()
        h.server.inbox.close()
        h.server.die()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for h in made:
        await h.gate.aclose()
