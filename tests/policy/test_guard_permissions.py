"""The state dir is private: created 0700 with 0600 files whatever the umask, and refused at start when open."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy import Gate, LoadedConfig, Outcome, SqliteStore, ToolCall, load_config_text
from policy.control.auth import load_or_create_token
from policy.store.base import Limits
from policy.store.statedir import (
    StateDirExposed,
    exposures,
    forget_checks,
    is_public,
    make_private_dir,
    require_private,
)

COUNTED = Limits("p", per_minute=1000)  # a budget, so that admitting a call writes to state.db

ALLOW_ALL = (
    "version: 1\npolicies:\n  - name: p\n    agent: '*'\n    rules:\n      - tools: ['*']\n        action: allow\n"
)


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """A umask that leaves everything open, so only the mesh's own modes can make files private."""
    old = os.umask(0o000)
    forget_checks()
    try:
        yield
    finally:
        os.umask(old)
        forget_checks()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loaded_for(state: Path) -> LoadedConfig:
    return load_config_text(ALLOW_ALL + f"state_dir: {state}\n", "<test>")


def call() -> ToolCall:
    return ToolCall("a", "mcp_stdio", "fs", "read", {"path": "/tmp/x"})


def test_a_fresh_state_dir_and_its_database_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "deep" / ".agent-mesh"
    store = SqliteStore(state)
    assert store.admit("a", "h", COUNTED, 1000.0).admitted
    assert mode(state) == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(state / name) == 0o600, name
    store.close()


def test_the_operator_token_is_private_in_a_private_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    load_or_create_token(state)
    assert mode(state) == 0o700
    assert mode(state / "operator.token") == 0o600


def test_a_gate_on_a_fresh_state_dir_records_into_private_files(tmp_path: Path) -> None:
    state = tmp_path / ".agent-mesh"

    async def run() -> None:
        gate = Gate.open(loaded_for(state))
        verdict = await gate.check(call())
        gate.finish(call(), verdict, Outcome(forwarded=True))
        await gate.aclose()

    asyncio.run(run())
    assert mode(state) == 0o700
    files = [p for p in state.iterdir() if p.is_file()]
    assert any(p.name == "traces.jsonl" for p in files)
    private = [p for p in files if not is_public(p.name)]
    assert {p.name: mode(p) for p in private} == {p.name: 0o600 for p in private}
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"  # `git add -A` never takes the state
    assert exposures(state) == []


@pytest.mark.parametrize("dir_mode", [0o755, 0o750, 0o701, 0o777])
def test_an_existing_state_dir_open_to_others_is_refused_with_the_chmod_that_fixes_it(
    tmp_path: Path, dir_mode: int
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(dir_mode)
    with pytest.raises(StateDirExposed) as caught:
        require_private(state)
    assert f"chmod 700 {state}" in str(caught.value)


def test_an_open_state_dir_stops_a_gate_from_starting(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    with pytest.raises(StateDirExposed, match="chmod 700"):
        Gate.open(loaded_for(state))


def test_an_open_state_dir_refuses_the_store_and_the_operator_token(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    with pytest.raises(ValueError, match="chmod 700"):
        load_or_create_token(state)
    with pytest.raises(StateDirExposed):
        SqliteStore(state).admit("a", "h", COUNTED, 1000.0)


@pytest.mark.parametrize("name", ["state.db", "state.db-wal", "operator.token", "traces.3.jsonl", "ca-bundle.pem"])
def test_an_open_file_in_an_open_state_dir_is_named_in_the_refusal(tmp_path: Path, name: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / name).write_text("x")
    (state / name).chmod(0o666)
    with pytest.raises(StateDirExposed) as caught:
        require_private(state)
    fix = "chmod go-w" if name == "ca-bundle.pem" else "chmod 600"
    assert f"chmod 700 {state}" in str(caught.value)
    assert f"{fix} {state / name}" in str(caught.value)


def test_an_open_file_in_a_private_state_dir_is_a_warning_with_its_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = make_private_dir(tmp_path / "state")
    (state / "state.db").write_text("x")
    (state / "state.db").chmod(0o644)
    with caplog.at_level(logging.WARNING, "agent_mesh.statedir"):
        require_private(state)
    assert f"chmod 600 {state / 'state.db'}" in caplog.text


def test_the_ca_key_is_flagged_but_the_ca_certificate_and_bundle_are_not(tmp_path: Path) -> None:
    state = make_private_dir(tmp_path / "state")
    confdir = make_private_dir(state / "mitmproxy")
    for public in (confdir / "mitmproxy-ca-cert.pem", state / "ca-bundle.pem"):
        public.write_text("cert")
        public.chmod(0o644)
    assert exposures(state) == []
    (confdir / "mitmproxy-ca.pem").write_text("key")
    (confdir / "mitmproxy-ca.pem").chmod(0o640)
    assert [e.path.name for e in exposures(state)] == ["mitmproxy-ca.pem"]


def test_a_state_dir_that_does_not_exist_yet_passes_and_is_created_private(tmp_path: Path) -> None:
    state = tmp_path / "later"
    require_private(state)
    assert make_private_dir(state) == state
    assert mode(state) == 0o700


def test_running_the_advised_commands_fixes_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "state.db").write_bytes(b"")
    (state / "state.db").chmod(0o644)
    with pytest.raises(StateDirExposed) as caught:
        require_private(state)
    advice = str(caught.value).split("Run: ", 1)[1]
    subprocess.run(["sh", "-c", advice.replace("; ", " && ")], check=True)
    require_private(state)
    assert exposures(state) == []


def _store(state: Path) -> None:
    store = SqliteStore(state)
    store.admit("a", "h", COUNTED, 1000.0)
    store.close()


def _write_ahead(state: Path) -> None:
    from policy.trace.ahead import AheadLog

    log = AheadLog(state)
    log.open()
    log.close()


def _checkpoint_key(state: Path) -> None:
    from policy.trace.checkpoint import load_key

    assert load_key(state) is not None


def _trace_feed(state: Path) -> None:
    from policy.trace.feed import TraceFeed

    feed = TraceFeed(state)
    assert feed.last_seq() == 0
    feed.close()


@pytest.mark.parametrize(
    "first", [_store, load_or_create_token, _write_ahead, _checkpoint_key, _trace_feed], ids=lambda f: f.__name__
)
def test_whichever_part_creates_the_state_dir_first_makes_it_private(tmp_path: Path, first: object) -> None:
    state = tmp_path / "deeper" / ".agent-mesh"
    first(state)  # type: ignore[operator]
    assert mode(state) == 0o700
    assert [e for e in exposures(state) if not is_public(e.path.name)] == []
    forget_checks()
    require_private(state)  # the next start is not refused


@pytest.mark.parametrize(
    "command",
    [
        ["mcpwrap", "exec", "--agent", "claude", "--", "true"],
        ["agent-mesh", "serve"],
        ["agent-mesh", "proxy", "--listen", "127.0.0.1:9"],
        ["agent-mesh", "approvals", "list"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_every_entry_point_refuses_to_start_on_an_open_state_dir(tmp_path: Path, command: list[str]) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(ALLOW_ALL + f"state_dir: {state}\n")
    binary = Path(sys.executable).with_name(command[0])
    done = subprocess.run(
        [str(binary), *command[1:], "--config", str(config)] if command[0] == "agent-mesh" else
        [str(binary), command[1], "--config", str(config), *command[2:]],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"chmod 700 {state}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in state.iterdir()) == []  # nothing was written into it


def test_a_state_dir_that_is_a_symlink_to_an_open_folder_is_refused(tmp_path: Path) -> None:
    """`.agent-mesh -> /tmp/open` (made by the agent before the mesh first ran): the folder it leads to counts."""
    target = tmp_path / "open"
    target.mkdir()
    target.chmod(0o777)
    (tmp_path / ".agent-mesh").symlink_to(target)
    with pytest.raises(StateDirExposed, match="chmod 700"):
        require_private(tmp_path / ".agent-mesh")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_a_state_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    """A private folder the agent's user made and owns: it can chmod it open or swap state.db at any time."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    state = tmp_path / ".agent-mesh"
    state.mkdir(mode=0o700)
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(StateDirExposed, match="owned by"):
        require_private(state)
