"""The active mesh: one rule (flag, environment, registered mesh, built-in default) wherever a command runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy import ConfigError, load_config
from policy.mesh.active import (
    BUILT_IN,
    ENV_VAR,
    REGISTERED,
    RegistryError,
    data_dir,
    register,
    registry_path,
    resolve,
    unregister,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}


def test_with_nothing_registered_the_built_in_default_applies_with_state_in_the_user_s_data_dir(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert resolve(None, env).source == BUILT_IN
    assert data_dir({"HOME": str(tmp_path)}) == str(tmp_path / ".local" / "share" / "agent-mesh")
    assert data_dir({"XDG_DATA_HOME": str(tmp_path / "d")}) == str(tmp_path / "d" / "agent-mesh")
    loaded = load_config(None, {**env, "XDG_DATA_HOME": str(tmp_path / "d")})
    assert loaded.file == "<built-in default>"
    assert loaded.config.state_dir == str(tmp_path / "d" / "agent-mesh" / ".agent-mesh")


def test_flag_beats_environment_beats_registry(tmp_path: Path, env: dict[str, str]) -> None:
    register(str(tmp_path / "reg.yaml"), "test", env)
    assert (resolve(None, env).config, resolve(None, env).source) == (str(tmp_path / "reg.yaml"), REGISTERED)
    both = {**env, ENV_VAR: "/env.yaml"}
    assert resolve(None, both).config == "/env.yaml"
    assert resolve("flag.yaml", both).config == "flag.yaml"
    assert unregister(env) is True
    assert resolve(None, env).source == BUILT_IN


def test_registering_a_relative_path_stores_it_absolute_and_private(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert register("agent-mesh.yaml", "agent-mesh use", env) is None
    assert register("other.yaml", "agent-mesh use", env) == str(tmp_path / "agent-mesh.yaml")
    record = json.loads(Path(registry_path(env)).read_text())
    assert record["config"] == str(tmp_path / "other.yaml")
    assert os.stat(registry_path(env)).st_mode & 0o077 == 0


def test_a_relative_state_dir_resolves_against_the_config_file_s_folder_not_the_cwd(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "agent-mesh.yaml").write_text("version: 1\nstate_dir: .agent-mesh\n")
    register(str(tmp_path / "mesh" / "agent-mesh.yaml"), "test", env)
    monkeypatch.chdir("/")
    assert load_config(None, env).config.state_dir == str(tmp_path / "mesh" / ".agent-mesh")


@given(st.binary(max_size=200))
def test_a_damaged_registry_is_an_error_never_a_silent_fall_back_to_another_policy(
    tmp_path_factory: pytest.TempPathFactory, junk: bytes
) -> None:
    folder = tmp_path_factory.mktemp("reg")
    env = {"XDG_CONFIG_HOME": str(folder)}
    path = Path(registry_path(env))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junk)
    try:
        found = resolve(None, env)
    except RegistryError:
        with pytest.raises(ConfigError, match=r"registered mesh.*agent-mesh use"):
            load_config(None, env)
    else:  # only a well-formed record is accepted
        data = json.loads(junk)
        assert data["format"] == 1
        assert found.config is None or os.path.isabs(found.config)


def test_a_registry_other_users_can_write_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    register(str(tmp_path / "reg.yaml"), "test", env)
    os.chmod(registry_path(env), 0o666)
    with pytest.raises(RegistryError, match=r"other users can change the registered mesh \(mode 0666\)"):
        resolve(None, env)
