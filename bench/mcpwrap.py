"""Benchmark mcpwrap: latency added per tools/call, and start-up overhead, against server-everything `echo`.

Baseline, measured in the same run: the same client talking to `mcp-server-everything stdio` directly.
Wrapped: `mcpwrap -- mcp-server-everything stdio` with the default SQLite store and tracing on (JSONL and
the traces table). Run: `make bench` or `.venv/bin/python bench/mcpwrap.py [--calls N]` (needs
`make targets`). Targets: <= 0.5 ms added at p50, <= 2 ms at p99; start-up overhead <= 100 ms, also on a
config mcpwrap has never checked (it starts the server first and checks the config while it boots). The
start-up figures are wall times: the load average printed with them says how busy the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVERYTHING = ROOT / ".targets" / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: bench
    agent: "*"
    rate_limit: {{max_per_minute: 10000000}}
    loop_detection: {{enabled: false}}
    rules:
      - {{tools: ["everything.echo"], action: allow}}
"""
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
ANSWER_SECONDS = 60.0


class Session:
    """A minimal stdio JSON-RPC client: one request at a time, so each round trip is measured alone."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    @classmethod
    async def start(cls, argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[Session, float]:
        """Spawn and initialize; returns the session and the seconds from spawn to the initialize answer."""
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=16 * 1024 * 1024, env=env,
        )  # fmt: skip
        session = cls(proc)
        await session.request("initialize", INIT)
        started = time.perf_counter() - t0
        session.notify("notifications/initialized")
        return session, started

    def notify(self, method: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        async with asyncio.timeout(ANSWER_SECONDS):
            while True:
                reply = json.loads(await self.proc.stdout.readline())
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return dict(reply["result"])

    async def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.stdout.read(), 10)  # to EOF, so the pipe transport closes
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def call_latencies(argv: Sequence[str], calls: int, warmup: int) -> list[float]:
    session, _ = await Session.start(argv)
    try:
        out = []
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            result = await session.request("tools/call", {"name": "echo", "arguments": {"message": f"m{i}"}})
            if i >= warmup:
                out.append(time.perf_counter() - t0)
            if result.get("isError"):
                raise RuntimeError(f"echo failed: {result}")
        return out
    finally:
        await session.close()


async def startup(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    session, started = await Session.start(argv, env)
    await session.close()
    return started


async def startups(direct: Sequence[str], wrapped: Sequence[str], runs: int, tmp: Path) -> tuple[float, float, float]:
    """Median seconds to the initialize answer: direct; mcpwrap on a config it has not checked before; mcpwrap
    on a config it checked before (either way it starts the server first, then checks: mcpwrap.launch)."""
    times: tuple[list[float], list[float], list[float]] = ([], [], [])
    for i in range(runs):
        times[0].append(await startup(direct))
        fresh = dict(os.environ, XDG_CACHE_HOME=str(tmp / f"cache-{i}"))  # no record of the config yet
        times[1].append(await startup(wrapped, fresh))
        times[2].append(await startup(wrapped))
    d, first, known = (statistics.median(t) for t in times)
    return d, first, known


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(calls: int, warmup: int, runs: int) -> int:
    node = shutil.which("node")
    if node is None or not EVERYTHING.exists():
        print("bench/mcpwrap.py needs node and the npm targets: run `make targets`", file=sys.stderr)
        return 2
    direct = [node, str(EVERYTHING), "stdio"]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state"))
        wrapped = [sys.executable, "-m", "mcpwrap", "--config", str(config), "--server", "everything", "--", *direct]
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # mcpwrap's checked-config records
        base = await call_latencies(direct, calls, warmup)
        gov = await call_latencies(wrapped, calls, warmup)
        start_direct, start_first, start_known = await startups(direct, wrapped, runs, Path(tmp))
        traced = len((Path(tmp) / "state" / "traces.jsonl").read_text().splitlines())
    ms = 1000.0
    print(f"tools/call echo, {calls} sequential calls after {warmup} warm-up ({traced} trace records written)")
    if traced < calls + warmup:
        print("error: mcpwrap did not trace every call, so these figures do not count", file=sys.stderr)
        return 1
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'direct':10} {pct(base, 0.5) * ms:8.3f} {pct(base, 0.99) * ms:8.3f}")
    print(f"{'mcpwrap':10} {pct(gov, 0.5) * ms:8.3f} {pct(gov, 0.99) * ms:8.3f}")
    added50 = (pct(gov, 0.5) - pct(base, 0.5)) * ms
    added99 = (pct(gov, 0.99) - pct(base, 0.99)) * ms
    print(f"added: p50 {added50:.3f} ms (target <= 0.5), p99 {added99:.3f} ms (target <= 2)")
    ratio50, ratio99 = pct(gov, 0.5) / pct(base, 0.5), pct(gov, 0.99) / pct(base, 0.99)
    print(f"ratio wrapped/direct: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x")
    load = os.getloadavg()[0]
    print(f"start-up to the initialize answer, median of {runs}: direct {start_direct * ms:.0f} ms (load {load:.1f})")
    for label, took in (("config checked before", start_known), ("config never checked", start_first)):
        print(f"  mcpwrap, {label + ':':22} {took * ms:4.0f} ms, overhead {(took - start_direct) * ms:4.0f} ms "
              "(target <= 100)")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5, help="start-ups measured for the start-up overhead")
    args = parser.parse_args()
    return asyncio.run(main_async(args.calls, args.warmup, args.runs))


if __name__ == "__main__":
    sys.exit(main())
