"""Processes for tests: start in their own process group, wait (bounded) for a line or a port, always stop.

`Proc` is for long-running servers; `run` is for one-shot commands. Both kill the whole process group,
so grandchildren (npx, Inspector's server, gunicorn workers) never outlive a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.net import LOOPBACK, POLL_SECONDS, port_is_open

Argv = Sequence[str | os.PathLike[str]]
TAIL_LINES = 40


def pid_running(pid: int) -> bool:
    """Whether process `pid` runs; a zombie (dead, not yet reaped) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def pid_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once process `pid` no longer runs, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_running(pid):
            return True
        time.sleep(0.02)
    return False


class ProcExitedError(RuntimeError):
    """The process ended while a test was still waiting for it to become ready."""


def _environment(env: Mapping[str, str] | None, inherit_env: bool) -> dict[str, str]:
    base = dict(os.environ) if inherit_env else {}
    return base | dict(env or {})


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class Proc:
    """A server process in its own process group, with stdout+stderr captured line by line.

    On exit (or `stop()`): SIGTERM to the group, SIGKILL to the group after `stop_timeout` seconds,
    then a final SIGKILL sweep for children that ignored the first signal.

    Example:
        port = free_port()
        with Proc([node, prism, "mock", "-h", "127.0.0.1", "-p", str(port), spec], name="prism") as p:
            p.wait_for_line("Prism is listening", timeout=30)     # or: p.wait_for_port(port, timeout=30)
            httpx.get(f"http://127.0.0.1:{port}/pets")
        # stopped here, whatever happened inside

    In async tests, use `await p.async_wait_for_line(...)` / `await p.async_wait_for_port(...)` so the
    event loop keeps serving while you wait.
    """

    def __init__(
        self,
        argv: Argv,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        name: str | None = None,
        stop_timeout: float = 5.0,
    ) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.env = _environment(env, inherit_env)
        self.cwd = Path(cwd) if cwd is not None else None
        self.name = name or Path(self.argv[0]).name
        self.stop_timeout = stop_timeout
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._popen: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> Self:
        """Spawn the process (stdin closed) and start collecting its output."""
        self._popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"proc-{self.name}", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._popen is not None
        assert self._popen.stdout is not None
        for line in self._popen.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def popen(self) -> subprocess.Popen[str]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def lines(self) -> list[str]:
        """Every output line so far (stdout and stderr interleaved)."""
        with self._changed:
            return list(self._lines)

    def output(self) -> str:
        return "\n".join(self.lines)

    def _tail(self) -> str:
        return "\n".join(self.lines[-TAIL_LINES:])

    def wait_for_line(self, pattern: str | re.Pattern[str], *, timeout: float = 10.0) -> re.Match[str]:
        """Block until an output line matches `pattern` (re.search); return the match.

        Raises TimeoutError, or ProcExitedError if the process ends first; both carry the output tail.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if m := regex.search(line):
                        return m
                seen = len(self._lines)
                reader_done = self._reader is not None and not self._reader.is_alive()
                if reader_done and not self.alive():
                    raise ProcExitedError(
                        f"{self.name} exited ({self.returncode}) before printing /{regex.pattern}/:\n{self._tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.name} printed no line matching /{regex.pattern}/ within {timeout:g}s:\n{self._tail()}"
                    )
                self._changed.wait(min(left, POLL_SECONDS * 4))

    def wait_for_port(self, port: int, *, host: str = LOOPBACK, timeout: float = 10.0) -> None:
        """Block until host:port accepts connections; fails fast (ProcExitedError) if the process dies."""
        deadline = time.monotonic() + timeout
        while not port_is_open(port, host):
            if not self.alive():
                raise ProcExitedError(
                    f"{self.name} exited ({self.returncode}) before listening on {host}:{port}:\n{self._tail()}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name} did not listen on {host}:{port} within {timeout:g}s:\n{self._tail()}")
            with self._changed:
                self._changed.wait(min(left, POLL_SECONDS))

    # The waits run in a worker thread that asyncio.timeout() could not cancel, hence their own timeout.
    async def async_wait_for_line(
        self,
        pattern: str | re.Pattern[str],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> re.Match[str]:
        """`wait_for_line` in a worker thread, so the event loop keeps running meanwhile."""
        return await asyncio.to_thread(self.wait_for_line, pattern, timeout=timeout)

    async def async_wait_for_port(
        self,
        port: int,
        *,
        host: str = LOOPBACK,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """`wait_for_port` in a worker thread, so the event loop keeps running meanwhile."""
        await asyncio.to_thread(self.wait_for_port, port, host=host, timeout=timeout)

    def wait_exit(self, *, timeout: float = 10.0) -> int:
        """Wait for the process to end by itself; TimeoutError (with the output tail) if it does not."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name} still running after {timeout:g}s:\n{self._tail()}") from None
        if self._reader is not None:
            self._reader.join(timeout)
        return code

    def stop(self) -> int | None:
        """Terminate the process group (SIGTERM, then SIGKILL); idempotent. Returns the exit code."""
        if self._popen is None:
            return None
        pgid = self._popen.pid  # start_new_session=True makes the child a group leader
        if self._popen.poll() is None:
            _kill_group(pgid, signal.SIGTERM)
            try:
                self._popen.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                _kill_group(pgid, signal.SIGKILL)
                self._popen.wait(self.stop_timeout)
        _kill_group(pgid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(self.stop_timeout)
        if self._popen.stdout is not None:
            self._popen.stdout.close()
        return self._popen.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run(
    argv: Argv,
    *,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a one-shot command in its own process group and capture stdout and stderr separately.

    On timeout the whole group is killed and TimeoutError says what was left running; with
    `check=True` a non-zero exit raises RuntimeError carrying both streams.

    Example:
        out = run([node20, inspector, "--cli", node20, everything, "stdio", "--method", "tools/list"])
        tools = json.loads(out.stdout)["tools"]
    """
    args = [os.fspath(a) for a in argv]
    with subprocess.Popen(
        args,
        env=_environment(env, inherit_env),
        cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as popen:
        try:
            stdout, stderr = popen.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(popen.pid, signal.SIGKILL)
            stdout, stderr = popen.communicate()
            raise TimeoutError(
                f"{Path(args[0]).name} did not finish within {timeout:g}s: {args}\n"
                f"stdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}"
            ) from None
        finally:
            _kill_group(popen.pid, signal.SIGKILL)
    done = subprocess.CompletedProcess(args, popen.returncode, stdout, stderr)
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{Path(args[0]).name} exited {done.returncode}: {args}\nstdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}"
        )
    return done
