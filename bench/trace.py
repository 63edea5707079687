"""Benchmark the trace: writer throughput (JSONL + traces table, hash-chained, one and three processes) and
the cost on the caller's thread of `build_record`, `emit` and `ahead` (the write-ahead of an allowed call's
decision record: build, encode and one O_APPEND write, paid before the call is forwarded).

Baseline, measured in the same run: plain `json.dumps(record)` + one buffered write per record to a file.
Run: `make bench` or `.venv/bin/python bench/trace.py [--records N]` (best of 3 runs per setup).
Target: writer >= 20,000 records/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policy import Action, Decision, Outcome, ToolCall, Verdict, VerdictKind
from policy.core.config import TraceSettings
from policy.trace import TraceWriter, build_record
from policy.trace.verify import verify_state

TARGET_PER_SECOND = 20_000
REPEAT = 3
REDACT = ["authorization", "token", "password", "api_key"]
DECISION = Decision(Action.ALLOW, "bench/reads", "bench/reads allows fs.read_file", "bench")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def make_call(i: int) -> ToolCall:
    args = {"path": f"/srv/project/src/module_{i}.py", "encoding": "utf-8", "offset": i, "limit": 200}
    return ToolCall(f"agent-{i % 4}", "mcp_stdio", "fs", "read_file", args, session_id=f"s-{i % 16}")


def make_record(i: int, call: ToolCall | None = None) -> dict[str, Any]:
    verdict = Verdict(VerdictKind.ALLOW, DECISION, "policy:bench/reads", DECISION.reason, f"{i:032x}")
    outcome = Outcome(forwarded=True, is_error=False, latency_ms=1.5)
    c = call or make_call(i)
    return build_record(c, verdict, outcome, policy_hash="0123456789abcdef", redact_keys=REDACT, ts=time.time())


def baseline(records: list[dict[str, Any]], folder: Path) -> tuple[float, float]:
    """records/s (and CPU µs per record) of json.dumps + write per record: an unchained, synchronous log."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    with (folder / "plain.jsonl").open("w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return len(records) / elapsed, cpu / len(records) * 1e6


def writer_throughput(records: list[dict[str, Any]], folder: Path, settings: TraceSettings) -> tuple[float, float]:
    """(records/s from the first emit until close() has written the last one, CPU µs per record)."""
    writer = TraceWriter(folder, settings)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for r in records:
        writer.emit(r)
    check(writer.close(timeout=300), "the writer did not finish")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    check(writer.stats().written == len(records), str(writer.stats()))
    return len(records) / elapsed, cpu / len(records) * 1e6


def processes_throughput(n: int, folder: Path) -> tuple[float, None]:
    """records/s of three OS processes writing one chain at once (each emits n/3)."""
    each = n // 3
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(folder), str(each), str(k)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    for p in procs:
        check(p.stdout is not None and p.stdout.readline().strip() == "ready", "a worker did not start")
    t0 = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.communicate(timeout=300)
        check(p.returncode == 0, "a worker failed")
    elapsed = time.perf_counter() - t0
    report = verify_state(folder)
    check(report.ok and report.table is not None and report.table.records == 3 * each, str(report.problems))
    return 3 * each / elapsed, None


def worker(folder: str, count: int, k: int) -> int:
    records = [make_record(k * 10_000_000 + i) for i in range(count)]
    writer = TraceWriter(folder, TraceSettings())
    print("ready", flush=True)
    sys.stdin.readline()
    for r in records:
        writer.emit(r)
    return 0 if writer.close(timeout=300) else 1


def caller_costs(n: int, folder: Path) -> dict[str, float]:
    """p50/p99 µs on the caller's thread: build_record, emit (writer running), and the baseline's dumps+write."""
    calls = [make_call(i) for i in range(n)]
    clock = time.perf_counter_ns
    build: list[int] = []
    records = []
    for c in calls:
        t0 = clock()
        records.append(make_record(0, c))
        build.append(clock() - t0)
    emit: list[int] = []
    writer = TraceWriter(folder, TraceSettings())
    for i, r in enumerate(records):
        r["trace_id"] = f"e{i:031x}"
        t0 = clock()
        writer.emit(r)
        emit.append(clock() - t0)
    ahead: list[int] = []
    for i, c in enumerate(calls):
        verdict = Verdict(VerdictKind.ALLOW, DECISION, "policy:bench/reads", DECISION.reason, f"a{i:031x}")
        t0 = clock()
        writer.ahead(c, verdict, policy_hash="0123456789abcdef", redact_keys=REDACT, ts=1.0)
        ahead.append(clock() - t0)
    writer.close(timeout=300)
    plain: list[int] = []
    with (folder / "plain-caller.jsonl").open("w") as f:
        for r in records:
            t0 = clock()
            f.write(json.dumps(r) + "\n")
            plain.append(clock() - t0)
    out = {}
    for name, samples in (("build_record", build), ("emit", emit), ("ahead", ahead), ("baseline", plain)):
        samples.sort()
        out[f"{name} p50"] = statistics.median(samples) / 1000
        out[f"{name} p99"] = samples[int(len(samples) * 0.99)] / 1000
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
    n = args.records
    records = [make_record(i) for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="am-bench-trace-") as tmp:
        root = Path(tmp)
        runs = iter(range(1_000_000))

        def fresh() -> Path:
            folder = root / f"run-{next(runs)}"
            folder.mkdir()
            return folder

        # Best of REPEAT runs each: the machine is shared, and the best run is the least disturbed one.
        base, base_cpu = max(baseline(records, fresh()) for _ in range(REPEAT))
        setups: list[tuple[str, Callable[[], tuple[float, float | None]]]] = [
            ("writer: JSONL + table, 1 process", lambda: writer_throughput(records, fresh(), TraceSettings())),
            ("writer: JSONL only, 1 process", lambda: writer_throughput(records, fresh(), TraceSettings(sqlite=False))),
            ("writer: table only, 1 process", lambda: writer_throughput(records, fresh(), TraceSettings(jsonl=False))),
            ("writer: JSONL + table, 3 processes", lambda: processes_throughput(n, fresh())),
        ]
        rows = [(name, max((run() for _ in range(REPEAT)), key=lambda r: r[0])) for name, run in setups]
        costs = caller_costs(min(n, 20_000), fresh())
    print(f"trace writer, {n:,} records (~{len(json.dumps(records[0]))} bytes each), hash-chained")
    print(f"{'':<40} {'records/s':>12} {'vs baseline':>12} {'CPU µs/rec':>11}")
    print(f"{'baseline: json.dumps + write, 1 thread':<40} {base:>12,.0f} {1.0:>11.2f}x {base_cpu:>11.1f}")
    for name, (rate, cpu) in rows:
        cpu_text = f"{cpu:>11.1f}" if cpu is not None else f"{'-':>11}"
        print(f"{name:<40} {rate:>12,.0f} {rate / base:>11.2f}x {cpu_text}")
    print()
    print(f"{'on the caller thread':<40} {'p50 µs':>12} {'p99 µs':>12}")
    for name in ("build_record", "emit", "ahead", "baseline"):
        labels = {"baseline": "baseline: json.dumps + write", "ahead": "ahead (write-ahead, allowed calls)"}
        label = labels.get(name, name)
        print(f"{label:<40} {costs[f'{name} p50']:>12.2f} {costs[f'{name} p99']:>12.2f}")
    worst = min(rate for _, (rate, _) in rows)
    verdict = "met" if worst >= TARGET_PER_SECOND else "NOT met"
    print(f"\ntarget: writer >= {TARGET_PER_SECOND:,} records/s in every setup: {verdict} (lowest {worst:,.0f})")
    return 0 if worst >= TARGET_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main())
