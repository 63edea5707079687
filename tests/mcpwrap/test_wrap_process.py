"""mcpwrap as a process: exit status, signals, stderr, files and /dev/null on stdio, the child's lifetime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import pid_running

SERVER = Path(__file__).with_name("stdio_server.py")
RUN_SECONDS = 30
DISCARD_PORT = 9  # a proxy address nothing in these tests reaches

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: all
    agent: "*"
    rules:
      - tools: ["stdlib.forbidden"]
        action: deny
      - tools: ["stdlib.*"]
        action: allow
"""


@pytest.fixture(params=["first-start", "first-start-behind-a-proxy", "known-config"])
def config(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs three times: on a config mcpwrap has never checked (it starts the server, then checks
    before relaying); the same with a proxy variable in the environment (the server's proxy URL depends on
    the config: it checks, then starts the server); and on a config it checked before (mcpwrap.launch)."""
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"))
    if request.param == "first-start-behind-a-proxy":
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{DISCARD_PORT}")
    if request.param == "known-config":
        done = run([sys.executable, "-m", "mcpwrap", "--config", str(path), "--", "true"])
        assert done.returncode == 0, done.stderr
    return path


def mcpwrap(config: Path, *server_args: str) -> list[str]:
    return [sys.executable, "-m", "mcpwrap", "--config", str(config), "--", sys.executable, str(SERVER), *server_args]


def frames(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def call(request_id: int, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}


def run(argv: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=RUN_SECONDS, check=False, env=env)


def replies(out: bytes) -> dict[Any, dict[str, Any]]:
    return {m["id"]: m for m in map(json.loads, out.splitlines())}


def test_client_eof_closes_the_server_cleanly_after_it_answered_everything(config: Path) -> None:
    done = run(mcpwrap(config), frames(INIT, call(1, "echo", text="hi"), call(2, "forbidden")))
    assert done.returncode == 0, done.stderr
    got = replies(done.stdout)
    assert got[1]["result"]["content"][0]["text"] == '{"text": "hi"}'
    assert got[2]["result"]["isError"] is True


def test_the_server_exit_status_becomes_mcpwraps_and_the_call_in_flight_gets_an_error(config: Path) -> None:
    done = run(mcpwrap(config), frames(INIT, call(1, "crash", status=3)))
    assert done.returncode == 3
    assert replies(done.stdout)[1]["error"]["message"].endswith("exited with status 3 before answering")


def test_a_server_killed_by_a_signal_gives_128_plus_the_signal(config: Path) -> None:
    done = run(mcpwrap(config), frames(INIT, call(1, "die_by_signal", signal=int(signal.SIGTERM))))
    assert done.returncode == 128 + signal.SIGTERM


def test_the_server_stderr_passes_through_and_stdout_carries_only_frames(config: Path) -> None:
    done = run(mcpwrap(config), frames(INIT, call(1, "shout", text="hello from the server")))
    assert b"hello from the server\n" in done.stderr
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in done.stdout.splitlines())


def test_stdin_from_dev_null_ends_the_session_with_the_server_status(config: Path) -> None:
    env = os.environ | {"STDLIB_SERVER_EXIT": "5"}
    with open(os.devnull, "rb") as null:
        done = subprocess.run(
            mcpwrap(config), stdin=null, capture_output=True, timeout=RUN_SECONDS, check=False, env=env
        )
    assert done.returncode == 5
    assert done.stdout == b""


def test_stdin_and_stdout_can_be_regular_files(config: Path, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(frames(INIT, call(1, "echo", n=1)))
    with open(tmp_path / "in.jsonl", "rb") as stdin, open(tmp_path / "out.jsonl", "wb") as stdout:
        code = subprocess.run(mcpwrap(config), stdin=stdin, stdout=stdout, timeout=RUN_SECONDS, check=False).returncode
    assert code == 0
    assert replies((tmp_path / "out.jsonl").read_bytes())[1]["result"]["isError"] is False


def test_the_server_dies_with_mcpwrap_even_when_mcpwrap_is_sigkilled(config: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    proc = subprocess.Popen(mcpwrap(config, "--pidfile", str(pidfile)), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while not (pidfile.exists() and pidfile.read_text()):
            assert time.monotonic() < deadline, "the server never started"
            time.sleep(0.02)
        server_pid = int(pidfile.read_text())
        proc.kill()
        proc.wait(RUN_SECONDS)
        while pid_running(server_pid):
            assert time.monotonic() < deadline, "the server outlived mcpwrap"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(RUN_SECONDS)
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.close()
        proc.stdout.close()


def test_sigterm_to_mcpwrap_reaches_the_server_and_its_status_comes_back(config: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    proc = subprocess.Popen(mcpwrap(config, "--pidfile", str(pidfile)), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    deadline = time.monotonic() + RUN_SECONDS
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline, "the server never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(RUN_SECONDS) == 128 + signal.SIGTERM
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.close()
    proc.stdout.close()


def test_a_command_that_does_not_exist_exits_127_with_a_message(config: Path) -> None:
    done = run([sys.executable, "-m", "mcpwrap", "--config", str(config), "--", "/no/such/server"])
    assert done.returncode == 127
    assert b"command not found: /no/such/server" in done.stderr


def test_a_bad_config_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\npolicies:\n  - name: x\n    rules: [{tools: [a], action: maybe}]\n")
    done = run([sys.executable, "-m", "mcpwrap", "--config", str(bad), "--", sys.executable, str(SERVER)])
    assert done.returncode == 2
    assert b"bad.yaml:4" in done.stderr
    assert b"maybe" in done.stderr


BAD_GLOB = "version: 1\npolicies:\n  - name: p\n    rules:\n      - tools: ['fs.[oops']\n        action: allow\n"


def listening_server(tmp_path: Path) -> tuple[str, Path, Path]:
    """A server that writes its pid, then keeps every byte it is sent: (shell command, pid file, bytes file)."""
    received, pidfile = tmp_path / "received", tmp_path / "pid"
    return f"echo $$ > {pidfile}; exec cat > {received}", pidfile, received


def assert_stopped_unheard(pidfile: Path, received: Path) -> None:
    # It may have been started before the check (and not got as far as writing its pid); it is gone, deaf.
    if pidfile.exists() and pidfile.read_text().strip():
        assert not pid_running(int(pidfile.read_text()))
    assert not received.exists() or received.read_bytes() == b""


def test_a_wrong_config_exits_two_and_its_server_hears_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "agent-mesh.yaml"
    bad.write_text(BAD_GLOB)
    server, pidfile, received = listening_server(tmp_path)
    argv = [sys.executable, "-m", "mcpwrap", "--config", str(bad), "--", "sh", "-c", server]
    proc = subprocess.run(argv, input=frames(INIT), capture_output=True, timeout=RUN_SECONDS, check=False)
    assert proc.returncode == 2
    assert f"{bad}:5: policies[0].rules[0].tools[0]: bad glob".encode() in proc.stderr
    assert b"Traceback" not in proc.stderr
    assert_stopped_unheard(pidfile, received)


def test_behind_a_proxy_a_wrong_config_exits_two_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{DISCARD_PORT}")
    bad = tmp_path / "agent-mesh.yaml"
    bad.write_text(BAD_GLOB)
    marker = tmp_path / "server-started"
    argv = [sys.executable, "-m", "mcpwrap", "--config", str(bad), "--", "sh", "-c", f"touch {marker}; cat"]
    proc = subprocess.run(argv, input=b"", capture_output=True, timeout=RUN_SECONDS, check=False)
    assert proc.returncode == 2
    assert b"bad glob" in proc.stderr
    assert not marker.exists()


def test_a_config_changed_to_wrong_after_a_clean_start_gets_no_frame_through(config: Path, tmp_path: Path) -> None:
    server, pidfile, received = listening_server(tmp_path)
    argv = [sys.executable, "-m", "mcpwrap", "--config", str(config), "--", "sh", "-c", server]
    assert run(argv, frames(INIT)).returncode == 0
    assert received.read_bytes() != b""  # a good config: the server heard the client
    received.unlink()
    pidfile.unlink()
    config.write_text(config.read_text().replace("action: deny", "action: maybe"))
    done = run(argv, frames(INIT))
    assert done.returncode == 2
    assert b"maybe" in done.stderr
    assert_stopped_unheard(pidfile, received)


def test_a_forged_checked_record_gets_the_server_stopped_before_it_hears_a_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcpwrap.checked import Checked, remember

    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "agent-mesh.yaml"
    bad.write_text("version: 1\npolicies:\n  - name: x\n    rules: [{tools: [a], action: maybe}]\n")
    # What a tampered cache would hold: a record claiming this wrong config passed the check.
    remember(str(bad), None, None, [], Checked(listen="127.0.0.1:8080"))
    received, pidfile = tmp_path / "received", tmp_path / "pid"
    server = f"echo $$ > {pidfile}; exec cat > {received}"
    argv = [sys.executable, "-m", "mcpwrap", "--config", str(bad), "--", "sh", "-c", server]
    done = subprocess.run(argv, input=frames(INIT), capture_output=True, timeout=RUN_SECONDS, check=False, cwd=tmp_path)
    assert done.returncode == 2
    assert b"maybe" in done.stderr
    assert b"Traceback" not in done.stderr
    # The server was started before the check (it may not have got as far as writing its pid) and is gone.
    if pidfile.exists() and pidfile.read_text().strip():
        assert not pid_running(int(pidfile.read_text()))
    assert not received.exists() or received.read_bytes() == b""


def test_an_unusable_state_dir_refuses_every_call_in_either_start_order(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state"))
    not_a_dir = tmp_path / "state-file"
    not_a_dir.write_text("a file where the state dir should be")
    argv = [sys.executable, "-m", "mcpwrap", "--config", str(config), "--state-dir", str(not_a_dir), "--"]
    argv += [sys.executable, str(SERVER)]
    for start in ("config never checked", "config checked before: the server starts first"):
        done = run(argv, frames(INIT, call(1, "echo", text="hi")))
        assert done.returncode == 0, (start, done.stderr)
        error = replies(done.stdout)[1]["error"]
        assert "could not judge this call" in error["message"], start
        assert "it was not run" in error["message"], start
        assert b"could not judge echo" in done.stderr, start
        assert b"Traceback" not in done.stderr, start
