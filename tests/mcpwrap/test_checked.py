"""mcpwrap.checked: a record of a clean config check matches only while every input the check read is unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcpwrap.checked import Checked, RecordingEnv, cache_dir, policy_folder, recall, remember

CONFIG = "version: 1\nstate_dir: {state}\npolicy_dir: policies\nproxy: {{listen: '127.0.0.1:9999'}}\n"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text("name: a\nagent: '*'\nrules: []\n")
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state"))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "TOKEN": "s3cret"}
    return config, env


def _remember(config: Path, env: dict[str, str], state_dir: str | None = None) -> None:
    folder = policy_folder(str(config), "policies")
    remember(str(config), state_dir, folder, ["TOKEN"], Checked(listen="127.0.0.1:9999"), env)


def test_nothing_is_recalled_before_a_check_was_remembered(setup: tuple[Path, dict[str, str]]) -> None:
    config, env = setup
    assert recall(str(config), None, env) is None


def test_a_remembered_check_is_recalled_with_its_facts(setup: tuple[Path, dict[str, str]]) -> None:
    config, env = setup
    _remember(config, env)
    got = recall(str(config), None, env)
    assert got is not None
    assert got.listen == "127.0.0.1:9999"
    # The record holds no secret, only names and hashes.
    record = next(Path(cache_dir(env)).iterdir()).read_text()
    assert "s3cret" not in record
    assert oct(next(Path(cache_dir(env)).iterdir()).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "change",
    ["config bytes", "policy file edited", "policy file added", "env value", "env unset", "other state dir", "cwd"],
)
def test_any_changed_input_misses(
    setup: tuple[Path, dict[str, str]], change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, env = setup
    _remember(config, env)
    state_dir = None
    if change == "config bytes":
        config.write_text(config.read_text() + "# edited\n")
    elif change == "policy file edited":
        (tmp_path / "policies" / "a.yaml").write_text("name: a\nagent: '*'\nrules: [{tools: ['*'], action: allow}]\n")
    elif change == "policy file added":
        (tmp_path / "policies" / "b.yml").write_text("name: b\nagent: '*'\nrules: []\n")
    elif change == "env value":
        env["TOKEN"] = "other"
    elif change == "env unset":
        del env["TOKEN"]
    elif change == "other state dir":
        state_dir = str(tmp_path / "elsewhere")
    elif change == "cwd":
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
    assert recall(str(config), state_dir, env) is None


def test_a_policy_file_that_is_not_yaml_does_not_matter(setup: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = setup
    _remember(config, env)
    (tmp_path / "policies" / "README.md").write_text("notes")
    assert recall(str(config), None, env) is not None


def test_the_built_in_default_s_record_stops_matching_once_a_mesh_is_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy.mesh.active import register

    monkeypatch.chdir(tmp_path)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    remember(None, None, None, [], Checked(listen="127.0.0.1:8080"), env)
    assert recall(None, None, env) is not None
    (tmp_path / "agent-mesh.yaml").write_text("version: 1\n")  # a file beside mcpwrap changes nothing
    assert recall(None, None, env) is not None
    register(str(tmp_path / "agent-mesh.yaml"), "test", env)  # the registered mesh does
    assert recall(None, None, env) is None


def test_a_corrupt_or_unwritable_cache_only_means_no_match(setup: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    config, env = setup
    _remember(config, env)
    for record in Path(cache_dir(env)).iterdir():
        record.write_text("{not json")
    assert recall(str(config), None, env) is None
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should be")
    env["XDG_CACHE_HOME"] = str(blocked)
    _remember(config, env)  # no error
    assert recall(str(config), None, env) is None


def test_the_recording_environment_notes_every_name_looked_up() -> None:
    env = RecordingEnv({"A": "1"})
    assert "A" in env
    assert env.get("B") is None
    assert env["A"] == "1"
    assert env.names == {"A", "B"}
    assert dict(env) == {"A": "1"}
    assert os.environ is not env


def test_the_cache_keeps_the_most_recently_used_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mcpwrap.checked.MAX_RECORDS", 3)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}  # no registry
    for i in range(5):
        (tmp_path / f"d{i}").mkdir()
        monkeypatch.chdir(tmp_path / f"d{i}")
        remember(None, None, None, [], Checked(listen="127.0.0.1:8080"), env)
        for n, record in enumerate(sorted(Path(cache_dir(env)).iterdir(), key=lambda p: p.stat().st_mtime_ns)):
            os.utime(record, ns=(n * 10**9, n * 10**9))  # distinct times, whatever the clock's resolution
        if i == 2:  # d0 is used again after d1 and d2 were written: it outlives both
            monkeypatch.chdir(tmp_path / "d0")
            assert recall(None, None, env) is not None
    kept = []
    for i in range(5):
        monkeypatch.chdir(tmp_path / f"d{i}")
        kept.append(recall(None, None, env) is not None)
    assert kept == [True, False, False, True, True]
