"""The `agent-mesh` command: core commands live here; adapters add theirs through the
`agent_mesh.commands` entry-point group, so the core never imports an adapter.

Every command is imported only when it is run (or when help lists them all): `agent-mesh approvals list`
must not pay for mitmproxy, uvicorn or the trace tooling. That keeps start-up near 0.2 s (`bench/cli.py`).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from policy.cli.errors import JsonErrors

# name -> "module:attribute". A new core command is one line here (kept sorted by name).
CORE_COMMANDS: dict[str, str] = {
    "approvals": "policy.cli.state:approvals",
    "check": "policy.cli.core:check",
    "config": "policy.cli.core:config_group",
    "doctor": "policy.cli.doctor:doctor",
    "explain": "policy.cli.core:explain",
    "grants": "policy.cli.statecmds:grants",
    "memory": "policy.cli.statecmds:memory",
    "pins": "policy.cli.pins:pins",
    "replay": "policy.cli.traces:replay_cmd",
    "resume": "policy.cli.stop:resume_cmd",
    "status": "policy.cli.status:status",
    "stop": "policy.cli.stop:stop_cmd",
    "test": "policy.cli.core:test_cmd",
    "traces": "policy.cli.traces:traces_group",
    "use": "policy.cli.use:use",
}

ENTRY_POINT_GROUP = "agent_mesh.commands"


def _import(target: str) -> click.Command:
    module, _, attr = target.partition(":")
    cmd = getattr(importlib.import_module(module), attr)
    if not isinstance(cmd, click.Command):
        raise TypeError(f"{target} is not a click command")
    return cmd


class _MeshGroup(JsonErrors):
    """Resolves a command by name on first lookup: core commands from CORE_COMMANDS, adapter commands from
    entry points (importlib.metadata itself is only imported when a name is not a core command)."""

    _adapter_targets: dict[str, str] | None = None

    def _adapters(self) -> dict[str, str]:
        if self._adapter_targets is None:
            from importlib.metadata import entry_points

            self._adapter_targets = {
                ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in CORE_COMMANDS
            }
        return self._adapter_targets

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *CORE_COMMANDS, *self._adapters()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = CORE_COMMANDS.get(cmd_name) or self._adapters().get(cmd_name)
        if target is None:
            return None
        try:
            cmd = _import(target)
        except ImportError as exc:
            if cmd_name in CORE_COMMANDS:
                raise
            click.echo(f"agent-mesh: command {cmd_name!r} unavailable: {exc}", err=True)
            return None
        self.add_command(cmd, cmd_name)
        return cmd


@click.group(cls=_MeshGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="agent-mesh")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """agent-mesh: govern AI agents' tool calls (MCP, REST, CLI) with one policy.

    \b
    Example:
      agent-mesh check --config agent-mesh.yaml
      agent-mesh explain --agent claude --tool filesystem.write_file --args '{"path": "/etc/x"}'
    """
    if os.environ.get("NO_COLOR"):
        ctx.color = False  # every click.echo of every command drops escape codes (https://no-color.org)
    elif os.environ.get("FORCE_COLOR"):
        ctx.color = True  # click keeps the colours policy.cli.look paints, even into a pipe


def main() -> None:
    sys.exit(cli.main(standalone_mode=True))
