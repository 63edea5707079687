"""TraceWriter(process=True): records built and written by a worker process, with this process taking over
when the worker dies, and the worker writing what it received when this process dies."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from policy import HttpInfo, Outcome
from policy.core.config import TraceSettings
from policy.trace import TraceWriter
from policy.trace.verify import verify_state
from policy.trace.worker import WriterProcess, flatten, record_of
from tests.policy.trace.factories import REDACT, call, record, verdict
from tests.policy.trace.test_writer import lines, table
from tests.support import pid_gone, pid_running

ROOT = Path(__file__).resolve().parents[3]


def worker_of(writer: TraceWriter) -> WriterProcess:
    remote = writer._remote
    assert remote is not None, "the writer runs without a worker process"
    return remote


def test_a_flattened_call_gives_the_record_the_call_itself_gives() -> None:
    from policy.trace import build_record

    c = call(arguments={"path": "/tmp/a", "token": "s3cret"}, http=HttpInfo("POST", "h", "/p"), annotations={"x": 1})
    v = verdict(trace_id="t-f", approval_id="a-1", retry_after=2.5, precedents=("p1",), decision_ms=0.25)
    out = Outcome(True, status=500, is_error=False, latency_ms=3.0)
    expected = build_record(c, v, out, policy_hash="ph", redact_keys=REDACT, ts=5.0)
    assert record_of(flatten(c, v, out, "ph", REDACT, 5.0)) == expected


def test_records_and_calls_are_written_by_the_worker_chained_and_redacted(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(), process=True)
    pid = worker_of(writer).pid
    assert pid != os.getpid()
    for i in range(20):
        writer.emit(record(i))
    c = call(arguments={"path": "/tmp/a", "token": "s3cret"})
    late = functools.partial(Outcome, True, 200, True, None, None, 2.0)  # a late outcome the worker can read
    writer.emit_call(c, verdict(trace_id="t-late"), late, policy_hash="ph", redact_keys=REDACT, ts=1.0)
    assert writer.flush(timeout=30)
    assert writer.stats().written == 21
    assert writer.close()
    assert pid_gone(pid, 10)
    rows = table(tmp_path)
    assert [r["trace_id"] for r in rows] == [f"t-{i:06d}" for i in range(20)] + ["t-late"]
    assert (rows[-1]["outcome"], rows[-1]["status"], rows[-1]["latency_ms"]) == ("upstream_error", 200, 2.0)
    assert json.loads(rows[-1]["args"]) == {"path": "/tmp/a", "token": "[REDACTED]"}
    assert json.loads(rows[-1]["record"])["call_hash"] == c.call_hash
    assert len(lines(tmp_path)) == 21
    report = verify_state(tmp_path)
    assert report.ok, report.problems


def test_an_outcome_only_this_process_can_read_is_recorded_here(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(), process=True)
    writer.emit_call(
        call(),
        verdict(trace_id="t-closure"),
        lambda: Outcome(True, status=201, latency_ms=1.0),  # a closure cannot be pickled
        policy_hash="ph",
        redact_keys=REDACT,
        ts=1.0,
    )
    writer.emit(record(1))
    assert writer.close()
    rows = table(tmp_path)
    assert [(r["trace_id"], r["status"]) for r in rows] == [("t-closure", 201), ("t-000001", None)]


def test_a_killed_worker_is_reported_and_this_process_writes_the_rest(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(), process=True)
    for i in range(10):
        writer.emit(record(i))
    assert writer.flush(timeout=30)
    pid = worker_of(writer).pid
    os.kill(pid, signal.SIGKILL)
    assert pid_gone(pid, 10)
    for i in range(10, 20):
        writer.emit(record(i))
    assert writer.close()
    assert [r["trace_id"] for r in table(tmp_path)] == [f"t-{i:06d}" for i in range(20)]
    assert writer.stats().written == 20
    assert f"the trace writer process {pid} stopped" in capfd.readouterr().err
    assert verify_state(tmp_path).ok


def test_the_worker_ignores_sigint_and_sigterm_and_stops_when_its_input_ends(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(), process=True)
    pid = worker_of(writer).pid
    writer.emit(record(0))
    assert writer.flush(timeout=30)
    os.kill(pid, signal.SIGINT)  # as a Ctrl-C in the terminal reaches the whole process group
    os.kill(pid, signal.SIGTERM)
    writer.emit(record(1))
    assert writer.close()
    assert [r["trace_id"] for r in table(tmp_path)] == ["t-000000", "t-000001"]
    assert pid_gone(pid, 10)


def test_the_worker_writes_what_it_received_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from policy.core.config import TraceSettings
        from policy.trace import TraceWriter
        from tests.policy.trace.factories import record

        writer = TraceWriter({str(tmp_path)!r}, TraceSettings(), process=True)
        print(writer._remote.pid, flush=True)
        for i in range(50):
            writer.emit(record(i))
        writer.flush(timeout=30)
        for i in range(50, 100):
            writer.emit(record(i))
        time.sleep(1.0)  # the writer hands the batch over within 0.2 s
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid = int(proc.stdout.split()[0])
    assert pid_gone(pid, 10), "the worker outlived its parent"
    assert [r["trace_id"] for r in table(tmp_path)] == [f"t-{i:06d}" for i in range(100)]
    assert verify_state(tmp_path).ok


def test_a_writer_whose_worker_cannot_start_writes_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    writer = TraceWriter(tmp_path, TraceSettings(), process=True)
    assert writer._remote is None
    writer.emit(record(0))
    assert writer.close()
    assert len(table(tmp_path)) == 1
    assert "no writer process" in capfd.readouterr().err


def test_the_proxy_s_gate_writes_its_traces_through_a_worker(tmp_path: Path) -> None:
    import asyncio

    from addons.governance import _default_gate
    from policy import load_config

    config = tmp_path / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n")
    gate = _default_gate(load_config(str(config)))
    try:
        assert isinstance(gate.sink, TraceWriter)
        assert pid_running(worker_of(gate.sink).pid)
    finally:
        asyncio.run(gate.aclose())


def test_a_full_disk_under_the_worker_is_reported_and_counted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "traces.jsonl").symlink_to("/dev/full")  # every write fails with ENOSPC
    writer = TraceWriter(tmp_path, TraceSettings(), process=True)
    for i in range(3):
        writer.emit(record(i))
    assert writer.flush(timeout=30)
    stats = writer.stats()
    assert (stats.written, stats.dropped, stats.errors) == (0, 3, 3)
    assert pid_running(worker_of(writer).pid)  # the worker reported it and goes on
    assert writer.close()
    err = capfd.readouterr().err
    assert "cannot write 3 trace record(s): OSError: [Errno 28]" in err
    assert "dropped 3" in err
