"""Benchmark the pure decision engine: decisions/s and p50/p99 latency at 10, 100 and 1,000 rules.

Baseline, measured in the same run: a policy with a single catch-all rule. Run: `make bench` or
`.venv/bin/python bench/decide.py [--calls N]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from policy import ToolCall, compile_policies, decide, load_config_text
from policy.core.engine import PolicySet


def build_policy(n_rules: int, seed: int = 7) -> PolicySet:
    """A realistic mix: a third exact tool names, a third server globs, a third with argument conditions."""
    rnd = random.Random(seed)
    rules = []
    for i in range(n_rules - 1):
        kind = i % 3
        server = f"svc{rnd.randrange(max(1, n_rules // 10))}"
        action = rnd.choice(["allow", "deny", "human_approval"])
        if kind == 0:
            rules.append(f'      - {{tools: ["{server}.tool_{i}"], action: {action}}}')
        elif kind == 1:
            rules.append(f'      - {{tools: ["{server}.get_*", "{server}.list_*"], action: {action}}}')
        else:
            rules.append(
                f'      - {{tools: ["{server}.write_*"], when: {{args.path: {{glob: "/tmp/{i}/**"}}, '
                f"args.size: {{lt: {i * 10}}}}}, action: {action}}}"
            )
    rules.append('      - {tools: ["*"], action: human_approval}')
    text = "version: 1\npolicies:\n  - name: team\n    agent: 'team-*'\n    rules: []\n"
    text += "  - name: bench\n    agent: '*'\n    rules:\n" + "\n".join(rules) + "\n"
    return compile_policies(load_config_text(text, f"bench-{n_rules}.yaml"))


def make_calls(n_rules: int, count: int, seed: int = 11) -> list[ToolCall]:
    rnd = random.Random(seed)
    servers = max(1, n_rules // 10)
    calls = []
    for _ in range(count):
        s = f"svc{rnd.randrange(servers)}"
        tool = rnd.choice([f"tool_{rnd.randrange(n_rules)}", "get_item", "list_items", "write_file", "delete_all"])
        args = {"path": f"/tmp/{rnd.randrange(n_rules)}/x.txt", "size": rnd.randrange(10_000), "note": "x" * 40}
        calls.append(ToolCall(f"agent-{rnd.randrange(5)}", "mcp_stdio", s, tool, args))
    return calls


def measure(ps: PolicySet, calls: list[ToolCall]) -> tuple[float, float, float]:
    """(decisions per second, p50 µs, p99 µs); the first pass warms the per-tool caches."""
    for c in calls[:2000]:
        decide(c, ps)
    samples = []
    clock = time.perf_counter_ns
    start = clock()
    for c in calls:
        t0 = clock()
        decide(c, ps)
        samples.append(clock() - t0)
    total = (clock() - start) / 1e9
    q = statistics.quantiles(samples, n=100)
    return len(calls) / total, q[49] / 1000, q[98] / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50_000)
    opts = parser.parse_args()
    base = measure(build_policy(1), make_calls(1, opts.calls))
    print(f"{'rules':>6} {'decisions/s':>12} {'p50 µs':>8} {'p99 µs':>8} {'p50 vs 1 rule':>14}")
    print(f"{1:>6} {base[0]:>12,.0f} {base[1]:>8.1f} {base[2]:>8.1f} {1.0:>13.2f}x   (baseline)")
    ok = True
    for n in (10, 100, 1000):
        rate, p50, p99 = measure(build_policy(n), make_calls(n, opts.calls))
        print(f"{n:>6} {rate:>12,.0f} {p50:>8.1f} {p99:>8.1f} {p50 / base[1]:>13.2f}x")
        if n == 1000:
            ok = p50 <= 20 and p99 <= 60
    print(f"target at 1,000 rules: p50 <= 20 µs, p99 <= 60 µs: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
