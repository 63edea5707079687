"""A deciding process for the write-ahead tests: judges one allowed call per line of stdin, then waits.

argv: state dir, `finish` (report the outcome after the decision) or `check` (decide only), and `worker`
(trace through a worker process, as the proxy does) or `thread`. For each line (a nonce) it prints the
call's trace id once `check` returned allow (and `finish` ran, if asked), then waits for the next line: the
test SIGKILLs it there.
"""

from __future__ import annotations

import asyncio
import sys

from policy import Gate, Outcome, ToolCall, load_config_text

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: dev
    agent: "*"
    rules:
      - {{name: reads, tools: ["fs.read*"], action: allow}}
"""


async def main(state: str, mode: str, writer: str) -> None:
    gate = Gate.open(load_config_text(CONFIG.format(state=state), "ahead-child.yaml"), trace_process=writer == "worker")
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while nonce := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        call = ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": "/srv/a.txt", "nonce": nonce}, "s1")
        verdict = await gate.check(call)
        if mode == "finish":
            gate.finish(call, verdict, Outcome(True, is_error=False, latency_ms=1.0))
        print(f"{verdict.kind.value} {verdict.trace_id}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
