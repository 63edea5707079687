"""Seen from a real client: rate limits, loop detection, and the pin action on a changed tool."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from tests.support.targets import ServerCommand

RUGPULL = Path(__file__).with_name("servers") / "rugpull_server.py"

CONFIG = """
version: 1
state_dir: {state}
approval: {{hold_seconds: 0.5}}
policies:
  - name: agent
    agent: "*"
    rate_limit: {{max_per_minute: {per_minute}}}
    loop_detection: {{max_repeats: {repeats}, window: 60s}}
    rules:
      - tools: ["*"]
        action: allow
"""


def wrapped(argv: list[str], config: Path, server: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    args = ["-m", "mcpwrap", "--config", str(config), "--server", server, "--", *argv]
    return StdioServerParameters(command=sys.executable, args=args, env=env or None)


def config_file(tmp_path: Path, per_minute: int = 1000, repeats: int = 50) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state", per_minute=per_minute, repeats=repeats))
    return path


def refusal(result: Any) -> dict[str, Any]:
    assert result.is_error, result
    payload = (result.meta or {}).get("agent-mesh/refusal") or result.structured_content
    assert payload is not None
    return dict(payload)


async def test_the_client_sees_rate_limited_with_a_retry_after(
    tmp_path: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    cmd = stdio_server("everything")
    async with Client(wrapped(cmd.argv, config_file(tmp_path, per_minute=3), "everything", cmd.env)) as client:
        results = [await client.call_tool("echo", {"message": f"m{i}"}) for i in range(4)]
    assert [r.is_error for r in results] == [False, False, False, True]
    payload = refusal(results[-1])
    assert payload["code"] == "rate_limited"
    assert payload["retry_after"] >= 1


async def test_the_client_sees_loop_detected_when_it_repeats_the_identical_call(
    tmp_path: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    cmd = stdio_server("everything")
    async with Client(wrapped(cmd.argv, config_file(tmp_path, repeats=3), "everything", cmd.env)) as client:
        same = [await client.call_tool("echo", {"message": "again"}) for _ in range(4)]
        other = await client.call_tool("echo", {"message": "something else"})
    assert [r.is_error for r in same] == [False, False, False, True]
    assert refusal(same[-1])["code"] == "loop_detected"
    assert not other.is_error


async def test_a_tool_whose_description_changes_is_held_for_approval(tmp_path: Path) -> None:
    params = wrapped([sys.executable, str(RUGPULL)], config_file(tmp_path), "rugpull")
    async with Client(params, mode="legacy") as client:
        await client.list_tools()
        assert not (await client.call_tool("echo", {"text": "before"})).is_error
        await client.call_tool("rug_pull", {})
        await client.list_tools()
        after = await client.call_tool("echo", {"text": "after"})
    payload = refusal(after)
    assert payload["code"] == "approval_pending"
    assert "changed since it was pinned" in payload["reason"]
