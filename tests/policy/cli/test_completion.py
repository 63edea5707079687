"""Shell completion: click's `_AGENT_MESH_COMPLETE=<shell>_source agent-mesh` prints a script, and completes
command names without importing every command (the group lists them by name)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from policy.cli import cli


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F _agent_mesh_completion agent-mesh"), ("zsh", "#compdef agent-mesh"),
     ("fish", "complete --no-files --command agent-mesh")],
)  # fmt: skip
def test_each_shell_gets_a_completion_script(shell: str, marker: str) -> None:
    out = CliRunner().invoke(cli, [], prog_name="agent-mesh", env={"_AGENT_MESH_COMPLETE": f"{shell}_source"})
    assert out.exit_code == 0, out.output
    assert marker in out.stdout


def test_bash_completes_a_command_name_from_its_first_letters() -> None:
    env = {"_AGENT_MESH_COMPLETE": "bash_complete", "COMP_WORDS": "agent-mesh appr", "COMP_CWORD": "1"}
    out = CliRunner().invoke(cli, [], prog_name="agent-mesh", env=env)
    assert out.exit_code == 0, out.output
    assert out.stdout.split() == ["plain,approvals"]


def test_bash_completes_a_subcommand_and_its_options() -> None:
    env = {"_AGENT_MESH_COMPLETE": "bash_complete", "COMP_WORDS": "agent-mesh grants l", "COMP_CWORD": "2"}
    assert CliRunner().invoke(cli, [], prog_name="agent-mesh", env=env).stdout.split() == ["plain,list"]
    env = {"_AGENT_MESH_COMPLETE": "bash_complete", "COMP_WORDS": "agent-mesh approvals list --js", "COMP_CWORD": "3"}
    assert CliRunner().invoke(cli, [], prog_name="agent-mesh", env=env).stdout.split() == ["plain,--json"]
