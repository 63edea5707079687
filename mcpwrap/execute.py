"""`mcpwrap exec -- BIN ARGS…`: judge one command line, then become the real binary or refuse with 126.

The real binary replaces mcpwrap (`execv`, no shell), so its exit status, signals and terminal are
native. A held command waits on the terminal, showing the approval id a human must approve.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from mcpwrap.argv import command_arguments
from mcpwrap.process import NOT_FOUND_STATUS
from policy import Gate, Outcome, ToolCall, Verdict, VerdictKind, refusal_text

REFUSED_STATUS = 126
# Seconds between "still waiting" lines while a command is held for approval.
WAITING_LINE_SECONDS = 10.0
# A directory holding this file contains agent-mesh shims: never resolve a real binary there.
SHIM_MARKER = ".agent-mesh-shims"

log = logging.getLogger("mcpwrap")


def resolve_binary(name: str, path: str | None = None) -> str | None:
    """The real executable for `name`: as given when it has a slash, else on PATH outside shim dirs."""
    if "/" in name:
        return name if os.access(name, os.X_OK) and not os.path.isdir(name) else None
    dirs = (path if path is not None else os.environ.get("PATH", os.defpath)).split(os.pathsep)
    real = [d for d in dirs if d and not (Path(d) / SHIM_MARKER).exists()]
    return shutil.which(name, path=os.pathsep.join(real))


def command_call(argv: Sequence[str], *, agent: str, session_id: str, cwd: str) -> ToolCall:
    """The ToolCall of a command line: tool `BIN.SUBCOMMAND`, `args.argv`, `args.cwd` and what the command's
    parser found (for git: `args.config`, `args.env`, `args.exec`, `args.force`; see mcpwrap/argv.py)."""
    server, tool, arguments = command_arguments(argv, cwd, os.environ)
    return ToolCall(agent=agent, surface="cli", server=server, tool=tool, arguments=arguments, session_id=session_id)


async def judge_command(gate: Gate, call: ToolCall) -> Verdict:
    """Check the command; a pending one is held here, telling the terminal who must approve what."""
    verdict = await gate.check(call)
    if verdict.kind is not VerdictKind.PENDING:
        return verdict
    log.warning(
        "%s waits for a human: run `agent-mesh approvals approve %s` (holding up to %.0f s)",
        call.full_name,
        verdict.approval_id,
        gate.config.approval.hold_seconds,
    )

    async def waiting(elapsed: float) -> None:
        log.warning("still waiting for approval %s (%.0f s)", verdict.approval_id, elapsed)

    return await gate.hold(verdict, on_tick=waiting, tick_seconds=WAITING_LINE_SECONDS)


async def prepare_exec(gate: Gate, argv: Sequence[str], *, agent: str, session_id: str) -> tuple[int, str | None]:
    """Judge `argv` and record it. Returns (status, path): path to exec when allowed, else the status."""
    call = command_call(argv, agent=agent, session_id=session_id, cwd=os.getcwd())
    verdict = await judge_command(gate, call)
    if not verdict.allowed:
        gate.finish(call, verdict, Outcome(forwarded=False))
        log.error("%s", refusal_text(verdict))
        return REFUSED_STATUS, None
    binary = resolve_binary(argv[0])
    if binary is None:
        gate.finish(call, verdict, Outcome(forwarded=False, error=f"{argv[0]}: command not found"))
        log.error("%s: command not found", argv[0])
        return NOT_FOUND_STATUS, None
    # The exit status is the binary's own once it replaces this process: the trace records the launch.
    gate.finish(call, verdict, Outcome(forwarded=True))
    return 0, binary


def become(binary: str, argv: Sequence[str]) -> None:
    """Replace this process with the real binary (never returns)."""
    os.execv(binary, [argv[0], *argv[1:]])
