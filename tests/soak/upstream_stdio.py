"""The soak's stdio MCP server: the ground truth of what ran. Every `tools/call` it executes appends its
`nonce` argument to `--log FILE` (one O_APPEND write, before it answers), so a call counts as executed the
moment it took effect here, whatever happens to mcpwrap afterwards. Standard library only: fast to start.
"""

from __future__ import annotations

import json
import os
import sys

TOOLS = [{"name": n, "description": f"{n} tool", "inputSchema": {"type": "object"}} for n in ("echo", "forbidden")]


def main() -> int:
    log = os.open(sys.argv[sys.argv.index("--log") + 1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if "id" not in msg:
            continue
        method, params = msg.get("method"), msg.get("params") or {}
        if method == "initialize":
            body: dict[str, object] = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "soak"},
            }
        elif method == "tools/list":
            body = {"tools": TOOLS}
        elif method == "tools/call":
            nonce = str((params.get("arguments") or {}).get("nonce", ""))
            os.write(log, f"{nonce}\n".encode())
            body = {"content": [{"type": "text", "text": nonce}], "isError": False}
        else:
            body = {}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": body}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
