"""A separate OS process acting on a shared state dir: `python -m tests.policy.store.worker STATE CMD ARG...`.

It waits for the file STATE/go (so racing workers start together), then prints one JSON line. Commands:
`resolve ID WHO`, `consume HASH WHO`, `admit PER_MINUTE AGENT N` (N distinct calls), `repeat N AGENT HASH` (the
identical call N times, under loop detection).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from policy.store import Limits, SqliteStore, StoreConflict
from tests.policy.store.procs import wait_for_go


def main(argv: list[str]) -> int:
    state, cmd, *args = argv
    store = SqliteStore(state)
    store.list_grants(now=0.0)  # connect and migrate before the race starts
    print(json.dumps({"ready": True}), flush=True)
    wait_for_go(Path(state))
    out: dict[str, object]
    if cmd == "resolve":
        try:
            a = store.resolve_approval(args[0], True, args[1], "race", now=time.time(), usable_for=600)
            out = {"ok": True, "state": a.state.value}
        except StoreConflict as exc:
            out = {"ok": False, "error": str(exc)}
    elif cmd == "consume":
        used = store.consume_approval(args[0], args[1], now=time.time())
        out = {"ok": used is not None}
    elif cmd == "admit":
        limits = Limits("p", per_minute=int(args[0]))
        results = [store.admit(args[1], f"h{i}", limits, now=time.time()).admitted for i in range(int(args[2]))]
        out = {"admitted": sum(results)}
    elif cmd == "repeat":
        limits = Limits("p", loop_max=3, loop_window=600.0)
        results = [store.admit(args[1], args[2], limits, now=time.time()).admitted for _ in range(int(args[0]))]
        out = {"admitted": sum(results)}
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out), flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
