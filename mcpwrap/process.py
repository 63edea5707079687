"""The one place mcpwrap starts and stops processes.

The child gets its own process group and PR_SET_PDEATHSIG, so it dies with mcpwrap even when mcpwrap is
SIGKILLed; its stderr is mcpwrap's stderr, untouched. Stopping follows the MCP stdio advice: close stdin,
wait, SIGTERM the group, wait, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator, Sequence

# How long a child may take to exit after its stdin closes, then after SIGTERM, before SIGKILL.
EXIT_AFTER_EOF_SECONDS = 2.0
EXIT_AFTER_TERM_SECONDS = 2.0
_PR_SET_PDEATHSIG = 1
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


async def spawn(argv: Sequence[str], env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start `argv` with piped stdin/stdout and inherited stderr, in its own process group."""
    if not argv:
        raise SpawnError("no command given")
    parent = os.getpid()
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            env=env,
            process_group=0,
            preexec_fn=lambda: _die_with_parent(parent),
        )
    except FileNotFoundError:
        raise SpawnError(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise SpawnError(f"not executable: {argv[0]}") from None


@contextlib.contextmanager
def forwarding_signals(proc: asyncio.subprocess.Process) -> Iterator[None]:
    """While inside, SIGTERM, SIGINT and SIGHUP sent to mcpwrap go to the child's process group instead."""
    loop = asyncio.get_running_loop()
    for sig in FORWARDED_SIGNALS:
        loop.add_signal_handler(sig, signal_group, proc, sig)
    try:
        yield
    finally:
        for sig in FORWARDED_SIGNALS:
            loop.remove_signal_handler(sig)


def signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    """Send `sig` to the child's whole process group (servers started by npx have grandchildren)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:
        # The group may hold only zombies we cannot signal; the child itself is ours.
        if proc.returncode is None:
            proc.send_signal(sig)


async def _wait(proc: asyncio.subprocess.Process, seconds: float) -> bool:
    try:
        await asyncio.wait_for(proc.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def stop(proc: asyncio.subprocess.Process) -> int:
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
