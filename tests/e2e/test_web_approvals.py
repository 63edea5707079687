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

import httpx
from mcp import Client, StdioServerParameters

from policy.trace.record import is_call
from tests.e2e.browser import Browser, browser
from tests.e2e.serve_support import AGENT_TOKEN, OPERATOR, Serve, running_serve, upstream
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
      - {{name: rest-writes-ask, tools: ["*"], when: {{http.method: {{eq: POST}}}}, action: human_approval,
          reason: a human reads REST writes}}
"""
APPEAR_SECONDS = 1.0
CALL_SECONDS = 20.0
XSS = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>"
# A multi-line argument (a commit message, a file body): the approver reads it as lines, not as "\\n" escapes.
POEM = f"Fix the parser\n\n  - keeps its indentation\n  - {XSS}\nlast line"


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
    calls = [r for r in reversed(records) if is_call(r)]  # tools first seen at tools/list are event records
    decided = [(r["tool"], r["verdict"], r["decided_by"].split(":")[0]) for r in calls]
    assert decided == [
        ("everything.echo", "allow", "human"),
        ("everything.echo", "allow", "human"),
        ("everything.echo", "allow", "grant"),
        ("everything.get-sum", "deny", "human"),
    ]


async def pending_card(s: Serve, b: Browser) -> dict[str, Any]:
    """The one pending approval once its card is on the page."""
    await asyncio.to_thread(b.wait_for, "#inbox .approval", timeout=CALL_SECONDS)
    with s.api() as api:
        [approval] = [a for a in api.get("/api/approvals").json()["approvals"] if a["state"] == "pending"]
    return dict(approval)


async def test_the_page_shows_text_blocks_rest_request_lines_call_details_and_who_decided(
    tmp_path: Path, targets: Targets, chromium: Path, stdio_server: Callable[[str], ServerCommand]
) -> None:
    with upstream() as up, running_serve(tmp_path, CONFIG) as s, browser(targets, chromium) as b:
        await asyncio.to_thread(b.goto, s.login_url)
        await asyncio.to_thread(b.wait_for_text, "#live", "live")
        async with Client(wrapped(stdio_server("everything"), s.config), mode="legacy") as agent:
            # 1. A multi-line argument is a text block of its lines (escaped), inside the JSON of the arguments.
            call, approval = await held_on_page(s, b, lambda: agent.call_tool("echo", {"message": POEM}))
            card = f"#approval-{approval['id']}"
            assert b.text(f"{card} pre.args .text") == POEM
            assert b.eval(f"getComputedStyle(document.querySelector('{card} pre.args .text')).whiteSpace") == "pre-wrap"
            assert b.eval("window.__xss === undefined") is True
            b.screenshot("web-text-block.png")

            # 2. Approved, the card leaves a line saying who approved it.
            b.click(f"{card} button[data-action=approve]")
            assert not (await asyncio.wait_for(call, CALL_SECONDS)).is_error
            decided = f"#decided-{approval['id']}"
            await asyncio.to_thread(b.wait_for_text, decided, f"approved by {OPERATOR}")
            assert b.count(card) == 0
            assert "everything.echo" in b.text(decided)

            # 3. The call's trace row opens its detail: arguments as text, session, outcome, the session's records.
            row = f'#traces tr:has(td.decided-by:text-is("human:{OPERATOR}"))'
            await asyncio.to_thread(b.wait_for, row)
            b.click(f"{row} >> nth=0")
            await asyncio.to_thread(b.wait_for, "#trace-detail .trace-detail")
            detail = b.text("#trace-detail")
            assert "everything.echo" in b.text("#trace-detail h3")
            assert b.text("#trace-detail pre.args .text") == POEM
            assert f"allow by human:{OPERATOR}" in detail
            assert "session" in detail
            assert "outcome" in detail
            assert b.count("#trace-detail .session-records tr[data-seq]") >= 1
            assert b.count("#trace-detail .session-records tr.current") == 1
            assert b.eval("location.hash").startswith("#trace-")
            b.screenshot("web-trace-detail.png")
            # The open detail follows its session: a new call of the same agent process joins its list.
            rows = b.count("#trace-detail .session-records tr[data-seq]")
            assert not (await asyncio.wait_for(agent.call_tool("get-env", {}), CALL_SECONDS)).is_error
            more = f"#trace-detail .session-records tr[data-seq] >> nth={rows}"
            await asyncio.to_thread(b.wait_for, more)
            assert "everything.get-env" in b.text("#trace-detail .session-records tr[data-seq] >> nth=0")
            b.click("#trace-detail button[data-action=close-detail]")
            await asyncio.to_thread(b.wait_for, "#trace-detail", state="hidden")

        # 4. A REST call held at the proxy: its card shows METHOD URL; denied, it leaves a "denied by" line.
        proxy = f"http://claude:{AGENT_TOKEN}@127.0.0.1:{s.proxy_port}"
        post = asyncio.create_task(
            asyncio.to_thread(
                httpx.post, f"{up}/notes/9", json={"text": "a\nb"}, proxy=proxy, trust_env=False, timeout=CALL_SECONDS
            )
        )
        approval = await pending_card(s, b)
        card = f"#approval-{approval['id']}"
        assert b.text(f"{card} .request code") == f"POST {up}/notes/9"
        b.screenshot("web-rest-card.png")
        b.fill(f"{card} input.reason", "no notes today")
        b.click(f"{card} button[data-action=deny]")
        refused = await asyncio.wait_for(post, CALL_SECONDS)
        assert refused.status_code >= 400
        decided = f"#decided-{approval['id']}"
        await asyncio.to_thread(b.wait_for_text, decided, f"denied by {OPERATOR}")
        assert f"POST {up}/notes/9" in b.text(decided)
        assert "no notes today" in b.text(decided)
        b.screenshot("web-decided-lines.png")
        state = b.state()
        assert state["errors"] == []
        assert state["dialogs"] == []
