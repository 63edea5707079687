"""`mcpwrap install` on a client config an agent may have written (a project's `.mcp.json`, `.vscode/mcp.json`):
an entry the client runs differently from what install reads must never be reported as governed.

- `env` travels with the entry: `AGENT_MESH_CONFIG`, `XDG_CONFIG_HOME`/`XDG_DATA_HOME`/`HOME` pick another
  policy or state for mcpwrap, and `PYTHONPATH`, `PYTHONWARNINGS`, `LD_PRELOAD`, … run other code inside it;
- `type: http|sse` makes the client use the entry's `url` whatever its `command` says.
"""

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
HIJACKS = [
    "AGENT_MESH_CONFIG", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "HOME", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
    "PYTHONWARNINGS", "PYTHONUSERBASE", "PYTHONSAFEPATH", "PYTHONEXECUTABLE", "PYTHONBREAKPOINT",
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH",
]  # fmt: skip


def client(entry: dict[str, Any]) -> dict[str, Any]:
    return {"mcpServers": {"fs": entry}}


def wrapped_entry(**extra: Any) -> dict[str, Any]:
    data = client({"command": "npx", "args": ["-y", "server-filesystem", "/tmp"]})
    clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config=None)
    entry: dict[str, Any] = data["mcpServers"]["fs"]
    entry.update(extra)
    return entry


@pytest.mark.parametrize("variable", HIJACKS)
def test_an_entry_whose_env_chooses_the_policy_or_the_code_mcpwrap_runs_is_refused(variable: str) -> None:
    for entry in (
        {"command": "npx", "args": ["server-filesystem"], "env": {variable: "/tmp/evil"}},  # before install
        wrapped_entry(env={variable: "/tmp/evil"}),  # added to an entry installed before
    ):
        with pytest.raises(ValueError, match=f"server 'fs': its env sets {variable}"):
            clientconfig.wrap_servers(client(entry), MCPWRAP, agent="claude", config=None)


@given(st.sampled_from(HIJACKS), st.lists(st.booleans(), min_size=30, max_size=30))
def test_the_variables_are_recognised_in_any_case(variable: str, upper: list[bool]) -> None:
    spelled = "".join(c.upper() if u else c.lower() for c, u in zip(variable, upper, strict=False))
    with pytest.raises(ValueError, match="its env sets"):
        clientconfig.wrap_servers(
            client({"command": "npx", "env": {spelled: "x"}}), MCPWRAP, agent="claude", config=None
        )


def test_an_ordinary_env_is_kept_as_it_is() -> None:
    data = client({"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC", "GITHUB_TOKEN": "t"}})
    done = clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config=None)
    assert done.wrapped == ["fs"]
    assert data["mcpServers"]["fs"]["env"] == {"TZ": "UTC", "GITHUB_TOKEN": "t"}


@pytest.mark.parametrize("kind", ["http", "sse", "streamable-http", "HTTP", "ws"])
def test_an_entry_of_another_transport_is_skipped_even_with_a_command(kind: str) -> None:
    data = client({"type": kind, "url": "https://evil.example/mcp", "command": "npx", "args": ["x"]})
    before = copy.deepcopy(data)
    done = clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config=None)
    assert done.wrapped == []
    assert done.skipped == ["fs (not a stdio server: govern it through the proxy)"]
    assert data == before


def test_a_stdio_type_is_wrapped() -> None:
    data = client({"type": "stdio", "command": "npx", "args": ["x"]})
    assert clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config=None).wrapped == ["fs"]


def test_a_client_config_that_never_ends_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "mcp.json"
    os.mkfifo(fifo)  # opened for reading, it would wait for a writer forever
    with pytest.raises(ValueError, match="not a regular file"):
        clientconfig.load(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        clientconfig.load(link)


def test_a_client_config_larger_than_any_client_writes_is_refused_by_its_size(tmp_path: Path) -> None:
    huge = tmp_path / "mcp.json"
    with open(huge, "wb") as f:
        f.truncate(clientconfig.MAX_CLIENT_CONFIG_BYTES + 1)  # sparse: nothing to read, only its size
    with pytest.raises(ValueError, match="larger than"):
        clientconfig.load(huge)


def test_duplicate_keys_are_read_as_the_clients_read_them_the_last_one_wins(tmp_path: Path) -> None:
    # JSON.parse (every Node client) keeps the last of two equal keys: install must wrap that very entry
    path = tmp_path / "mcp.json"
    path.write_text(
        '{"mcpServers": {"fs": {"command": "safe"}, "fs": {"command": "npx", "args": ["evil"]}},'
        ' "mcpServers": {"fs": {"command": "npx", "args": ["evil"]}}}'
    )
    data = clientconfig.load(path).data
    done = clientconfig.wrap_servers(data, MCPWRAP, agent="claude", config=None)
    assert done.wrapped == ["fs"]
    assert data["mcpServers"]["fs"]["args"][-2:] == ["npx", "evil"]


def test_install_prints_server_names_with_escapes_as_visible_escapes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mcpwrap.cli import cli

    client = tmp_path / "mcp.json"
    hidden = "fs\r\x1b[2Kok\u202e"
    client.write_text(
        json.dumps({"mcpServers": {hidden: {"command": "npx"}, hidden + "2": {"type": "http", "url": "https://x"}}})
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, ["install", "--client-config", str(client), "--agent", "a"], env=env)
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\r", "\u202e"):
        assert raw not in result.output
    assert "fs\\x0d\\x1b[2Kok" in result.output
