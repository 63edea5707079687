"""The `agent-mesh` command: core commands live here; adapters add theirs through the
`agent_mesh.commands` entry-point group, so the core never imports an adapter."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import click

from policy.cli.core import core_commands
from policy.cli.doctor import doctor
from policy.cli.state import state_commands
from policy.cli.traces import trace_commands


class _MeshGroup(click.Group):
    """Loads adapter commands lazily from entry points, on first lookup."""

    _loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group="agent_mesh.commands"):
            if ep.name in self.commands:
                continue
            try:
                cmd = ep.load()
            except ImportError as exc:
                click.echo(f"agent-mesh: command {ep.name!r} unavailable: {exc}", err=True)
                continue
            self.add_command(cmd, ep.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return sorted(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return self.commands.get(cmd_name)


@click.group(cls=_MeshGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="agent-mesh")
def cli() -> None:
    """agent-mesh: govern AI agents' tool calls (MCP, REST, CLI) with one policy.

    \b
    Example:
      agent-mesh check --config agent-mesh.yaml
      agent-mesh explain --agent claude --tool filesystem.write_file --args '{"path": "/etc/x"}'
    """


for _cmd in (*core_commands, doctor, *state_commands, *trace_commands):
    cli.add_command(_cmd)


def main() -> None:
    sys.exit(cli.main(standalone_mode=True))
