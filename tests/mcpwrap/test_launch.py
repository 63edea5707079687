"""mcpwrap.launch.parse_run: the early path takes only the plain default command; anything else goes to click."""

from __future__ import annotations

import click
import pytest

from mcpwrap.cli import cli
from mcpwrap.launch import SUBCOMMANDS, parse_run


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--", "srv", "-x"], (["srv", "-x"], None, None, None, None)),
        (["srv", "--flag"], (["srv", "--flag"], None, None, None, None)),
        (["run", "--agent", "a", "--", "srv"], (["srv"], None, "a", None, None)),
        (
            ["--config=c.yaml", "--agent", "a", "--server", "s", "--state-dir", "d", "--", "srv", "--config", "x"],
            (["srv", "--config", "x"], "c.yaml", "a", "s", "d"),
        ),
    ],
)
def test_the_default_command_is_parsed(argv: list[str], expected: tuple[object, ...]) -> None:
    got = parse_run(argv)
    assert got is not None
    assert (got.command, got.config_path, got.agent, got.server, got.state_dir) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["-h"],
        ["--version"],
        ["exec", "--", "git", "status"],
        ["shims", "--dir", "d", "git"],
        ["--agent", "a", "--"],  # no command
        ["--agent"],  # no value
        ["--agent", "a", "--agent", "b", "--", "srv"],  # repeated
        ["--agent=", "--", "srv"],  # empty value
        ["--verbose", "--", "srv"],  # unknown option
    ],
)
def test_anything_else_is_left_to_click(argv: list[str]) -> None:
    assert parse_run(argv) is None


def test_the_early_parser_knows_every_subcommand_and_every_option_of_run() -> None:
    assert set(cli.commands) == {*SUBCOMMANDS, "run"}
    run = cli.commands["run"]
    options = {opt for p in run.params if isinstance(p, click.Option) for opt in p.opts}
    assert options == {"--config", "--agent", "--server", "--state-dir"}
