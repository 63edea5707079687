"""Benchmark the CLI's start-up: the commands an operator runs most, against `python -c pass`.

Each command is a fresh process (as at a shell prompt) on a real state dir (SQLite, a few pending approvals
and grants); the figure is the median wall time of N runs, the baseline `python -c pass` is measured in the
same run, interleaved with the commands so load on the machine hits both alike. Run: `make bench` or
`.venv/bin/python bench/cli.py [--runs N]`. Target: <= 0.3 s for each command (lazy imports: a command loads
only its own module; see policy/cli/__init__.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from policy import Gate, ToolCall, VerdictKind, load_config
from policy.trace import MemoryTraceSink

TARGET_SECONDS = 0.3
CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: bench
    agent: "*"
    rules:
      - {{tools: ["fs.read*"], action: allow}}
      - {{tools: ["fs.write*"], action: human_approval}}
"""


def agent_mesh() -> list[str]:
    """The installed console script next to this interpreter (what a user runs), else `python -m policy.cli`."""
    script = Path(sys.executable).with_name("agent-mesh")
    return [str(script)] if script.exists() else [sys.executable, "-m", "policy.cli"]


async def pending_ids(config: Path, n: int) -> list[str]:
    """n calls waiting for a human (one per agent, so no per-agent cap on pending approvals is reached)."""
    gate = Gate.open(load_config(str(config)), sink=MemoryTraceSink())
    ids = []
    try:
        for i in range(n):
            call = ToolCall(f"agent-{i}", "mcp_stdio", "fs", "write_file", {"path": f"/srv/{i}.txt"})
            verdict = await gate.check(call)
            if verdict.kind is not VerdictKind.PENDING or verdict.approval_id is None:
                raise RuntimeError(f"expected a pending approval, got {verdict}")
            ids.append(verdict.approval_id)
    finally:
        await gate.aclose()
    return ids


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run: CPU time barely moves when other work shares the machine."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=60)
    took, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return took, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=11, help="start-ups measured per command")
    args = parser.parse_args()
    runs = max(1, args.runs)
    exe = agent_mesh()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent-mesh.yaml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state"))
        ids = asyncio.run(pending_ids(config, runs))
        env = dict(os.environ, AGENT_MESH_CONFIG=str(config), NO_COLOR="1")
        commands: dict[str, list[list[str]]] = {
            "python -c pass": [[sys.executable, "-c", "pass"]] * runs,
            "agent-mesh check": [[*exe, "check"]] * runs,
            "agent-mesh approvals list": [[*exe, "approvals", "list"]] * runs,
            "agent-mesh approvals approve ID": [[*exe, "approvals", "approve", i, "--by", "bench"] for i in ids],
            "agent-mesh grants list": [[*exe, "grants", "list"]] * runs,
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(runs):  # interleaved: a burst of load elsewhere does not land on one command only
            for name, argvs in commands.items():
                wall, cpu = timed(argvs[i], env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    base = statistics.median(walls["python -c pass"])
    print(f"CLI start-up, median of {runs} fresh processes ({' '.join(exe)}; load average {os.getloadavg()[0]:.1f})")
    print(f"{'command':34} {'wall s':>7} {'ratio':>7} {'- baseline s':>13} {'CPU s':>7}")
    worst = 0.0
    for name in commands:
        med, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        if name != "python -c pass":
            worst = max(worst, med)
        print(f"{name:34} {med:7.3f} {med / base:6.1f}x {med - base:13.3f} {cpu:7.3f}")
    verdict = "met" if worst <= TARGET_SECONDS else "NOT met"
    print(f"slowest command {worst:.3f} s wall: target <= {TARGET_SECONDS} s {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
