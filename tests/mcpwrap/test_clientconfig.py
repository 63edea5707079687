"""Client configs: every stdio server wrapped with flags, others left alone, brought up to date by a second
install, JSONC read, and undone exactly."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    done = clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config="/etc/mesh.yaml")
    assert done.wrapped == ["filesystem", "time", "git"]
    assert done.skipped == ["remote (not a stdio server: govern it through the proxy)"]
    fs = data["mcpServers"]["filesystem"]
    assert fs["command"] == "/opt/venv/bin/mcpwrap"
    assert fs["args"] == [
        "--agent", "claude", "--server", "filesystem", "--config", "/etc/mesh.yaml",
        "--", "npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp",
    ]  # fmt: skip
    assert data["mcpServers"]["time"]["env"] == {"TZ": "UTC"}
    assert data["projects"]["/repo"]["mcpServers"]["git"]["args"][-2:] == ["--", "mcp-server-git"]


def test_wrapping_twice_changes_nothing_and_undo_restores_the_original_exactly() -> None:
    data = copy.deepcopy(CLAUDE)
    clientconfig.wrap_servers(data, MCPWRAP, agent="a", config=None)
    once = copy.deepcopy(data)
    done = clientconfig.wrap_servers(data, MCPWRAP, agent="a", config=None)
    assert (done.wrapped, done.updated, data) == ([], {}, once)
    assert done.unchanged == ["filesystem", "time", "git"]
    assert clientconfig.unwrap_servers(data, MCPWRAP, CLAUDE) == ["filesystem", "time", "git"]
    assert data == CLAUDE  # git had no `args` key and has none again


def test_a_second_install_updates_the_agent_config_and_state_dir_and_says_what_changed() -> None:
    data = copy.deepcopy(CLAUDE)
    clientconfig.wrap_servers(data, ["/old/venv/bin/mcpwrap"], agent="a", config=None, state_dir="/old/state")
    done = clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config="/etc/mesh.yaml")
    assert done.wrapped == []
    assert done.updated["filesystem"] == [
        "agent a → claude",
        "config (the active mesh) → /etc/mesh.yaml",
        "state dir /old/state → (the config's)",
        "mcpwrap /old/venv/bin/mcpwrap → /opt/venv/bin/mcpwrap",
    ]
    fresh = copy.deepcopy(CLAUDE)
    clientconfig.wrap_servers(fresh, MCPWRAP, agent="claude", config="/etc/mesh.yaml")
    assert data == fresh  # the same entries as a first install with these settings
    clientconfig.unwrap_servers(data, MCPWRAP, CLAUDE)
    assert data == CLAUDE


def test_an_entry_wrapped_as_python_dash_m_mcpwrap_is_recognised_not_wrapped_twice() -> None:
    data = {"mcpServers": {"t": {"command": "/usr/bin/python3", "args": ["-m", "mcpwrap", "--agent", "a", "--", "t"]}}}
    done = clientconfig.wrap_servers(data, MCPWRAP, agent="a", config=None)
    assert done.updated == {"t": ["server (none) → t", "mcpwrap /usr/bin/python3 -m mcpwrap → /opt/venv/bin/mcpwrap"]}
    assert data["mcpServers"]["t"] == {"command": MCPWRAP[0], "args": ["--agent", "a", "--server", "t", "--", "t"]}


def test_a_vs_code_servers_table_is_wrapped_too() -> None:
    data = {"servers": {"mem": {"type": "stdio", "command": "node", "args": ["server.js"]}}}
    assert clientconfig.wrap_servers(data, MCPWRAP, agent="code", config=None).wrapped == ["mem"]


def test_args_that_are_not_strings_are_refused_precisely() -> None:
    with pytest.raises(ValueError, match="server 'x': args must be a list of strings"):
        clientconfig.wrap_servers({"mcpServers": {"x": {"command": "a", "args": "b"}}}, MCPWRAP, agent="a", config=None)


def test_a_file_that_is_not_json_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n "mcpServers": \n}\n')
    with pytest.raises(ValueError, match=r"c.json:3: not JSON or JSONC"):
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


VSCODE_JSONC = """{
  // servers for this workspace
  "servers": {
    "mem": {"type": "stdio", "command": "node", "args": ["server.js",],},  /* trailing commas */
  },
}
"""


def _install(tmp_path: Path, *extra: str, client: Path | None = None) -> tuple[Path, str]:
    from click.testing import CliRunner

    from mcpwrap.cli import cli

    if client is None:
        client = tmp_path / "mcp.json"
        client.write_text(json.dumps({"mcpServers": {"time": {"command": "mcp-server-time", "args": []}}}))
    result = CliRunner().invoke(cli, ["install", "--client-config", str(client), "--agent", "a", *extra])
    assert result.exit_code == 0, result.output
    return client, result.output


def _args(client: Path, name: str = "time") -> list[str]:
    data = json.loads(client.read_text())
    table = data.get("mcpServers") or data["servers"]
    args: list[str] = table[name]["args"]
    return args


def test_install_on_the_built_in_default_pins_nothing_so_the_entry_follows_the_active_mesh(tmp_path: Path) -> None:
    client, out = _install(tmp_path)
    assert "--config" not in _args(client)
    assert "--state-dir" not in _args(client)
    assert "the active mesh (now the built-in default" in out


def test_install_pins_the_registered_mesh_by_absolute_path_whatever_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy.mesh.active import register

    (tmp_path / "agent-mesh.yaml").write_text("version: 1\n")
    register(str(tmp_path / "agent-mesh.yaml"), "test")
    monkeypatch.chdir("/")
    client, _ = _install(tmp_path)
    assert _args(client)[_args(client).index("--config") + 1] == str(tmp_path / "agent-mesh.yaml")
    assert "--state-dir" not in _args(client)


def test_install_again_with_a_config_and_another_agent_updates_each_entry_and_prints_the_change(
    tmp_path: Path,
) -> None:
    client, _ = _install(tmp_path)
    config = tmp_path / "agent-mesh.yaml"
    config.write_text("version: 1\n")
    _, out = _install(tmp_path, "--config", str(config), "--agent", "b", client=client)
    assert f"updated time: agent a → b; config (the active mesh) → {config}" in out
    assert _args(client)[_args(client).index("--agent") + 1] == "b"
    _, again = _install(tmp_path, "--config", str(config), "--agent", "b", client=client)
    assert "up to date: time" in again


def test_a_vs_code_jsonc_file_is_installed_and_undone_and_says_its_comments_are_gone(tmp_path: Path) -> None:
    client = tmp_path / "mcp.json"
    client.write_text(VSCODE_JSONC)
    _, out = _install(tmp_path, client=client)
    assert "wrapped 1 server(s)" in out
    assert "was JSONC" in out
    assert "comments and trailing commas are gone" in out
    assert _args(client, "mem")[-3:] == ["--", "node", "server.js"]
    backup = client.with_name(client.name + clientconfig.BACKUP_SUFFIX)
    assert backup.read_text() == VSCODE_JSONC
    _install(tmp_path, "--undo", client=client)
    assert json.loads(client.read_text()) == {
        "servers": {"mem": {"type": "stdio", "command": "node", "args": ["server.js"]}}
    }


_word = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_entry = st.fixed_dictionaries(
    {"command": _word.filter(lambda c: c and os.path.basename(c) != "mcpwrap" and not c.startswith("python"))},
    optional={
        "args": st.lists(st.one_of(_word, st.sampled_from(["--", "--agent", "--config", "--server=x", "run"]))),
        "env": st.dictionaries(_word, _word, max_size=2),
        "type": st.just("stdio"),
    },
)
_name = st.one_of(_word, st.sampled_from(["--", "-", "", "--config", "--agent=x"]))  # names that look like flags
_client = st.fixed_dictionaries(
    {"mcpServers": st.dictionaries(_name, _entry, max_size=4)},
    optional={"servers": st.dictionaries(_name, _entry, max_size=2)},
)


@given(_client, st.sampled_from(["a", "--", "-x", ""]), st.sampled_from([None, "/etc/mesh.yaml", "-c.yaml"]))
def test_any_client_config_comes_back_exactly_after_install_reinstall_and_undo(
    original: dict[str, Any], agent: str, config: str | None
) -> None:
    data = copy.deepcopy(original)
    clientconfig.wrap_servers(data, ["/old/mcpwrap"], agent="other", config="/old.yaml", state_dir="/s")
    done = clientconfig.wrap_servers(data, MCPWRAP, agent=agent, config=config)
    fresh = copy.deepcopy(original)
    clientconfig.wrap_servers(fresh, MCPWRAP, agent=agent, config=config)
    assert data == fresh  # an update gives what a first install with these settings gives
    assert clientconfig.wrap_servers(data, MCPWRAP, agent=agent, config=config).changed is False
    assert sorted(done.updated) == sorted({*original["mcpServers"], *original.get("servers", {})})
    clientconfig.unwrap_servers(data, MCPWRAP, original)
    assert data == original


def test_install_beside_an_agent_mesh_yaml_that_is_not_the_active_mesh_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "agent-mesh.yaml").write_text("version: 1\n")
    monkeypatch.chdir(tmp_path)
    client, out = _install(tmp_path)
    assert "--config" not in _args(client)  # the folder does not choose the policy
    assert "note: ./agent-mesh.yaml is not the active mesh; pass --config agent-mesh.yaml" in out
    _, named = _install(tmp_path, "--config", "agent-mesh.yaml", client=client)
    assert "note:" not in named
    assert _args(client)[_args(client).index("--config") + 1] == str(tmp_path / "agent-mesh.yaml")
