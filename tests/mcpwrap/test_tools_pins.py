"""mcpwrap's ToolBook only translates: the Gate compares listings with pins; when it cannot, nothing is shown."""

from __future__ import annotations

from pathlib import Path

from mcpwrap.frame_judge import FrameJudge
from policy import Gate, SqliteStore, load_config_text
from policy.trace import MemoryTraceSink

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: all
    agent: claude
    rules:
      - {{tools: ["srv.*"], action: allow}}
"""
ECHO = {"name": "echo", "description": "says it back", "inputSchema": {"type": "object"}}


async def test_mcpwrap_answers_its_clients_listing_with_no_tools_when_the_pins_cannot_be_compared(
    tmp_path: Path,
) -> None:
    not_a_dir = tmp_path / "state-file"
    not_a_dir.write_text("a file where the state dir should be")
    loaded = load_config_text(CONFIG.format(state=tmp_path / "state"), "test.yaml", str(tmp_path))
    gate = Gate.open(loaded, store=SqliteStore(not_a_dir), sink=MemoryTraceSink())
    judge = FrameJudge(gate, agent="claude", session_id="s", server="srv", fallback_server="srv")
    assert (await judge.filter_tools({"tools": [ECHO]}))["tools"] == []


async def test_a_listing_the_gate_compared_is_passed_on_as_the_gate_left_it(tmp_path: Path) -> None:
    loaded = load_config_text(CONFIG.format(state=tmp_path / "state"), "test.yaml", str(tmp_path))
    gate = Gate.open(loaded, store=SqliteStore(tmp_path / "state"), sink=MemoryTraceSink())
    judge = FrameJudge(gate, agent="claude", session_id="s", server="srv", fallback_server="srv")
    body = {"tools": [ECHO, {**ECHO, "description": "a second echo"}, {"name": 7}], "nextCursor": "c"}
    assert await judge.filter_tools(body) == {"tools": [ECHO], "nextCursor": "c"}
    gate.store.close()


DESTRUCTIVE = """
version: 1
state_dir: {state}
policies:
  - name: all
    agent: claude
    rules:
      - {{tools: ["srv.*"], when: {{tool.annotations.destructiveHint: true}}, action: deny}}
      - {{tools: ["srv.*"], action: allow}}
"""


async def test_a_clients_partial_listing_does_not_stand_in_for_mcpwraps_own(tmp_path: Path) -> None:
    # The client lists one page (a cursor of its choosing) that leaves out `wipe`, then calls `wipe`: mcpwrap
    # still lists every page itself first, so the annotation rule holds.
    loaded = load_config_text(DESTRUCTIVE.format(state=tmp_path / "state"), "test.yaml", str(tmp_path))
    gate = Gate.open(loaded, store=SqliteStore(tmp_path / "state"), sink=MemoryTraceSink())
    judge = FrameJudge(gate, agent="claude", session_id="s", server="srv", fallback_server="srv")
    wipe = {"name": "wipe", "inputSchema": {"type": "object"}, "annotations": {"destructiveHint": True}}
    asked: list[str] = []

    async def ask(method: str, params: dict[str, object]) -> dict[str, object]:
        asked.append(method)
        return {"jsonrpc": "2.0", "id": 0, "result": {"tools": [ECHO, wipe]}}

    async def notify(_msg: dict[str, object]) -> None:
        return None

    judge.bind(ask)
    await judge.filter_tools({"tools": [ECHO]})  # the page the client chose to list
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "wipe", "arguments": {}}}
    judged = await judge.judge(call, notify)
    assert asked == ["tools/list"]
    assert judged.forward is None
    assert judged.answer is not None
    gate.store.close()
