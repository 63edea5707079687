"""A clean shutdown writes every queued record: at interpreter exit and on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from policy.trace.append import chain_lock
from policy.trace.verify import verify_state

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 30.0


def start(state: Path, count: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.policy.trace.shutdown_worker", str(state), str(count), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def records(state: Path) -> int:
    report = verify_state(state)
    assert report.ok, report.problems
    assert report.jsonl is not None
    assert report.table is not None
    assert report.jsonl.records == report.table.records
    return report.jsonl.records


def test_records_still_queued_at_exit_are_written(tmp_path: Path) -> None:
    with chain_lock(tmp_path):  # the writer cannot write before the process is already exiting
        proc = start(tmp_path, 500, "exit")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "emitted"
    _out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert records(tmp_path) == 500


def test_sigterm_flushes_the_queue_before_the_process_ends(tmp_path: Path) -> None:
    proc = start(tmp_path, 500, "sigterm")
    try:
        with chain_lock(tmp_path):
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "emitted"
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert records(tmp_path) == 500
