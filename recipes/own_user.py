"""The mesh as its own OS user: private state, `agent-mesh doctor`'s verdict, an open state dir refused.

Runs offline and checks itself. As root (a container, CI) it plays both users for real: the state belongs to
root, standing in for the `agent-mesh` user of contrib/systemd/agent-mesh.service, and doctor checks the
agent's user (`nobody`) against it: out of reach while private, in reach once opened, and then the mesh
refuses to start until the printed `chmod` is run. As an ordinary user it shows the other half: an agent
running as the mesh's own user reaches everything, whatever the modes.

    .venv/bin/python recipes/own_user.py
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from addons.mesh_ca import ensure_ca
from policy import Gate, SqliteStore, load_config
from policy.control.auth import load_or_create_token
from policy.store.base import Limits
from policy.store.statedir import StateDirExposed, forget_checks

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "systemd" / "agent-mesh.service"
AGENT = "nobody"


def mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def doctor(config: Path, *extra: str) -> tuple[int, dict[str, object]]:
    """`agent-mesh doctor --json`, as an operator would run it."""
    cmd = [sys.executable, "-m", "policy.cli", "doctor", "--config", str(config), "--json", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout)


def make_state(world: Path) -> tuple[Path, Path]:
    """What `agent-mesh serve` makes on its first start: state.db, the operator token and the proxy CA."""
    state = world / "state"
    config = world / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {state}\n")
    config.chmod(0o644)
    store = SqliteStore(state)
    store.admit("claude", "h", Limits("demo", per_minute=60), 1_767_225_600.0)
    store.close()
    load_or_create_token(state)
    ensure_ca(state)
    return state, config


def check_modes(state: Path) -> list[str]:
    expected = {
        state: "0700",
        state / "state.db": "0600",
        state / "operator.token": "0600",
        state / "mitmproxy" / "mitmproxy-ca.pem": "0600",  # the CA's private key
        state / "ca-bundle.pem": "0644",  # certificates only: what agents are given
    }
    problems = []
    for path, want in expected.items():
        got = mode(path)
        print(f"  {got}  {path.relative_to(state.parent)}")
        if got != want:
            problems.append(f"{path} is {got}, expected {want}")
    return problems


def refused_then_fixed(config: Path, state: Path) -> list[str]:
    """Open the state dir as a careless `chmod -R a+rX` would; the mesh refuses to start, the fix works."""
    state.chmod(0o755)
    (state / "operator.token").chmod(0o644)
    forget_checks()
    try:
        Gate.open(load_config(str(config)))
    except StateDirExposed as exc:
        advice = str(exc).split("Run: ", 1)[1]
        print(f"the mesh refuses to start: ...Run: {advice}")
    else:
        return ["the mesh started on a state dir open to other users"]
    subprocess.run(["sh", "-c", advice.replace("; ", " && ")], check=True, timeout=30)
    forget_checks()
    gate = Gate.open(load_config(str(config)))
    asyncio.run(gate.aclose())
    print("after the fix, the mesh starts again")
    return []


def check_unit() -> list[str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    service = parser["Service"]
    want = {"User": "agent-mesh", "StateDirectory": "agent-mesh", "StateDirectoryMode": "0700", "UMask": "0077"}
    problems = [f"{UNIT.name}: {k}={service.get(k)!r}, expected {v!r}" for k, v in want.items() if service.get(k) != v]
    if "mitmproxy-ca.pem" in UNIT.read_text():
        problems.append(f"{UNIT.name} hands out the CA key")
    return problems


def main() -> int:
    world = Path(tempfile.mkdtemp(prefix="own-user-"))
    world.chmod(0o755)  # every user may enter: only the state dir's own modes keep the agent out
    try:
        state, config = make_state(world)
        print(f"the state, as the mesh made it in {world}:")
        problems = check_modes(state)
        problems += check_unit()
        as_root = os.geteuid() == 0
        if as_root and _user_exists(AGENT):
            code, report = doctor(config, "--as-user", AGENT)
            print(f"doctor --as-user {AGENT}: exit {code}, ok={report['ok']}, "
                  f"mesh runs as its own user: {report['mesh_runs_as_its_own_user']}")  # fmt: skip
            if code != 0 or report["mesh_runs_as_its_own_user"] is not True:
                problems.append(f"{AGENT} can reach the private state: {report['reachable']}")
            problems += refused_then_fixed(config, state)
            state.chmod(0o755)
            (state / "operator.token").chmod(0o644)
            code, report = doctor(config, "--as-user", AGENT)
            reached = sorted({str(row["what"]) for row in report["reachable"]})  # type: ignore[attr-defined]
            print(f"opened again, doctor --as-user {AGENT}: exit {code}, reaches {reached}")
            if code != 1 or "operator token" not in reached:
                problems.append("doctor did not report the opened state dir")
        else:
            code, report = doctor(config)
            me = pwd.getpwuid(os.geteuid()).pw_name
            print(f"doctor as {me}, the user that owns the state: exit {code} (an agent running as the mesh's user")
            print("reaches everything: run the mesh as its own OS user, see contrib/systemd/agent-mesh.service)")
            if code != 1:
                problems.append("doctor said the state's own user cannot reach it")
            problems += refused_then_fixed(config, state)
    finally:
        shutil.rmtree(world)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    print("own_user: OK" if not problems else "own_user: FAILED")
    return 1 if problems else 0


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
