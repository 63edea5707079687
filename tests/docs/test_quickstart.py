"""The README's and the quick start page's commands work as written: on a fresh clone of this repository,
`make serve` runs in the background and the commands a newcomer runs next are run verbatim, in a shell,
while it serves.

The clone reuses this test run's venv without letting anything install into it: its `.venv` is a folder of
symlinks to the venv's parts plus a bootstrap stamp of its own, newer than the files it depends on, and
`make -n serve` must show no bootstrap step before `make serve` runs. (The venv's editable install still
imports the packages of the tree the tests run from; `PYTHONPATH` cannot point at the clone's, since the
mesh rightly judges any command run with a `PYTHONPATH` as one that may run other code: `BIN.config-exec`.)
The ports, XDG folders and HOME are the test's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from policy.core.guard import state_guard
from policy.core.model import ToolCall
from policy.mesh.active import default_state_dir
from tests.docs.blocks import runnable_blocks
from tests.support.net import free_port
from tests.support.proc import Proc

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
PAGES = [ROOT / "README.md", ROOT / "docs" / "quickstart.md"]
START_SECONDS = 60.0
RUN_SECONDS = 120.0
STOP_SECONDS = 20.0
# Not "agent-mesh", the name `git clone` gives: see the xfail below.
CLONE = "project"


def fresh_clone(tmp_path: Path) -> Path:
    """The committed tree, cloned, with a `.venv` that reuses this run's venv read-only (see the module doc)."""
    clone = tmp_path / CLONE
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=RUN_SECONDS)
    venv = clone / ".venv"
    venv.mkdir()
    for part in VENV.iterdir():
        if part.name != ".installed":
            (venv / part.name).symlink_to(part)
    newest = max((clone / f).stat().st_mtime for f in ("pyproject.toml", "requirements.lock", "scripts/bootstrap.sh"))
    (venv / ".installed").touch()
    os.utime(venv / ".installed", (newest + 60, newest + 60))
    return clone


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_MESH_", "VIRTUAL_ENV", "MAKE", "PYTHON"))}
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        folder = tmp_path / name.lower()
        folder.mkdir(mode=0o700)
        env[name] = str(folder)
    env["SERVE_ARGS"] = f"--listen-proxy 127.0.0.1:{free_port()} --listen-control 127.0.0.1:{free_port()}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_newcomer_runs_the_quick_start_verbatim_on_a_fresh_clone(tmp_path: Path, page: Path) -> None:
    clone, env = fresh_clone(tmp_path), environment(tmp_path)
    blocks = runnable_blocks(clone / page.relative_to(ROOT))
    [serve] = [b for b in blocks if b.background]
    steps = [b for b in blocks if not b.background]
    assert serve.text.strip() == "make serve"
    assert steps, f"{page.name} marks no command to run after make serve"
    plan = subprocess.run(["make", "-n", "serve"], cwd=clone, env=env, capture_output=True, text=True, timeout=60)
    assert "bootstrap" not in plan.stdout + plan.stderr, f"make serve would reinstall the venv:\n{plan.stdout}"

    with Proc(["bash", "-c", serve.text], cwd=clone, env=env, inherit_env=False, name="make-serve") as served:
        served.wait_for_line(r"one-time login link: http://127\.0\.0\.1:\d+/login\?code=", timeout=START_SECONDS)
        served.wait_for_line("Ctrl-C stops everything", timeout=START_SECONDS)
        script = "set -euo pipefail\n" + "\n".join(b.text for b in steps)
        ran = subprocess.run(
            ["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=RUN_SECONDS
        )
        assert ran.returncode == 0, f"{page.name}'s commands failed:\n{ran.stdout}\n{ran.stderr}"
        # What the page says they show: a write waits for a human; `git show` ran as an allowed call, traced.
        assert "decision:   human_approval" in ran.stdout
        assert "Author:" in ran.stdout
        [traced] = [line for line in ran.stdout.splitlines() if " git.show " in line]
        assert traced.split()[2:5] == ["claude", "git.show", "allow"]
        os.killpg(served.pid, signal.SIGINT)  # Ctrl-C in the terminal that runs `make serve`
        served.wait_exit(timeout=STOP_SECONDS)
    assert "stopped; traces flushed" in served.output()


def test_a_command_run_in_a_clone_named_agent_mesh_is_not_refused_as_the_mesh_state(tmp_path: Path) -> None:
    state = default_state_dir({"XDG_DATA_HOME": str(tmp_path / "data")})  # the built-in default's
    guard = state_guard(state)
    Path(state).mkdir(parents=True)
    (tmp_path / "agent-mesh").mkdir()
    argv = ["git", "show", "--stat", "HEAD"]
    assert guard(ToolCall("claude", "cli", "git", "show", {"argv": argv, "cwd": str(tmp_path / "agent-mesh")})) is None
    assert guard(ToolCall("claude", "cli", "cat", "", {"argv": ["cat", f"{state}/traces.jsonl"]})) is not None
