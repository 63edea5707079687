"""One mesh wherever a command runs: real `agent-mesh` and `mcpwrap` processes in different folders, with HOME
and the XDG dirs in a temporary home, a real stdio server (mcp-server-time) started the way an MCP client
starts it (the entry `mcpwrap install` wrote, a stripped environment, cwd `/`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.targets import Targets

BIN = Path(sys.executable).parent
AGENT_MESH = str(BIN / "agent-mesh")
MCPWRAP = str(BIN / "mcpwrap")
RUN_SECONDS = 60

HELD = """version: 1
state_dir: state
approval: {hold_seconds: 0}
policies:
  - name: ask
    agent: "*"
    rules:
      - {name: ask-everything, tools: ["*"], action: human_approval}
"""

TIME = """version: 1
state_dir: state
agents:
  pybot: {token: {$env: PYBOT_MESH_TOKEN}}
  claude: {}
policies:
  - name: time
    agent: "*"
    rules:
      - {name: no-clock, tools: ["time.*"], action: %s}
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def stripped(home: Path) -> dict[str, str]:
    """What an MCP client hands a server it starts: no tokens, no AGENT_MESH_CONFIG, its own XDG dirs."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


def run(argv: list[str], cwd: Path, home: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv, cwd=cwd, env=stripped(home), input=stdin, capture_output=True, timeout=RUN_SECONDS, check=False
    )


def folder(home: Path, name: str) -> Path:
    path = home / name
    path.mkdir(exist_ok=True)
    return path


def frames(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


CLOCK_CALL = frames(
    {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
     "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}},
)  # fmt: skip


def installed_entry(home: Path, *flags: str) -> tuple[list[str], str]:
    """Install a client config holding mcp-server-time and return the entry's command line and the output."""
    client = home / "client.json"
    if not client.exists():
        server = str(Targets().venv_bin("mcp-server-time"))
        client.write_text(json.dumps({"mcpServers": {"time": {"command": server, "args": []}}}))
    done = run([MCPWRAP, "install", "--client-config", str(client), "--agent", "claude", *flags], home, home)
    assert done.returncode == 0, done.stderr
    entry = json.loads(client.read_text())["mcpServers"]["time"]
    return [entry["command"], *entry["args"]], done.stdout.decode()


def clock_answer(argv: list[str], home: Path) -> dict[str, Any]:
    done = run(argv, Path("/"), home, CLOCK_CALL)
    answers = {m["id"]: m for m in map(json.loads, done.stdout.splitlines()) if "id" in m}
    assert 1 in answers, done.stderr.decode()
    return answers[1]


def test_a_read_only_command_in_home_creates_no_state_and_names_where_it_looked(home: Path) -> None:
    done = run([AGENT_MESH, "grants", "list"], home, home)
    assert done.returncode == 0, done.stderr
    assert f"no state yet at {home / '.local' / 'share' / 'agent-mesh' / '.agent-mesh'}" in done.stderr.decode()
    assert not (home / ".agent-mesh").exists()
    assert not (home / ".local" / "share" / "agent-mesh").exists()
    listed = run([AGENT_MESH, "approvals", "list", "--json"], home, home)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    for command in (["memory", "list"], ["status"], ["explain", "--agent", "a", "--tool", "fs.read_file"]):
        assert run([AGENT_MESH, *command], home, home).returncode == 0, command
    for command in (["traces", "tail"], ["traces", "verify"], ["approvals", "show", "abcdef"]):
        done = run([AGENT_MESH, *command], home, home)
        assert done.returncode == 1, command
        assert b"no state yet at" in done.stderr, command
    assert sorted(p.name for p in home.rglob("*")) == []  # nothing anywhere in HOME


def test_an_approval_asked_by_mcpwrap_exec_in_one_folder_is_approved_from_another(home: Path) -> None:
    mesh = folder(home, "mesh")
    (mesh / "agent-mesh.yaml").write_text(HELD)
    used = run([AGENT_MESH, "use", "agent-mesh.yaml"], mesh, home)
    assert used.returncode == 0, used.stderr
    assert f"registered {mesh / 'agent-mesh.yaml'} as the active mesh" in used.stdout.decode()
    project = folder(home, "project")
    held = run([MCPWRAP, "exec", "--", "true"], project, home)
    assert held.returncode == 126, held.stderr
    approval = re.search(rb"agent-mesh approvals approve ([0-9a-f]+)", held.stderr)
    assert approval is not None, held.stderr
    elsewhere = folder(home, "elsewhere")
    approved = run([AGENT_MESH, "approvals", "approve", approval.group(1).decode(), "--json"], elsewhere, home)
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["state_dir"] == str(mesh / "state")
    assert run([MCPWRAP, "exec", "--", "true"], project, home).returncode == 0
    assert not (project / ".agent-mesh").exists()
    assert not (elsewhere / ".agent-mesh").exists()


def test_an_installed_server_follows_the_mesh_registered_after_install_and_a_new_install_pins_it(
    home: Path,
) -> None:
    argv, out = installed_entry(home)
    assert "--config" not in argv
    assert "config the active mesh (now the built-in default" in out
    assert "result" in clock_answer(argv, home)  # the built-in default lets a read-only clock through
    mesh = folder(home, "mesh")
    (mesh / "agent-mesh.yaml").write_text(TIME % "deny")
    assert run([AGENT_MESH, "use", str(mesh / "agent-mesh.yaml")], home, home).returncode == 0
    refused = clock_answer(argv, home)
    assert refused["result"]["isError"] is True
    assert "time/no-clock" in json.dumps(refused)
    argv, out = installed_entry(home, "--agent", "pybot")
    assert f"updated time: agent claude → pybot; config (the active mesh) → {mesh / 'agent-mesh.yaml'}" in out
    assert argv[argv.index("--config") + 1] == str(mesh / "agent-mesh.yaml")
    _, again = installed_entry(home, "--agent", "pybot")
    assert "up to date: time" in again


def test_an_agent_token_secret_stops_neither_wrapped_servers_nor_operator_commands_under_a_stripped_env(
    home: Path,
) -> None:
    mesh = folder(home, "mesh")
    (mesh / "agent-mesh.yaml").write_text(TIME % "allow")
    argv, _ = installed_entry(home, "--config", str(mesh / "agent-mesh.yaml"))
    answer = clock_answer(argv, home)  # PYBOT_MESH_TOKEN is nowhere in this environment
    assert answer["result"].get("isError") is not True, answer
    config = ["--config", str(mesh / "agent-mesh.yaml")]
    for command in (["approvals", "list"], ["grants", "list"], ["check"], ["traces", "tail"]):
        done = run([AGENT_MESH, *command, *config], home, home)
        assert done.returncode == 0, (command, done.stderr)
        assert b"PYBOT_MESH_TOKEN" not in done.stderr


def test_a_secret_a_wrapped_server_does_need_is_named_with_the_client_config_fix(home: Path) -> None:
    mesh = folder(home, "mesh")
    text = (TIME % "allow").replace("policies:", "supervisor: {url: {$env: SUPERVISOR_URL}}\npolicies:")
    (mesh / "agent-mesh.yaml").write_text(text)
    argv, _ = installed_entry(home, "--config", str(mesh / "agent-mesh.yaml"))
    done = run(argv, Path("/"), home, CLOCK_CALL)
    assert done.returncode == 2
    message = done.stderr.decode()
    assert f"{mesh / 'agent-mesh.yaml'}:6: supervisor.url: environment variable SUPERVISOR_URL is not set" in message
    assert 'put SUPERVISOR_URL in this server\'s "env" in the client config' in message
    assert "Traceback" not in message


def test_on_a_terminal_a_command_names_the_config_and_state_it_used_and_a_stray_config_beside_it(
    home: Path,
) -> None:
    import os
    import pty

    mesh = folder(home, "mesh")
    (mesh / "agent-mesh.yaml").write_text(HELD)
    assert run([AGENT_MESH, "use", str(mesh / "agent-mesh.yaml")], home, home).returncode == 0
    project = folder(home, "project")
    (project / "agent-mesh.yaml").write_text("version: 1\n")  # not the active mesh: it changes nothing
    run([MCPWRAP, "exec", "--", "true"], project, home)  # makes the mesh's state
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [AGENT_MESH, "approvals", "list"], cwd=project, env=stripped(home), stderr=terminal,
            stdout=subprocess.PIPE, timeout=RUN_SECONDS, check=False,
        )  # fmt: skip
        os.close(terminal)
        said = b""
        while chunk := _read(controller):
            said += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0
    text = said.decode()
    assert f"config {mesh / 'agent-mesh.yaml'} (registered by agent-mesh use) · state {mesh / 'state'}" in text
    assert "note: ./agent-mesh.yaml is not the active mesh" in text
    assert b"config " not in done.stdout  # results only on stdout


def _read(fd: int) -> bytes:
    import os

    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the terminal's other end is closed and drained
        return b""


def test_serve_started_beside_an_agent_mesh_yaml_serves_and_registers_it_for_every_other_folder(home: Path) -> None:
    from tests.support.net import free_port
    from tests.support.proc import Proc

    mesh = folder(home, "mesh")
    (mesh / "agent-mesh.yaml").write_text(HELD)
    listen = ["--listen-proxy", f"127.0.0.1:{free_port()}", "--listen-control", f"127.0.0.1:{free_port()}"]
    with Proc([AGENT_MESH, "serve", *listen], cwd=mesh, env=stripped(home), inherit_env=False) as serve:
        serve.wait_for_line("Ctrl-C stops everything", timeout=RUN_SECONDS)
        assert f"using {mesh / 'agent-mesh.yaml'} (found in this folder)" in serve.output()
        assert f"{mesh / 'agent-mesh.yaml'} is the active mesh (was the built-in default)" in serve.output()
        shown = run([AGENT_MESH, "use", "--json"], folder(home, "elsewhere"), home)
        assert json.loads(shown.stdout)["config"] == str(mesh / "agent-mesh.yaml")
        assert json.loads(shown.stdout)["state_dir"] == str(mesh / "state")
        serve.popen.send_signal(2)
        assert serve.wait_exit(timeout=30) == 0


def test_agent_mesh_env_reads_only_the_named_agent_s_token_and_a_missing_one_makes_no_state(home: Path) -> None:
    mesh = folder(home, "mesh")
    (mesh / "agent-mesh.yaml").write_text(TIME % "allow")
    config = ["--config", str(mesh / "agent-mesh.yaml")]
    missing = run([AGENT_MESH, "env", "--agent", "pybot", *config], home, home)
    assert missing.returncode == 1
    assert b"agents.pybot.token: environment variable PYBOT_MESH_TOKEN is not set" in missing.stderr
    assert not (mesh / "state").exists()
    claude = run([AGENT_MESH, "env", "--agent", "claude", "--shell", "json", *config], home, home)
    assert claude.returncode == 0, claude.stderr  # pybot's secret is not claude's business
    assert json.loads(claude.stdout)["HTTPS_PROXY"].startswith("http://claude@127.0.0.1:")
