"""Benchmark the state-dir guard: its cost per call for typical argument shapes, and on the gate's allow path.

Baseline, measured in the same run: the same calls with the guard switched off (a check that returns None).
Run: `.venv/bin/python bench/guard.py [--calls N]`. Target: the gate's allow path p50 stays <= 40 µs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable

from policy import Gate, MemoryStore, Outcome, ToolCall, load_config_text
from policy.core.guard import state_guard
from policy.core.model import Decision
from policy.trace import MemoryTraceSink

CALLS = {
    "mcp read {path}": ToolCall("agent-1", "mcp_stdio", "fs", "read_file", {"path": "/srv/1.txt", "n": 1}),
    "mcp text, no path": ToolCall("a", "mcp_http", "notes", "add", {"title": "hello world", "tags": ["a", "b"]}),
    "cli git status": ToolCall("a", "cli", "git", "status", {"argv": ["git", "status", "--short"], "cwd": "/srv"}),
    "cli grep -r src": ToolCall("a", "cli", "", "grep", {"argv": ["grep", "-rn", "TODO", "src"], "cwd": "/srv"}),
    "write 1 KB content": ToolCall(
        "a", "mcp_stdio", "fs", "write_file", {"path": "/tmp/x/y.txt", "content": "see a/b and c.d\n" * 64}
    ),
}
CONFIG = "version: 1\nstate_dir: {state}\npolicies:\n  - {{name: all, rules: [{{tools: ['*'], action: allow}}]}}\n"


def per_call_us(check: Callable[[ToolCall], Decision | None], call: ToolCall, number: int) -> float:
    return min(timeit.repeat(lambda: check(call), number=number, repeat=5)) / number * 1e6


async def allow_path_p50(gate: Gate, call: ToolCall, calls: int) -> float:
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        verdict = await gate.check(call)
        gate.finish(call, verdict, Outcome(forwarded=True, status=200))
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


async def gate_figures(state: str, calls: int) -> dict[str, tuple[float, float]]:
    loaded = load_config_text(CONFIG.format(state=state), "<bench>")
    figures = {}
    for name, call in CALLS.items():
        gate = Gate.open(loaded, store=MemoryStore(), sink=MemoryTraceSink())
        guarded = await allow_path_p50(gate, call, calls)
        gate._guard = lambda _call: None  # the baseline: the same gate with the guard switched off
        bare = await allow_path_p50(gate, call, calls)
        await gate.aclose()
        figures[name] = (bare, guarded)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = f"{tmp}/.agent-mesh"
        guard = state_guard(state)
        print(f"{'call':<20} {'guard µs':>9}   {'allow p50 no guard':>18} {'with guard':>10} {'added':>7}")
        figures = asyncio.run(gate_figures(state, args.calls))
        for name, call in CALLS.items():
            cost = per_call_us(guard, call, 5_000)
            bare, guarded = figures[name]
            print(f"{name:<20} {cost:>9.1f}   {bare:>18.1f} {guarded:>10.1f} {guarded - bare:>+7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
