"""Session-wide isolation: nothing the tests start reads or writes the real user's cache, config or data dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # mcpwrap records checked configs under $XDG_CACHE_HOME (mcpwrap.checked); keep them per test session.
    # The registered mesh ($XDG_CONFIG_HOME/agent-mesh/active.json) and the built-in default's state
    # ($XDG_DATA_HOME/agent-mesh) are the user's too (policy.mesh.active).
    home = tmp_path_factory.mktemp("xdg-cache")
    names = {"XDG_CACHE_HOME": home, "XDG_CONFIG_HOME": home.with_name(home.name + "-config")}
    names["XDG_DATA_HOME"] = home.with_name(home.name + "-data")
    old = {name: os.environ.get(name) for name in names}
    os.environ.pop("AGENT_MESH_CONFIG", None)
    for name, folder in names.items():
        folder.mkdir(mode=0o700, exist_ok=True)
        os.environ[name] = str(folder)
    yield home
    for name, value in old.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def _private_mesh_registry(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test starts with no registered mesh and an empty built-in state: a `serve` in one test registers
    # its config, which must not become the policy of the next.
    folder = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(folder / "data"))
