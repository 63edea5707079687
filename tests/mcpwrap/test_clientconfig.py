"""Client configs: every stdio server wrapped with flags, others left alone, and undone exactly."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from mcpwrap import clientconfig

MCPWRAP = ["/opt/venv/bin/mcpwrap"]

CLAUDE = {
    "mcpServers": {
        "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
        "remote": {"type": "http", "url": "https://example.com/mcp"},
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
    },
    "projects": {"/repo": {"mcpServers": {"git": {"command": "mcp-server-git"}}}},
    "theme": "dark",
}


def test_every_stdio_server_runs_under_mcpwrap_with_its_name_and_agent_as_flags() -> None:
    data = copy.deepcopy(CLAUDE)
    wrapped, skipped = clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config="/etc/mesh.yaml")
    assert wrapped == ["filesystem", "time", "git"]
    assert skipped == ["remote (not a stdio server: govern it through the proxy)"]
    fs = data["mcpServers"]["filesystem"]
    assert fs["command"] == "/opt/venv/bin/mcpwrap"
    assert fs["args"] == [
        "--agent", "claude", "--server", "filesystem", "--config", "/etc/mesh.yaml",
        "--", "npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp",
    ]  # fmt: skip
    assert data["mcpServers"]["time"]["env"] == {"TZ": "UTC"}
    assert data["projects"]["/repo"]["mcpServers"]["git"]["args"][-2:] == ["--", "mcp-server-git"]


def test_wrapping_twice_changes_nothing_and_undo_restores_the_original() -> None:
    data = copy.deepcopy(CLAUDE)
    clientconfig.wrap_servers(data, MCPWRAP, agent="a", config=None)
    once = copy.deepcopy(data)
    wrapped, skipped = clientconfig.wrap_servers(data, MCPWRAP, agent="a", config=None)
    assert (wrapped, data) == ([], once)
    assert "filesystem (already under mcpwrap)" in skipped
    assert clientconfig.unwrap_servers(data, MCPWRAP) == ["filesystem", "time", "git"]
    expected = copy.deepcopy(CLAUDE)
    expected["projects"]["/repo"]["mcpServers"]["git"]["args"] = []
    assert data == expected


def test_a_vs_code_servers_table_is_wrapped_too() -> None:
    data = {"servers": {"mem": {"type": "stdio", "command": "node", "args": ["server.js"]}}}
    assert clientconfig.wrap_servers(data, MCPWRAP, agent="code", config=None)[0] == ["mem"]


def test_args_that_are_not_strings_are_refused_precisely() -> None:
    with pytest.raises(ValueError, match="server 'x': args must be a list of strings"):
        clientconfig.wrap_servers({"mcpServers": {"x": {"command": "a", "args": "b"}}}, MCPWRAP, agent="a", config=None)


def test_a_file_that_is_not_json_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n "mcpServers": \n}\n')
    with pytest.raises(ValueError, match=r"c.json:3: not JSON"):
        clientconfig.read_config(path)


def test_the_backup_is_made_once_and_the_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(CLAUDE))
    path.chmod(0o600)
    first = clientconfig.backup(path)
    clientconfig.write_config(path, {"changed": True})
    clientconfig.backup(path)
    assert json.loads(first.read_text()) == CLAUDE
    assert path.stat().st_mode & 0o777 == 0o600


def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> list[str]:
    from click.testing import CliRunner

    from mcpwrap.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENT_MESH_CONFIG", raising=False)
    client = tmp_path / "mcp.json"
    client.write_text(json.dumps({"mcpServers": {"time": {"command": "mcp-server-time", "args": []}}}))
    result = CliRunner().invoke(cli, ["install", "--client-config", str(client), "--agent", "a", *extra])
    assert result.exit_code == 0, result.output
    args: list[str] = json.loads(client.read_text())["mcpServers"]["time"]["args"]
    return args


def test_install_on_the_built_in_default_pins_its_state_dir_so_any_cwd_shares_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _install(tmp_path, monkeypatch)
    assert "--config" not in args
    assert args[args.index("--state-dir") + 1] == str(tmp_path / ".agent-mesh")


def test_install_pins_the_config_file_found_in_the_current_folder_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "agent-mesh.yaml").write_text("version: 1\n")
    args = _install(tmp_path, monkeypatch)
    assert args[args.index("--config") + 1] == str(tmp_path / "agent-mesh.yaml")
    assert "--state-dir" not in args
