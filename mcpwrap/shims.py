"""`mcpwrap shims --dir DIR BIN…`: PATH shims that send every run of BIN through `mcpwrap exec`.

Each shim names the real binary by absolute path (found on PATH outside DIR), so a shim never calls
itself; DIR gets a marker file so `mcpwrap exec` also never mistakes a shim for the real thing.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from mcpwrap.execute import SHIM_MARKER, resolve_binary


def mcpwrap_command() -> list[str]:
    """How a shim or client config starts this mcpwrap: its console script, else `python -m mcpwrap`."""
    script = Path(sys.executable).with_name("mcpwrap")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "mcpwrap"]


def exec_command(*, config: str | None, agent: str, state_dir: str | None = None) -> list[str]:
    """The `mcpwrap exec` prefix every shim runs, settings carried as flags."""
    cmd = [*mcpwrap_command(), "exec", "--agent", agent]
    if config:
        cmd += ["--config", os.path.abspath(config)]
    if state_dir:
        cmd += ["--state-dir", os.path.abspath(state_dir)]
    return cmd


def shim_script(name: str, real: str, prefix: Sequence[str]) -> str:
    """The text of the shim for binary `name` whose real executable is `real`."""
    line = " ".join(shlex.quote(part) for part in [*prefix, "--", real])
    return (
        "#!/bin/sh\n"
        f"# agent-mesh shim: every `{name}` run from here is judged by mcpwrap exec (made by `mcpwrap shims`).\n"
        f'exec {line} "$@"\n'
    )


def write_shims(directory: Path, names: Sequence[str], prefix: Sequence[str], path: str | None = None) -> list[Path]:
    """Write one executable shim per binary into `directory`. Raises ValueError for a missing binary."""
    reals: dict[str, str] = {}
    directory = directory.absolute()
    search = path if path is not None else os.environ.get("PATH", os.defpath)
    search = os.pathsep.join(d for d in search.split(os.pathsep) if d and Path(d).absolute() != directory)
    for name in names:
        if "/" in name or not name:
            raise ValueError(f"{name!r}: give a binary name (like git), not a path")
        real = resolve_binary(name, search)
        if real is None:
            raise ValueError(f"{name}: not found on PATH (outside {directory})")
        reals[name] = os.path.abspath(real)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SHIM_MARKER).write_text("# PATH shims made by `mcpwrap shims`: not real binaries.\n", "utf-8")
    written = []
    for name, real in reals.items():
        shim = directory / name
        shim.write_text(shim_script(name, real, prefix), "utf-8")
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(shim)
    return written
