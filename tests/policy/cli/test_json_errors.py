"""Every command with `--json` reports a failure as JSON on stdout, with the exit status it has without it."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from policy.cli import cli
from policy.cli.errors import error_code, wants_json

try:
    from mcpwrap.cli import cli as mcpwrap_cli
except ImportError:  # pragma: no cover - mcpwrap ships in the same distribution
    mcpwrap_cli = None


def json_commands(group: click.Group, path: tuple[str, ...]) -> list[tuple[click.Group, tuple[str, ...]]]:
    """(root group, command path) of every command that has a --json flag."""
    found: list[tuple[click.Group, tuple[str, ...]]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        if isinstance(cmd, click.Group):
            found += json_commands(cmd, (*path, name))
        elif any("--json" in p.opts for p in cmd.params if isinstance(p, click.Option)):
            found.append((group, (*path, name)))
    return found


ROOTS = [(cli, "agent-mesh")] + ([(mcpwrap_cli, "mcpwrap")] if mcpwrap_cli is not None else [])
JSON_COMMANDS = [(root, prog, path) for root, prog in ROOTS for _, path in json_commands(root, ())]


def error_of(stdout: str) -> dict[str, str]:
    doc = json.loads(stdout)
    assert set(doc) <= {"error", "problems"}  # `check --json` lists every problem beside the uniform error
    assert set(doc["error"]) == {"code", "message"}
    return dict(doc["error"])


def test_the_json_commands_were_found() -> None:
    names = {" ".join(path) for _, prog, path in JSON_COMMANDS if prog == "agent-mesh"}
    assert {"check", "approvals list", "approvals approve", "grants list", "memory forget"} <= names


@pytest.mark.parametrize(
    ("root", "prog", "path"), JSON_COMMANDS, ids=[f"{prog} {' '.join(path)}" for _, prog, path in JSON_COMMANDS]
)
def test_a_wrong_command_line_with_json_is_a_json_error(root: click.Group, prog: str, path: tuple[str, ...]) -> None:
    out = CliRunner().invoke(root, [*path, "--json", "--no-such-option"], prog_name=prog)
    error = error_of(out.stdout)
    assert "--no-such-option" in error["message"]
    # a command that hands unknown options to the program it runs (discover) fails there, with status 1
    assert (out.exit_code, error["code"]) in {(2, "usage_error"), (1, "error")}


def test_a_wrong_config_is_a_json_config_error_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nbogus: 1\n")
    out = CliRunner().invoke(cli, ["check", "--config", str(bad), "--json"])
    assert out.exit_code == 2
    error = error_of(out.stdout)
    assert error["code"] == "config_error"
    assert "bad.yaml:2" in error["message"]
    assert "bogus" in error["message"]


def test_approving_an_unknown_approval_is_a_json_conflict_with_exit_status_1(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n")
    out = CliRunner().invoke(cli, ["approvals", "approve", "abcdef12", "--config", str(config), "--json"])
    assert out.exit_code == 1
    assert error_of(out.stdout)["code"] == "conflict"


def test_without_json_errors_stay_click_text_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nbogus: 1\n")
    out = CliRunner().invoke(cli, ["check", "--config", str(bad)])
    assert out.exit_code == 2
    assert out.stdout == ""
    assert "bad.yaml:2: bogus" in out.stderr


def test_a_json_flag_after_the_double_dash_belongs_to_the_wrapped_command() -> None:
    assert wants_json(["approvals", "list", "--json"])
    assert not wants_json(["--agent", "x", "--", "server", "--json"])
    assert not wants_json(["check"])


def test_error_codes_name_what_went_wrong() -> None:
    assert error_code(click.UsageError("x")) == "usage_error"
    assert error_code(click.Abort()) == "aborted"
    assert error_code(click.ClickException("x")) == "error"


def test_a_command_that_succeeds_with_json_prints_its_own_json(tmp_path: Path) -> None:
    config = tmp_path / "agent-mesh.yaml"
    config.write_text(f"version: 1\nstate_dir: {tmp_path / 'state'}\n")
    out = CliRunner().invoke(cli, ["check", "--config", str(config), "--json"])
    assert out.exit_code == 0, out.output
    assert "error" not in json.loads(out.stdout)


def test_a_wrong_option_of_the_group_itself_with_json_is_a_json_usage_error() -> None:
    out = CliRunner().invoke(cli, ["--no-such-option", "--json"])
    assert out.exit_code == 2
    assert error_of(out.stdout)["code"] == "usage_error"
