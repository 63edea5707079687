#!/usr/bin/env python3
"""The fault-injection soak, for manual runs: .venv/bin/python scripts/soak.py [--kills 3000] [--seed N].

Governed traffic through `agent-mesh proxy`, `agent-mesh serve` and several mcpwrap processes while one of
them (or a proxy's trace worker) is SIGKILLed at random moments and restarted; then every call an upstream
executed must have exactly one decision record and `agent-mesh traces verify` must pass (tests/soak/harness.py).
The suite runs a short setting (tests/soak/test_soak.py); this one runs as long as you like. Exit 0 when all
held, 1 otherwise; the state dir is kept (and printed) for a look.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.soak.harness import run_soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3000, help="stop after this many SIGKILLs (default 3000)")
    parser.add_argument("--seed", type=int, default=None, help="the random seed (default: a fresh one, printed)")
    parser.add_argument("--mcpwraps", type=int, default=5, help="mcpwrap processes (default 5)")
    parser.add_argument("--every", type=int, default=50, help="traces.checkpoint_every (default 50)")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop killing after this long")
    args = parser.parse_args()
    # SIGTERM (a `timeout`, a CI runner) must still stop every process the soak started: raise, so its
    # `finally` runs, as it does on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    seed = args.seed if args.seed is not None else int.from_bytes(__import__("os").urandom(4), "big")
    folder = Path(tempfile.mkdtemp(prefix="agent-mesh-soak-"))
    print(f"soak: seed {seed}, {args.kills} kills, in {folder}", flush=True)
    result = run_soak(
        folder, kills=args.kills, seed=seed, wrapped=args.mcpwraps, every=args.every, max_seconds=args.max_seconds
    )
    print(result.summary())
    print("PASS" if result.ok else "FAIL")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
