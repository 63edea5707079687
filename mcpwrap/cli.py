"""The `mcpwrap` command: wrap a stdio MCP server (the default), `exec` a CLI, make `shims`, `install`.

`mcpwrap [OPTIONS] -- CMD ARGS…` needs no subcommand name, so client configs stay short.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from mcpwrap.proxy_session import DEFAULT_AGENT, new_session_id
from mcpwrap.startup import setup_logging
from policy.cli.errors import JsonErrors


class _DefaultToRun(JsonErrors):
    """A group whose default subcommand is `run`: `mcpwrap --agent x -- server` means `mcpwrap run …`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _config_option(f: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        metavar="FILE",
        help="Config file (default: $AGENT_MESH_CONFIG, else the registered mesh, else the built-in default).",
    )(f)


def _state_dir_option(f: Any) -> Any:
    return click.option(
        "--state-dir",
        metavar="DIR",
        help="Use this state dir instead of the config's (the default's: $XDG_DATA_HOME/agent-mesh/.agent-mesh).",
    )(f)


def _agent_option(f: Any) -> Any:
    return click.option(
        "--agent",
        default=DEFAULT_AGENT,
        show_default=True,
        help="Who is calling: the agent name policies match (a flag, since clients strip the environment).",
    )(f)


@click.group(cls=_DefaultToRun, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="agent-mesh")
def cli() -> None:
    """mcpwrap: govern stdio MCP servers and CLI binaries with agent-mesh policies.

    \b
    Example:
      mcpwrap --agent claude --server filesystem -- npx @modelcontextprotocol/server-filesystem /tmp
      mcpwrap exec --agent claude -- git push --force
      mcpwrap shims --dir ~/.agent-mesh/shims git kubectl
      mcpwrap install --client-config ~/.cursor/mcp.json --agent cursor
    """


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_config_option
@_agent_option
@click.option("--server", default=None, help="The server's name in policies (default: the name it reports).")
@_state_dir_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    config_path: str | None, agent: str, server: str | None, state_dir: str | None, command: tuple[str, ...]
) -> None:
    """Run a stdio MCP server with every tools/call judged (the default command).

    \b
    Example:
      mcpwrap --agent claude --server time -- mcp-server-time --local-timezone UTC
      mcpwrap run --config agent-mesh.yaml -- npx @modelcontextprotocol/server-everything stdio
    """
    from mcpwrap.startup import check_then_serve

    check_then_serve(command, config_path=config_path, state_dir=state_dir, agent=agent, server=server)


@cli.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_config_option
@_agent_option
@_state_dir_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(config_path: str | None, agent: str, state_dir: str | None, command: tuple[str, ...]) -> None:
    """Judge a command line as tool BIN.SUBCOMMAND, then run it, or refuse with exit status 126.

    \b
    The command replaces mcpwrap (no shell): its exit status, signals and terminal are its own.
    A command waiting for approval is held here, with the approval id shown on stderr.
    \b
    Example:
      mcpwrap exec --agent claude -- git -C repo push --force     # git.push, args.argv has --force
      mcpwrap exec -- kubectl -n prod delete pod web-1           # kubectl.delete
    """
    from mcpwrap.execute import REFUSED_STATUS, become, prepare_exec
    from mcpwrap.gateway import load, open_gate

    setup_logging()
    gate = open_gate(load(config_path, state_dir))

    async def main() -> tuple[int, str | None]:
        try:
            return await prepare_exec(gate, command, agent=agent, session_id=new_session_id())
        finally:
            await gate.aclose()

    try:
        status, binary = asyncio.run(main())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if binary is None:
        sys.exit(status)
    try:
        become(binary, command)
    except OSError as exc:
        click.echo(f"mcpwrap: cannot run {binary}: {exc.strerror}", err=True)
        sys.exit(REFUSED_STATUS)


@cli.command()
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the shims; put it first on the agent's PATH.")  # fmt: skip
@_config_option
@_agent_option
@click.option("--json", "as_json", is_flag=True, help="Print the shims written as JSON.")
@click.argument("binaries", nargs=-1, required=True)
def shims(directory: Path, config_path: str | None, agent: str, as_json: bool, binaries: tuple[str, ...]) -> None:
    """Write PATH shims so that every run of BIN goes through `mcpwrap exec`.

    \b
    Example:
      mcpwrap shims --dir ~/.agent-mesh/shims --agent claude git kubectl
      PATH=~/.agent-mesh/shims:$PATH claude      # the agent's git is now governed
    """
    from mcpwrap.gateway import pinned_settings
    from mcpwrap.shims import exec_command, write_shims

    config, state_dir = pinned_settings(config_path)  # refuses a config that would fail on every run
    try:
        written = write_shims(directory, binaries, exec_command(config=config, agent=agent, state_dir=state_dir))
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"dir": str(directory.absolute()), "shims": [str(p) for p in written]}))
        return
    for shim in written:
        click.echo(f"wrote {shim}")
    click.echo(f"put {directory.absolute()} first on the agent's PATH")


@cli.command()
@click.option("--client-config", "client_config", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The client's MCP config (mcpServers of Claude, Cursor; VS Code, JSONC too).")  # fmt: skip
@_config_option
@_agent_option
@click.option("--undo", is_flag=True, help="Put every server back as it was (the backup stays).")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def install(client_config: Path, config_path: str | None, agent: str, undo: bool, as_json: bool) -> None:
    """Rewrite an MCP client config so every stdio server runs under mcpwrap (a backup is kept).

    Each entry gets the active mesh's config by absolute path (none for the built-in default: the entry
    then follows the mesh `agent-mesh serve` or `agent-mesh use` registers). Run it again after changing
    the agent or the mesh: entries that differ are updated, and what changed is printed per server.
    A JSONC file (comments, trailing commas) is read; it is written back as plain JSON, the original
    staying in the backup.

    \b
    Example:
      mcpwrap install --client-config ~/.cursor/mcp.json --agent cursor --config ~/agent-mesh.yaml
      mcpwrap install --client-config .vscode/mcp.json --agent copilot
      mcpwrap install --client-config ~/.cursor/mcp.json --undo
    """
    from mcpwrap import clientconfig
    from mcpwrap.gateway import pinned_settings
    from mcpwrap.shims import mcpwrap_command
    from policy.mesh.active import resolve, stray_config_note

    command = mcpwrap_command()
    config: str | None = None
    note: str | None = None
    try:
        parsed = clientconfig.load(client_config)
        saved = clientconfig.backup(client_config)
        if undo:
            original = clientconfig.load(saved).data if saved.exists() else None
            unwrapped = clientconfig.unwrap_servers(parsed.data, command, original)
            outcome = clientconfig.Outcome(wrapped=unwrapped)
        else:
            config, state_dir = pinned_settings(config_path)
            outcome = clientconfig.wrap_servers(parsed.data, command, agent=agent, config=config, state_dir=state_dir)
            note = stray_config_note(resolve(config_path))
        if outcome.changed:
            clientconfig.write_config(client_config, parsed.data)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    comments_lost = parsed.jsonc and outcome.changed
    if as_json:
        out: dict[str, Any] = {"unwrapped" if undo else "wrapped": outcome.wrapped, "skipped": outcome.skipped}
        if not undo:
            out |= {"updated": outcome.updated, "unchanged": outcome.unchanged, "config": config, "agent": agent}
        out |= {"backup": str(saved), "jsonc": parsed.jsonc, "comments_dropped": comments_lost, "note": note}
        click.echo(json.dumps(out))
        return
    verb = "unwrapped" if undo else "wrapped"
    # Server names come from a file the agent may have written: escapes shown, never sent to the terminal.
    from policy.core.invisible import one_line

    wrapped = one_line(", ".join(outcome.wrapped) or "-")
    click.echo(f"{verb} {len(outcome.wrapped)} server(s) in {client_config}: {wrapped}")
    for name, changes in outcome.updated.items():
        click.echo(one_line(f"updated {name}: {'; '.join(changes)}"))
    if outcome.unchanged:
        click.echo(one_line(f"up to date: {', '.join(outcome.unchanged)}"))
    for why in outcome.skipped:
        click.echo(one_line(f"skipped {why}"))
    if not undo:
        mesh = config or "the active mesh (now the built-in default; `agent-mesh serve` or `agent-mesh use` changes it)"
        click.echo(f"agent {agent}, config {mesh}")
    click.echo(f"backup: {saved}")
    if note:
        click.echo(note, err=True)
    if comments_lost:
        click.echo(f"note: {client_config} was JSONC; it is now plain JSON (comments and trailing commas are gone; "
                   f"the original is in {saved})")  # fmt: skip


def main() -> None:
    cli.main(prog_name="mcpwrap")
