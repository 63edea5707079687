"""A separate adapter process on a shared state dir: `python -m tests.policy.gate.worker STATE CMD ARGS_JSON`.

It opens a real Gate on STATE/agent-mesh.yaml (SQLite store), prints a ready line, waits for STATE/go, then:
`check` one call; `hold` one call (prints the pending id first, then the held outcome); `burst N` N reads.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from policy import Gate, ToolCall, load_config
from policy.trace import MemoryTraceSink
from tests.policy.store.procs import wait_for_go


def _say(**out: object) -> None:
    print(json.dumps(out), flush=True)


async def run(state: Path, cmd: str, args: dict[str, object]) -> None:
    gate = Gate.open(load_config(str(state / "agent-mesh.yaml")), sink=MemoryTraceSink())
    tool = str(args.pop("tool", "write_file"))
    gate.store.list_grants(now=0.0)  # connect and migrate before the race starts
    _say(ready=True)
    wait_for_go(state)
    if cmd == "burst":
        n = int(str(args.pop("n")))
        kinds = [(await gate.check(ToolCall("claude", "mcp_stdio", "fs", tool, {"i": i}))).code for i in range(n)]
        _say(**{k: kinds.count(k) for k in set(kinds)})
        return
    verdict = await gate.check(ToolCall("claude", "mcp_stdio", "fs", tool, args))
    if cmd == "hold":
        _say(kind=verdict.kind.value, approval_id=verdict.approval_id)
        verdict = await gate.hold(verdict, seconds=60)
    _say(kind=verdict.kind.value, decided_by=verdict.decided_by, approval_id=verdict.approval_id)
    await gate.aclose()


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}))
