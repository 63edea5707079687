"""Secrets in the config are read by the surface that uses them, never when the config loads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.proxy_auth import AgentAuth
from policy import ConfigError, compile_policies, load_config_text
from policy.core.secrets import LAZY_PATHS, SecretMissing, SecretRef, is_lazy, reveal

CONFIG = """version: 1
agents:
  pybot:
    token: {$env: PYBOT_MESH_TOKEN}
  claude:
    token: {$file: secrets/claude.token}
control:
  token: {$env: MESH_OPERATOR_TOKEN}
approval:
  notify_url: {$env: NOTIFY_URL}
  notify_secret: {$file: secrets/notify}
supervisor:
  url: {$env: SUPERVISOR_URL}
"""


class NoLookups(Mapping[str, str]):
    """An environment that fails the test on any read: loading must not look at secrets."""

    def __getitem__(self, name: str) -> str:
        raise AssertionError(f"the config load read ${name}")

    def __contains__(self, name: object) -> bool:
        raise AssertionError(f"the config load asked for ${name}")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _load(tmp_path: Path, text: str = CONFIG, env: Mapping[str, str] | None = None):  # type: ignore[no-untyped-def]
    return load_config_text(text, str(tmp_path / "agent-mesh.yaml"), str(tmp_path), NoLookups() if env is None else env)


def test_a_config_full_of_secrets_loads_and_compiles_without_reading_one(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    compile_policies(loaded)
    token = loaded.config.agents["pybot"].token
    assert isinstance(token, SecretRef)
    assert repr(token) == "SecretRef($env: PYBOT_MESH_TOKEN)"
    dumped = loaded.config.model_dump(mode="json")
    assert dumped["agents"]["claude"]["token"] == {"$file": "secrets/claude.token"}  # never the value


def test_the_policy_hash_does_not_depend_on_what_the_environment_holds(tmp_path: Path) -> None:
    one = compile_policies(_load(tmp_path, env={})).policy_hash
    full = {"PYBOT_MESH_TOKEN": "a", "MESH_OPERATOR_TOKEN": "b", "NOTIFY_URL": "c", "SUPERVISOR_URL": "d"}
    assert compile_policies(_load(tmp_path, env=full)).policy_hash == one


def test_a_missing_agent_token_is_named_by_key_file_and_line_when_the_proxy_reads_it(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    with pytest.raises(SecretMissing) as caught:
        AgentAuth.from_config(loaded.config, {})
    assert str(caught.value) == (
        f"{tmp_path / 'agent-mesh.yaml'}:4: agents.pybot.token: environment variable PYBOT_MESH_TOKEN is not set"
    )
    assert caught.value.variable == "PYBOT_MESH_TOKEN"


def test_file_secrets_are_read_relative_to_the_config_and_must_be_private(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    token = tmp_path / "secrets" / "claude.token"
    token.write_text("s3cret-claude\n")
    token.chmod(0o644)
    loaded = _load(tmp_path)
    env = {"PYBOT_MESH_TOKEN": "s3cret-bot"}
    with pytest.raises(
        SecretMissing, match=r"agents\.claude\.token: secret file .* is open to other users .*chmod 600"
    ):
        AgentAuth.from_config(loaded.config, env)
    token.chmod(0o600)
    auth = AgentAuth.from_config(loaded.config, env)
    assert auth.tokens == {"pybot": "s3cret-bot", "claude": "s3cret-claude"}


def test_a_missing_secret_file_says_which(tmp_path: Path) -> None:
    ref = _load(tmp_path).config.approval.notify_secret
    assert isinstance(ref, SecretRef)
    with pytest.raises(
        SecretMissing, match=r":11: approval\.notify_secret: secret file .*secrets/notify does not exist"
    ):
        reveal(ref)


def test_env_outside_the_secret_keys_is_still_resolved_when_the_config_loads(tmp_path: Path) -> None:
    text = "version: 1\nservers:\n  api:\n    base_url: {$env: API_URL}\n"
    assert _load(tmp_path, text, {"API_URL": "https://api.test"}).config.servers["api"].base_url == "https://api.test"
    with pytest.raises(ConfigError, match=r":4: servers\.api\.base_url: environment variable API_URL is not set"):
        _load(tmp_path, text, {})


@pytest.mark.parametrize("bad", ["{$env: ''}", "{$env: [a]}", "{$file: 3}"])
def test_a_reference_without_a_name_is_a_config_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r":3: agents\.a\.token: \$(env|file) takes"):
        _load(tmp_path, f"version: 1\nagents:\n  a: {{token: {bad}}}\n")


@given(st.lists(st.sampled_from(["agents", "control", "token", "x", "*", "url", "supervisor", 0]), max_size=4))
def test_only_the_listed_key_paths_are_lazy(path: list[str | int]) -> None:
    expected = any(len(p) == len(path) and all(a in ("*", b) for a, b in zip(p, path, strict=True)) for p in LAZY_PATHS)
    assert is_lazy(tuple(path)) == expected
