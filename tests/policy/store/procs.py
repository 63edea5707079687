"""Start real OS processes on a shared state dir, release them together, collect their JSON answers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def wait_for_go(state: Path, timeout: float = 20.0) -> None:
    """In a worker: block until the test releases every worker at once (bounded)."""
    deadline = time.monotonic() + timeout
    while not (state / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")
        time.sleep(0.001)


def spawn(module: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def race(state: Path, module: str, commands: list[list[str]], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run one worker per command; once all are ready, release them at once; return their last lines."""
    (state / "go").unlink(missing_ok=True)
    procs = [spawn(module, str(state), *cmd) for cmd in commands]
    try:
        for p in procs:
            assert p.stdout is not None
            ready = p.stdout.readline()
            assert ready.strip(), f"worker died before it was ready: {p.communicate(timeout=timeout)[1]}"
        (state / "go").touch()
        answers = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
            answers.append(json.loads(out.strip().splitlines()[-1]))
        return answers
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=timeout)
