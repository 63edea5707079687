"""`agent-mesh doctor` tells whether an OS user (the agent's) can read or change the mesh's state."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policy import SqliteStore
from policy.cli import cli
from policy.control.auth import load_or_create_token
from policy.store.base import Limits
from policy.store.statedir import forget_checks

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="checking another user's access needs files owned by others")
NOBODY = "nobody"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Path]:
    """A folder every user may enter (pytest's tmp_path is 0700: no other user could reach anything in it)."""
    folder = Path(tempfile.mkdtemp(prefix="doctor-"))
    folder.chmod(0o755)
    forget_checks()
    try:
        yield folder
    finally:
        shutil.rmtree(folder)
        forget_checks()


def mesh_state(world: Path) -> Path:
    """A config and a state dir as the mesh makes them: state.db with its WAL files and the operator token."""
    state = world / "state"
    (world / "agent-mesh.yaml").write_text(f"version: 1\nstate_dir: {state}\n")
    (world / "agent-mesh.yaml").chmod(0o644)
    store = SqliteStore(state)
    assert store.admit("a", "h", Limits("p", per_minute=10), 1000.0).admitted
    store.close()
    load_or_create_token(state)
    return state


def doctor(world: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["doctor", "--config", str(world / "agent-mesh.yaml"), "--json", *args])
    return result, json.loads(result.output) if result.output.startswith("{") else {}


def reached(report: dict[str, Any]) -> set[str]:
    return {row["what"] for row in report["reachable"]}


@AS_ROOT
def test_a_private_state_dir_owned_by_the_mesh_is_out_of_another_users_reach(world: Path) -> None:
    mesh_state(world)
    result, report = doctor(world, "--as-user", NOBODY)
    assert result.exit_code == 0, result.output
    assert report["ok"] is True
    assert report["mesh_runs_as_its_own_user"] is True
    assert report["state_owner"] == pwd.getpwuid(os.geteuid()).pw_name
    checked = {row["what"] for row in report["checked"]}
    assert {"state dir", "state database", "operator token", "folder above it"} <= checked


@AS_ROOT
def test_an_open_state_dir_is_reported_with_what_can_be_read_and_exits_one(world: Path) -> None:
    state = mesh_state(world)
    (state / "traces.jsonl").write_text("{}\n")
    (state / "mitmproxy").mkdir(mode=0o755)
    (state / "mitmproxy" / "mitmproxy-ca.pem").write_text("KEY")
    (state / "mitmproxy" / "mitmproxy-ca-cert.pem").write_text("CERT")
    state.chmod(0o755)
    for path in (
        "state.db",
        "operator.token",
        "traces.jsonl",
        "mitmproxy/mitmproxy-ca.pem",
        "mitmproxy/mitmproxy-ca-cert.pem",
    ):
        (state / path).chmod(0o644)
    result, report = doctor(world, "--as-user", NOBODY)
    assert result.exit_code == 1
    assert reached(report) == {"state dir", "state database", "operator token", "trace file", "CA private key"}
    certificate = next(row for row in report["checked"] if row["what"] == "CA certificate")
    assert certificate["read"] is True  # agents are meant to read it: not a reach
    token = next(row for row in report["reachable"] if row["what"] == "operator token")
    assert token == {**token, "read": True, "write": False, "mode": "0644"}


@AS_ROOT
def test_a_group_writable_database_is_a_reach_for_a_member_of_the_group(world: Path) -> None:
    state = mesh_state(world)
    nobody = pwd.getpwnam(NOBODY)
    os.chown(state, -1, nobody.pw_gid)
    os.chown(state / "state.db", -1, nobody.pw_gid)
    state.chmod(0o710)
    (state / "state.db").chmod(0o660)
    result, report = doctor(world, "--as-user", NOBODY)
    assert result.exit_code == 1
    row = next(r for r in report["reachable"] if r["path"] == str(state / "state.db"))
    assert row["read"]
    assert row["write"]


@AS_ROOT
def test_the_agent_running_as_the_mesh_s_own_user_reaches_everything_and_is_told_why(world: Path) -> None:
    state = mesh_state(world)
    nobody = pwd.getpwnam(NOBODY)
    for path in (state, *state.iterdir()):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    result = CliRunner().invoke(cli, ["doctor", "--config", str(world / "agent-mesh.yaml"), "--as-user", NOBODY])
    assert result.exit_code == 1
    assert "owned by user 'nobody', the same user" in result.output
    assert "run the mesh as its own OS user" in result.output
    assert "REACH operator token" in result.output


@AS_ROOT
def test_a_config_file_the_agent_can_edit_is_a_reach(world: Path) -> None:
    mesh_state(world)
    (world / "agent-mesh.yaml").chmod(0o666)
    result, report = doctor(world, "--as-user", NOBODY)
    assert result.exit_code == 1
    assert reached(report) == {"config file (the policy)"}


@AS_ROOT
def test_a_folder_above_that_the_agent_can_write_lets_it_swap_the_state_dir(world: Path) -> None:
    mesh_state(world)
    world.chmod(0o777)
    result, report = doctor(world, "--as-user", NOBODY)
    assert result.exit_code == 1
    assert "folder above it" in reached(report)
    world.chmod(0o1777)  # sticky (like /tmp): others cannot rename what they do not own
    result, report = doctor(world, "--as-user", NOBODY)
    assert result.exit_code == 0, result.output


@AS_ROOT
def test_root_reaches_everything(world: Path) -> None:
    mesh_state(world)
    result = CliRunner().invoke(cli, ["doctor", "--config", str(world / "agent-mesh.yaml")])
    assert result.exit_code == 1
    assert "run agents as an unprivileged user" in result.output


def test_an_unknown_user_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "agent-mesh.yaml").write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n")
    result = CliRunner().invoke(
        cli, ["doctor", "--config", str(tmp_path / "agent-mesh.yaml"), "--as-user", "no-such-user-xyz"]
    )
    assert result.exit_code == 2
    assert "no such user" in result.output


def test_a_broken_config_exits_two(tmp_path: Path) -> None:
    (tmp_path / "agent-mesh.yaml").write_text("version: 1\nnot_a_key: 1\n")
    result = CliRunner().invoke(cli, ["doctor", "--config", str(tmp_path / "agent-mesh.yaml")])
    assert result.exit_code == 2
