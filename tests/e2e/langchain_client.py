"""An agent built on langchain-mcp-adapters (MCP SDK 1.x), run by tests/e2e/test_mcpwrap_langchain.py in its
own venv: loads the tools of one stdio server (mcpwrap wrapping it), calls each given tool once, closes the
session, and prints one JSON line: the tools it saw and what each call returned (or raised)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(server: list[str], calls: list[list[Any]]) -> dict[str, Any]:
    params = StdioServerParameters(command=server[0], args=server[1:])
    out: dict[str, Any] = {"calls": []}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in await load_mcp_tools(session)}
        out["tools"] = sorted(tools)
        for name, arguments in calls:
            try:
                result = await tools[name].ainvoke(arguments)
                out["calls"].append({"tool": name, "result": str(result)})
            except Exception as exc:  # a refused call raises ToolException: the agent reads its text
                out["calls"].append({"tool": name, "error": f"{type(exc).__name__}: {exc}"})
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1]), json.loads(sys.argv[2])))), flush=True)
