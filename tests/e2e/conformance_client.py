"""An MCP client for the conformance suite's client scenarios: `python conformance_client.py URL`.

The Python SDK client (initialize handshake), over Streamable HTTP; it honours HTTP(S)_PROXY, so the same
command runs direct or through `agent-mesh proxy`. Lists the tools and calls each with no arguments.
"""

from __future__ import annotations

import asyncio
import sys

from mcp import Client


async def main(url: str) -> int:
    async with Client(url, mode="legacy") as client:
        for tool in (await client.list_tools()).tools:
            result = await client.call_tool(tool.name, {})
            print(tool.name, "error" if result.is_error else "ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[-1])))
