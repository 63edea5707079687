"""A human on the web page of `agent-mesh serve` (headless Debian chromium) governs an agent's MCP calls made
through mcpwrap: held calls appear live, a click approves, a 30-minute grant lets the next call through, a
denial's reason reaches the agent. Screenshots land in artifacts/."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from tests.e2e.browser import Browser, browser
from tests.e2e.serve_support import OPERATOR, Serve, running_serve
from tests.support.targets import ServerCommand, Targets

CONFIG = """
version: 1
state_dir: {state}
agents: {{claude: {{token: {agent_token}}}}}
approval: {{hold_seconds: 30, deny_cooldown: 0}}
memory: {{auto_approve_after: 0}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: a-human-looks, tools: ["everything.echo", "everything.get-sum"], action: human_approval,
          reason: a human looks first}}
      - {{name: the-rest, tools: ["everything.*"], action: allow}}
"""
APPEAR_SECONDS = 1.0
CALL_SECONDS = 20.0
XSS = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>"


def wrapped(cmd: ServerCommand, config: Path) -> StdioServerParameters:
    args = ["-m", "mcpwrap", "--config", str(config), "--agent", "claude", "--server", "everything", "--", *cmd.argv]
    return StdioServerParameters(command=sys.executable, args=args, env=cmd.env or None)


async def held_on_page(s: Serve, b: Browser, start: Callable[[], Any]) -> tuple[asyncio.Task[Any], dict[str, Any]]:
    """Start an agent call; wait until its card is on the page; returns (the call, its approval)."""
    before = b.count("#inbox .approval")
    task = asyncio.create_task(start())
    await asyncio.to_thread(b.wait_for, f"#inbox .approval >> nth={before}", timeout=CALL_SECONDS)
    seen = time.time()
    with s.api() as api:
        [approval] = [a for a in api.get("/api/approvals").json()["approvals"] if a["state"] == "pending"]
    assert seen - approval["created_at"] < APPEAR_SECONDS, f"on the page {seen - approval['created_at']:.2f}s later"
    return task, approval


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def test_an_operator_approves_grants_and_denies_an_agents_calls_from_the_page(
    tmp_path: Path, targets: Targets, chromium: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    with running_serve(tmp_path, CONFIG) as s, browser(targets, chromium) as b:
        await asyncio.to_thread(b.goto, s.login_url)
        await asyncio.to_thread(b.wait_for_text, "#live", "live")
        async with Client(wrapped(stdio_server("everything"), s.config), mode="legacy") as agent:
            # 1. A held call appears within a second, arguments escaped; one click lets it complete.
            call, approval = await held_on_page(s, b, lambda: agent.call_tool("echo", {"message": XSS}))
            card = f"#approval-{approval['id']}"
            assert XSS in b.text(f"{card} pre.args")
            assert b.text(f"{card} .rule").startswith("Rule claude/a-human-looks asked: a human looks first")
            assert b.eval("window.__xss === undefined") is True
            b.screenshot("web-inbox-held-call.png")
            b.click(f"{card} button[data-action=approve]")
            result = await asyncio.wait_for(call, CALL_SECONDS)
            assert not result.is_error
            assert XSS in text_of(result)
            await asyncio.to_thread(b.wait_for_text, "#traces td.decided-by", f"human:{OPERATOR}")
            b.screenshot("web-traces-approved.png")

            # 2. Approve for 30 min: the grant shows on the page and the next call passes without asking.
            call, approval = await held_on_page(s, b, lambda: agent.call_tool("echo", {"message": "second"}))
            b.click(f"#approval-{approval['id']} button[data-action=approve-for]")
            assert not (await asyncio.wait_for(call, CALL_SECONDS)).is_error
            await asyncio.to_thread(b.wait_for_text, "#grants td", "everything.echo")
            started = time.monotonic()
            third = await asyncio.wait_for(agent.call_tool("echo", {"message": "third"}), CALL_SECONDS)
            assert not third.is_error
            assert time.monotonic() - started < 5.0
            await asyncio.to_thread(b.wait_for_text, "#traces td.decided-by", "grant:")
            b.screenshot("web-grant.png")
            b.fill("#trace-filter input[name=decided_by]", "grant:")
            await asyncio.to_thread(b.wait_for, "#traces tbody tr >> nth=0")
            await asyncio.to_thread(lambda: b.wait_for("#traces td.decided-by >> text=/^(?!grant:)/", state="detached"))
            assert b.count("#traces tbody tr") == 1
            b.fill("#trace-filter input[name=decided_by]", "")
            b.click("#grants button[data-action=revoke]")
            await asyncio.to_thread(b.wait_for_text, "#grants", "No active grants.")

            # 3. A denial with a reason reaches the agent as its readable result.
            call, approval = await held_on_page(s, b, lambda: agent.call_tool("get-sum", {"a": 1, "b": 2}))
            b.fill(f"#approval-{approval['id']} input.reason", "sums are done by hand on Fridays")
            b.click(f"#approval-{approval['id']} button[data-action=deny]")
            denied = await asyncio.wait_for(call, CALL_SECONDS)
            assert denied.is_error
            assert "sums are done by hand on Fridays" in text_of(denied)
            await asyncio.to_thread(b.wait_for, "#inbox-empty")
        state = b.state()
        assert state["errors"] == []
        assert state["dialogs"] == []
        with s.api() as api:
            records = api.get("/api/traces", params={"agent": "claude", "tool": "everything.*"}).json()["traces"]
    calls = [r for r in reversed(records) if not r["decided_by"].startswith("pin")]  # tools/list pins are traced too
    decided = [(r["tool"], r["verdict"], r["decided_by"].split(":")[0]) for r in calls]
    assert decided == [
        ("everything.echo", "allow", "human"),
        ("everything.echo", "allow", "human"),
        ("everything.echo", "allow", "grant"),
        ("everything.get-sum", "deny", "human"),
    ]
