"""The one place mcpwrap starts and stops processes.

The child gets its own process group and PR_SET_PDEATHSIG, so it dies with mcpwrap even when mcpwrap is
SIGKILLed; its stderr is mcpwrap's stderr, untouched. Stopping follows the MCP stdio advice: close stdin,
wait, SIGTERM the group, wait, SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # asyncio loads only once a child is attached: `start` runs before the heavy imports
    import asyncio

# How long a child may take to exit after its stdin closes, then after SIGTERM, before SIGKILL.
EXIT_AFTER_EOF_SECONDS = 2.0
EXIT_AFTER_TERM_SECONDS = 2.0
_PR_SET_PDEATHSIG = 1
NOT_FOUND_STATUS = 127  # what a shell exits with when a command cannot be found or run
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_libc = ctypes.CDLL(None, use_errno=True)


class SpawnError(OSError):
    """The command could not be started (not found, not executable)."""


def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: its exit code, or 128+N when signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


def _die_with_parent(parent: int) -> None:
    # Runs in the child between fork and exec: only async-signal-safe work here.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent already died before prctl took effect
        os._exit(1)


class Child:
    """A started server in its own process group: piped stdin/stdout, mcpwrap's stderr.

    Started synchronously (`start`), so mcpwrap can launch it before loading the rest of itself; `attach`
    then gives it asyncio streams (`stdin`, `stdout`) and an exit watcher on the running loop.
    """

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self._exited: asyncio.Future[None] | None = None

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), or None while it runs or is not yet reaped."""
        return self._popen.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the child itself (not its group); nothing once it has been reaped."""
        self._popen.send_signal(sig)

    async def attach(self) -> None:
        """Connect the pipes to the running loop and watch for the child's exit."""
        import asyncio

        from mcpwrap.streams import pipe_reader, pipe_writer

        loop = asyncio.get_running_loop()
        assert self._popen.stdin is not None
        assert self._popen.stdout is not None
        self.stdout = await pipe_reader(self._popen.stdout)
        self.stdin = await pipe_writer(self._popen.stdin)
        exited: asyncio.Future[None] = loop.create_future()
        self._exited = exited

        def reaped() -> None:
            self._popen.wait()
            if not exited.done():
                exited.set_result(None)

        try:
            pidfd = os.pidfd_open(self.pid)
        except OSError:  # no pidfd (old kernel, seccomp): a thread waits instead
            threading.Thread(
                target=lambda: (self._popen.wait(), loop.call_soon_threadsafe(reaped)), daemon=True
            ).start()
            return

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            reaped()

        loop.add_reader(pidfd, on_exit)

    async def wait(self) -> int:
        """Wait for the child to exit; returns its returncode."""
        import asyncio

        assert self._exited is not None, "attach() first"
        await asyncio.shield(self._exited)
        assert self._popen.returncode is not None
        return self._popen.returncode

    def abandon(self) -> None:
        """Kill the child's group and reap it, without an event loop (start-up failed after `start`)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for pipe in (self._popen.stdin, self._popen.stdout):
            if pipe is not None:
                pipe.close()
        self._popen.wait()


def start(argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
    """Start `argv` with piped stdin/stdout and inherited stderr, in its own process group."""
    if not argv:
        raise SpawnError("no command given")
    parent = os.getpid()
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            bufsize=0,
            process_group=0,
            preexec_fn=lambda: _die_with_parent(parent),
        )
    except FileNotFoundError:
        raise SpawnError(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise SpawnError(f"not executable: {argv[0]}") from None
    return Child(popen)


def start_or_exit(argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
    """`start`, or exit 127 with `mcpwrap: command not found: …` on stderr as a shell would.

    From here on, SIGTERM, SIGINT and SIGHUP sent to mcpwrap go to the child's group, also while the rest
    of mcpwrap is still loading (`forwarding_signals` takes over once the event loop runs)."""
    try:
        child = start(argv, env)
    except SpawnError as exc:
        sys.stderr.write(f"mcpwrap: {exc}\n")
        sys.exit(NOT_FOUND_STATUS)
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda signum, _frame: signal_group(child, signum))
    return child


async def spawn(argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
    """`start` and `attach` in one step, for callers already inside the event loop."""
    child = start(argv, env)
    try:
        await child.attach()
    except BaseException:
        child.abandon()
        raise
    return child


@contextlib.contextmanager
def forwarding_signals(proc: Child) -> Iterator[None]:
    """While inside, SIGTERM, SIGINT and SIGHUP sent to mcpwrap go to the child's process group instead."""
    import asyncio

    loop = asyncio.get_running_loop()
    for sig in FORWARDED_SIGNALS:
        loop.add_signal_handler(sig, signal_group, proc, sig)
    try:
        yield
    finally:
        for sig in FORWARDED_SIGNALS:
            loop.remove_signal_handler(sig)


def signal_group(proc: Child, sig: int) -> None:
    """Send `sig` to the child's whole process group (servers started by npx have grandchildren)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:
        # The group may hold only zombies we cannot signal; the child itself is ours.
        if proc.returncode is None:
            proc.send_signal(sig)


async def _wait(proc: Child, seconds: float) -> bool:
    import asyncio

    try:
        await asyncio.wait_for(proc.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def stop(proc: Child) -> int:
    """Close the child's stdin and wait for it; escalate to SIGTERM then SIGKILL. Returns exit_status."""
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
    if not await _wait(proc, EXIT_AFTER_EOF_SECONDS):
        signal_group(proc, signal.SIGTERM)
        if not await _wait(proc, EXIT_AFTER_TERM_SECONDS):
            signal_group(proc, signal.SIGKILL)
            await proc.wait()
    # The leader is gone; whatever it left in its group must not outlive mcpwrap either.
    signal_group(proc, signal.SIGKILL)
    assert proc.returncode is not None
    return exit_status(proc.returncode)
