"""`agent-mesh use`: show, register (only a config that loads) and forget the active mesh."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from policy.cli import cli
from policy.mesh.active import registry_path


def use(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["use", *args])
    return result.exit_code, result.output


def test_with_nothing_registered_use_shows_the_built_in_default_and_its_data_dir_state() -> None:
    code, out = use("--json")
    assert code == 0, out
    shown = json.loads(out)
    assert (shown["config"], shown["source"]) == (None, "built-in default")
    assert shown["state_dir"] == os.path.join(os.environ["XDG_DATA_HOME"], "agent-mesh", ".agent-mesh")


def test_a_config_that_does_not_load_is_not_registered(tmp_path: Path) -> None:
    bad = tmp_path / "agent-mesh.yaml"
    bad.write_text("version: 1\npolicies:\n  - name: x\n    rules: [{tools: [a], action: maybe}]\n")
    code, out = use(str(bad))
    assert code == 2
    assert "'maybe' is not one of allow, deny, human_approval" in out
    assert not Path(registry_path()).exists()


def test_use_registers_the_absolute_path_names_what_it_replaced_and_default_forgets_it(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nstate_dir: state-a\n")
    (tmp_path / "b.yaml").write_text("version: 1\n")
    assert use(str(tmp_path / "a.yaml"))[0] == 0
    code, out = use(str(tmp_path / "b.yaml"))
    assert code == 0
    assert f"registered {tmp_path / 'b.yaml'} as the active mesh (was {tmp_path / 'a.yaml'})" in out
    assert json.loads(use("--json")[1])["config"] == str(tmp_path / "b.yaml")
    code, out = use("--default")
    assert code == 0
    assert "the built-in default is the active mesh" in out
    assert json.loads(use("--json")[1])["config"] is None
