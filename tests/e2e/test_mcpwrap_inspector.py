"""The MCP Inspector CLI through mcpwrap to the real filesystem server, approvals from another process."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.targets import Targets

RUN_SECONDS = 60.0
APPEAR_SECONDS = 30.0
MESH = str(Path(sys.executable).with_name("agent-mesh"))
MCPWRAP = str(Path(sys.executable).with_name("mcpwrap"))

CONFIG = """
version: 1
state_dir: {state}
approval: {{hold_seconds: 30}}
policies:
  - name: inspector
    agent: inspector
    rules:
      - tools: ["filesystem.move_file"]
        action: deny
        reason: moving files is not allowed
      - tools: ["filesystem.write_file"]
        action: human_approval
      - tools: ["filesystem.read_*", "filesystem.list_*"]
        action: allow
"""


class Setup:
    def __init__(self, targets: Targets, tmp_path: Path) -> None:
        self.root = tmp_path / "fs"
        self.root.mkdir()
        self.config = tmp_path / "agent-mesh.yaml"
        self.config.write_text(CONFIG.format(state=tmp_path / "state"))
        self.inspector = str(targets.npm_bin("mcp-inspector"))
        self.server = [str(targets.node20), str(targets.npm_bin("mcp-server-filesystem")), str(self.root)]
        self.node = str(targets.node20)

    async def inspect(self, method: str, tool: str | None = None, **args: str) -> dict[str, Any]:
        """One Inspector CLI run. Its parsers split at `--` twice, so mcpwrap's own flags go after both."""
        argv = [self.node, self.inspector, "--cli", "--method", method]
        if tool is not None:
            argv += ["--tool-name", tool]
        argv.append(MCPWRAP)
        if args:
            argv += ["--tool-arg", *(f"{k}={v}" for k, v in args.items())]
        argv += ["--", "--", "--config", str(self.config), "--agent", "inspector", "--server", "filesystem", "--"]
        proc = await asyncio.create_subprocess_exec(*argv, *self.server, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_SECONDS)
        assert proc.returncode == 0, out
        return dict(json.loads(out))

    async def mesh(self, *args: str) -> Any:
        proc = await asyncio.create_subprocess_exec(
            MESH, *args, "--config", str(self.config), "--json", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_SECONDS)
        assert proc.returncode == 0, out
        return json.loads(out)

    async def pending_approval(self, not_in: set[str] = frozenset()) -> str:  # type: ignore[assignment]
        deadline = time.monotonic() + APPEAR_SECONDS
        while time.monotonic() < deadline:
            ids = [a["id"] for a in await self.mesh("approvals", "list") if a["id"] not in not_in]
            if ids:
                return str(ids[0])
            await asyncio.sleep(0.2)
        raise TimeoutError("no approval appeared")


@pytest.fixture
def setup(targets: Targets, tmp_path: Path) -> Setup:
    return Setup(targets, tmp_path)


async def test_tools_list_omits_the_denied_tools(setup: Setup) -> None:
    names = [t["name"] for t in (await setup.inspect("tools/list"))["tools"]]
    assert "move_file" not in names
    assert {"write_file", "read_text_file"} <= set(names)


async def test_a_held_write_completes_once_approved_from_another_process_and_a_second_one_asks_again(
    setup: Setup,
) -> None:
    target = setup.root / "note.txt"
    first = asyncio.ensure_future(setup.inspect("tools/call", "write_file", path=str(target), content="hello"))
    approval = await setup.pending_approval()
    assert not first.done()
    await setup.mesh("approvals", "approve", approval, "--reason", "fine")
    result = await first
    assert not result.get("isError"), result
    assert target.read_text() == "hello"

    second = asyncio.ensure_future(setup.inspect("tools/call", "write_file", path=str(target), content="hello"))
    again = await setup.pending_approval(not_in={approval})
    await setup.mesh("approvals", "deny", again, "--reason", "once is enough")
    refused = await second
    assert refused["isError"] is True
    # write_file declares an outputSchema, so the payload travels in _meta (clients validate structuredContent).
    assert "structuredContent" not in refused
    assert refused["_meta"]["agent-mesh/refusal"]["code"] == "denied"
    assert "once is enough" in refused["content"][0]["text"]


async def test_move_is_denied_and_a_read_is_allowed(setup: Setup) -> None:
    (setup.root / "a.txt").write_text("content of a")
    moved = await setup.inspect(
        "tools/call", "move_file", source=str(setup.root / "a.txt"), destination=str(setup.root / "b.txt")
    )
    assert moved["isError"] is True
    assert moved["_meta"]["agent-mesh/refusal"]["reason"] == "moving files is not allowed"
    assert (setup.root / "a.txt").exists()
    read = await setup.inspect("tools/call", "read_text_file", path=str(setup.root / "a.txt"))
    assert not read.get("isError"), read
    assert "content of a" in read["content"][0]["text"]
