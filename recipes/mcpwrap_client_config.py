"""Wrap a client config: `mcpwrap install` puts every stdio server of an MCP client under the mesh.

A Claude Desktop / Claude Code / Cursor style `mcpServers` file is rewritten (backup kept), the wrapped
entry is launched exactly as the client would launch it and governs a call, then `--undo` puts the file
back. Offline, self-checking:

    .venv/bin/python recipes/mcpwrap_client_config.py
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

HERE = Path(__file__).resolve().parent
CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: cursor
    agent: cursor
    rules:
      - {{tools: ["notes.read_*"], action: allow}}
      - {{tools: ["notes.*"], action: deny, reason: read-only agent}}
"""


def mcpwrap(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mcpwrap", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


async def use(entry: dict[str, Any]) -> tuple[bool, bool]:
    """Launch a server entry as an MCP client does; (read passed, write refused)."""
    async with Client(StdioServerParameters(command=entry["command"], args=entry["args"])) as client:
        read = await client.call_tool("read_note", {"name": "todo"})
        write = await client.call_tool("write_note", {"name": "todo", "text": "sell milk"})
    return not read.is_error, write.is_error


def main() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        mesh = Path(tmp) / "agent-mesh.yaml"
        mesh.write_text(CONFIG.format(state=Path(tmp) / "state"))
        client_config = Path(tmp) / "mcp.json"
        original = {"mcpServers": {"notes": {"command": sys.executable, "args": [str(HERE / "notes_server.py")]}}}
        client_config.write_text(json.dumps(original, indent=2))

        print(mcpwrap("install", "--client-config", str(client_config), "--agent", "cursor", "--config", str(mesh)))
        entry = json.loads(client_config.read_text())["mcpServers"]["notes"]
        print(f"notes now runs: {entry['command']} {' '.join(entry['args'])}")
        read_ok, write_refused = asyncio.run(use(entry))
        print(f"read passed: {read_ok}; write refused: {write_refused}")
        if not (read_ok and write_refused):
            problems.append("the wrapped entry did not govern the calls")

        print(mcpwrap("install", "--client-config", str(client_config), "--undo"))
        if json.loads(client_config.read_text()) != original:
            problems.append("--undo did not restore the original entry")
        if not client_config.with_name("mcp.json.agent-mesh.bak").exists():
            problems.append("no backup was kept")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
