"""A headless Debian chromium under playwright-core (Node), driven step by step from Python tests through
tests/e2e/browser_driver.cjs; its process group is always stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.support.targets import Targets

DRIVER = Path(__file__).with_name("browser_driver.cjs")
STEP_SECONDS = 20.0
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


class BrowserError(RuntimeError):
    """A browser step failed (its message is playwright's)."""


class Browser:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc
        self._lock = threading.Lock()

    def _do(self, op: str, **args: Any) -> Any:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise BrowserError(f"the browser driver exited ({self._proc.poll()}) during {op}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise BrowserError(f"{op} {args}: {answer['error']}")
        return answer["value"]

    def goto(self, url: str) -> str:
        return str(self._do("goto", url=url))

    def wait_for(self, selector: str, *, timeout: float = 10.0, state: str = "visible") -> None:
        self._do("waitFor", selector=selector, timeout=timeout * 1000, state=state)

    def wait_for_text(self, selector: str, text: str, *, timeout: float = 10.0) -> None:
        self._do("waitForText", selector=selector, text=text, timeout=timeout * 1000)

    def click(self, selector: str, *, timeout: float = 5.0) -> None:
        self._do("click", selector=selector, timeout=timeout * 1000)

    def fill(self, selector: str, value: str, *, timeout: float = 5.0) -> None:
        self._do("fill", selector=selector, value=value, timeout=timeout * 1000)

    def text(self, selector: str, *, timeout: float = 5.0) -> str:
        return str(self._do("text", selector=selector, timeout=timeout * 1000))

    def count(self, selector: str) -> int:
        return int(self._do("count", selector=selector))

    def eval(self, expression: str) -> Any:
        return self._do("eval", expression=expression)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self._do("screenshot", path=str(path))
        return path

    def state(self) -> dict[str, Any]:
        return dict(self._do("state"))


@contextmanager
def browser(targets: Targets, chromium: Path) -> Iterator[Browser]:
    core = targets.npm_package("playwright-core")
    argv = [str(targets.node20), str(DRIVER), str(core), str(chromium)]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PLAYWRIGHT_BROWSERS_PATH": "0"},
    )
    try:
        b = Browser(proc)
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if '"ready"' not in ready:
            raise BrowserError(f"the browser did not start ({proc.poll()}): {ready!r}")
        yield b
    finally:
        if proc.poll() is None and proc.stdin is not None:
            with suppress(OSError, subprocess.TimeoutExpired):  # killed below either way
                proc.stdin.write('{"op": "close"}\n')
                proc.stdin.close()
                proc.wait(STEP_SECONDS)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
