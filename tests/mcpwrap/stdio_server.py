"""A minimal stdio MCP server on the standard library, for process tests (fast to start).

Tools: `echo` (returns its arguments), `crash` (exits with status args.status mid-call), `die_by_signal`
(kills itself with args.signal), `shout` (writes args.text to stderr). `--pidfile F` records its pid.
"""

from __future__ import annotations

import json
import os
import signal
import sys

TOOLS = [
    {"name": name, "description": f"{name} tool", "inputSchema": {"type": "object"}}
    for name in ("echo", "crash", "die_by_signal", "shout")
]


def answer(msg: dict) -> dict | None:
    if "id" not in msg:
        return None
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        body: dict = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "stdlib"}}
    elif method == "tools/list":
        body = {"tools": TOOLS}
    elif method == "tools/call":
        args = params.get("arguments", {})
        name = params.get("name")
        if name == "crash":
            sys.stdout.flush()
            os._exit(int(args.get("status", 3)))
        if name == "die_by_signal":
            os.kill(os.getpid(), int(args.get("signal", signal.SIGTERM)))
        if name == "shout":
            print(args.get("text", ""), file=sys.stderr, flush=True)
        body = {"content": [{"type": "text", "text": json.dumps(args)}], "isError": False}
    else:
        body = {}
    return {"jsonrpc": "2.0", "id": msg["id"], "result": body}


def main() -> int:
    if "--pidfile" in sys.argv:
        with open(sys.argv[sys.argv.index("--pidfile") + 1], "w") as f:
            f.write(str(os.getpid()))
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    return int(os.environ.get("STDLIB_SERVER_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
