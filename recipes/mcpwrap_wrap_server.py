"""Wrap a stdio MCP server: every tools/call the client makes is judged before the server sees it.

The Python SDK client launches `mcpwrap --agent claude --server notes -- python notes_server.py`, exactly
as Claude Code or Cursor would from their config. Reads pass, deletes are refused with a readable reason,
the deleted tool is not even listed, and the trace holds both calls. Offline, self-checking:

    .venv/bin/python recipes/mcpwrap_wrap_server.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextContent

HERE = Path(__file__).resolve().parent
CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: claude
    agent: claude
    rules:
      - {{tools: ["notes.delete_*"], action: deny, reason: notes are kept forever}}
      - {{tools: ["notes.*"], action: allow}}
"""


def text(result: CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


async def session(config: Path) -> list[str]:
    """Talk to the wrapped server like an agent; return the problems found."""
    argv = ["-m", "mcpwrap", "--config", str(config), "--agent", "claude", "--server", "notes", "--"]
    params = StdioServerParameters(command=sys.executable, args=[*argv, sys.executable, str(HERE / "notes_server.py")])
    problems: list[str] = []
    async with Client(params) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        read = await client.call_tool("read_note", {"name": "todo"})
        delete = await client.call_tool("delete_note", {"name": "todo"})
    print(f"tools listed: {names}")
    print(f"read_note   -> {text(read)}")
    print(f"delete_note -> {text(delete)}")
    if "delete_note" in names:
        problems.append("the denied tool was listed")
    if read.is_error or "buy milk" not in text(read):
        problems.append("the read did not pass")
    if not delete.is_error or "notes are kept forever" not in text(delete):
        problems.append("the delete was not refused with its reason")
    return problems


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state"))
        problems = asyncio.run(session(config))
        records = [json.loads(line) for line in (Path(tmp) / "state" / "traces.jsonl").read_text().splitlines()]
    calls = [(r["tool"], r["verdict"]) for r in records if r.get("kind") != "event"]
    print(f"trace: {calls}")
    if calls != [("notes.read_note", "allow"), ("notes.delete_note", "deny")]:
        problems.append(f"unexpected trace {calls}")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
