"""The README's and the quick start page's commands work as written: on a fresh clone of this repository,
`make serve` runs in the background and the commands a newcomer runs next are run verbatim, in a shell,
while it serves; a headless chromium opens serve's login link, sees the call in the Calls table and, for a
call the page says waits for a human, clicks Approve once.

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
from tests.e2e.browser import Browser, browser
from tests.support.net import free_port
from tests.support.proc import Proc
from tests.support.targets import Targets

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
PAGES = [ROOT / "README.md", ROOT / "docs" / "quickstart.md"]
START_SECONDS = 60.0
RUN_SECONDS = 120.0
STOP_SECONDS = 20.0
CLONE = "agent-mesh"  # the folder `git clone` makes
HELD_SECONDS = 20.0


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


def approve_on_the_page(page: Browser, held: Proc) -> None:
    """What a human does for a held call: find its card on the page, click Approve once."""
    held.wait_for_line(r"waits for a human: run `agent-mesh approvals approve [0-9a-f]{12}`", timeout=HELD_SECONDS)
    page.wait_for("#inbox .approval", timeout=HELD_SECONDS)
    page.click("#inbox .approval button[data-action=approve]")


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_newcomer_runs_the_quick_start_verbatim_on_a_fresh_clone(
    tmp_path: Path, page: Path, targets: Targets, chromium: Path
) -> None:
    clone, env = fresh_clone(tmp_path), environment(tmp_path)
    blocks = runnable_blocks(clone / page.relative_to(ROOT))
    [serve] = [b for b in blocks if b.mode == "background"]
    steps = [b for b in blocks if b.mode == ""]
    held_calls = [b for b in blocks if b.mode == "held"]
    assert len(held_calls) <= 1, "one held call per page: the test approves the one card it finds"
    assert serve.text.strip() == "make serve"
    assert steps, f"{page.name} marks no command to run after make serve"
    plan = subprocess.run(["make", "-n", "serve"], cwd=clone, env=env, capture_output=True, text=True, timeout=60)
    assert "bootstrap" not in plan.stdout + plan.stderr, f"make serve would reinstall the venv:\n{plan.stdout}"

    with (
        Proc(["bash", "-c", serve.text], cwd=clone, env=env, inherit_env=False, name="make-serve") as served,
        browser(targets, chromium) as b,
    ):
        login = served.wait_for_line(
            r"one-time login link: (http://127\.0\.0\.1:\d+/login\?code=\S+)", timeout=START_SECONDS
        )
        served.wait_for_line("Ctrl-C stops everything", timeout=START_SECONDS)
        b.goto(login.group(1))  # "Open the login link in a browser"
        # The second terminal: the marked blocks in page order, in one shell (`source` holds for what follows);
        # a held call waits there until the human approves it on the page.
        script = "set -euo pipefail\n" + "\n".join(block.text for block in blocks if block.mode != "background")
        with Proc(["bash", "-c", script], cwd=clone, env=env, inherit_env=False, name="second-terminal") as terminal:
            if held_calls:
                approve_on_the_page(b, terminal)
                served.wait_for_line(r"held: claude -> touch\s+approval [0-9a-f]{12}\s+http://", timeout=HELD_SECONDS)
            code = terminal.wait_exit(timeout=RUN_SECONDS)
            out = terminal.output()
        assert code == 0, f"{page.name}'s commands failed:\n{out}"
        # What the page says they show: a write waits for a human; `git show` ran as an allowed call, traced.
        assert "decision:   human_approval" in out
        assert "Author:" in out
        [traced] = [line for line in out.splitlines() if " git.show " in line]
        assert traced.split()[2:5] == ["claude", "git.show", "allow"]
        b.wait_for_text("#traces td", "git.show", timeout=HELD_SECONDS)
        os.killpg(served.pid, signal.SIGINT)  # Ctrl-C in the terminal that runs `make serve`
        served.wait_exit(timeout=STOP_SECONDS)
    assert "stopped; traces flushed" in served.output()
    if held_calls:
        assert (tmp_path / "home" / "agent-mesh-demo").exists(), "the approved touch did not run"


def test_a_command_run_in_a_clone_named_agent_mesh_is_not_refused_as_the_mesh_state(tmp_path: Path) -> None:
    state = default_state_dir({"XDG_DATA_HOME": str(tmp_path / "data")})  # the built-in default's
    guard = state_guard(state)
    Path(state).mkdir(parents=True)
    (tmp_path / "agent-mesh").mkdir()
    argv = ["git", "show", "--stat", "HEAD"]
    assert guard(ToolCall("claude", "cli", "git", "show", {"argv": argv, "cwd": str(tmp_path / "agent-mesh")})) is None
    assert guard(ToolCall("claude", "cli", "cat", "", {"argv": ["cat", f"{state}/traces.jsonl"]})) is not None
