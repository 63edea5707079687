"""Several OS processes share one trace: nothing lost, one linear chain, rotation included."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from policy.trace import trace_files
from policy.trace.verify import verify_state

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 60.0


def run_writers(state: Path, counts: dict[str, int], max_bytes: int) -> list[dict[str, int]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.policy.trace.worker", str(state), str(n), name, str(max_bytes)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, n in counts.items()
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.communicate(timeout=TIMEOUT)[1]
        for p in procs:  # release them together
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=TIMEOUT)


def test_three_processes_write_ten_thousand_traces_without_losing_one(tmp_path: Path) -> None:
    counts = {"alpha": 3333, "beta": 3333, "gamma": 3334}
    results = run_writers(tmp_path, counts, max_bytes=512 * 1024)
    assert all(r["closed"] and r["dropped"] == 0 and r["errors"] == 0 for r in results)

    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.jsonl is not None
    assert report.table is not None
    assert report.jsonl.records == report.table.records == 10_000
    assert len(trace_files(tmp_path)) > 3  # rotated while three processes were appending

    conn = sqlite3.connect(tmp_path / "state.db")
    try:
        per_agent = dict(conn.execute("SELECT agent, count(DISTINCT trace_id) FROM traces GROUP BY agent"))
    finally:
        conn.close()
    assert per_agent == counts
    seen = [json.loads(line)["trace_id"] for p in trace_files(tmp_path) for line in p.read_text().splitlines()]
    assert len(seen) == len(set(seen)) == 10_000
