"""`agent-mesh use [CONFIG]`: show or choose the active mesh, the config every command and process follows
when no `--config` or `$AGENT_MESH_CONFIG` names one (policy.mesh.active)."""

from __future__ import annotations

import json
import os

import click

from policy.cli.common import ConfigProblem, resolve_mesh
from policy.core.config import LoadedConfig
from policy.core.errors import ConfigError
from policy.mesh.active import BUILT_IN, ENVIRONMENT, FLAG, register, registry_path, unregister
from policy.mesh.load import load_config
from policy.mesh.locate import DEFAULT_CONFIG_NAME


def _state_of(config: str | None) -> str:
    try:
        return load_config(config).config.state_dir
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


@click.command("use")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--default", "built_in", is_flag=True, help="Forget the registered mesh: the built-in default applies.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def use(config: str | None, built_in: bool, as_json: bool) -> None:
    """Show the active mesh, or make CONFIG the one every command, mcpwrap and the proxy use.

    The active mesh is found by one rule, wherever a command runs: --config, else $AGENT_MESH_CONFIG, else
    the mesh registered here (by `agent-mesh use` or `agent-mesh serve`), else the built-in default with its
    state in $XDG_DATA_HOME/agent-mesh/.agent-mesh. The current folder is never searched. CONFIG is checked first: a
    config that does not load is not registered.

    \b
    Example:
      agent-mesh use                         # which config and state dir apply, and why
      agent-mesh use ~/mesh/agent-mesh.yaml  # from now on, everywhere
      agent-mesh use --default               # back to the built-in default
    """
    if config is not None and built_in:
        raise click.UsageError("give CONFIG or --default, not both")
    if config is not None:
        path = os.path.abspath(os.path.expanduser(config))
        state = _state_of(path)  # a wrong config exits 2 here, before anything is registered
        try:
            before = register(path, "agent-mesh use")
        except OSError as exc:
            raise click.ClickException(f"cannot register the mesh in {registry_path()}: {exc}") from None
        _report("registered", path, state, before, as_json)
        return
    if built_in:
        try:
            unregister()
        except OSError as exc:
            raise click.ClickException(f"cannot remove {registry_path()}: {exc}") from None
        _report("forgot the registered mesh", None, _state_of(None), None, as_json)
        return
    resolved = resolve_mesh(None)
    state = _state_of(resolved.config)
    if as_json:
        out = {"config": resolved.config, "source": resolved.source, "state_dir": state, "registry": registry_path()}
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"config  {resolved.describe()}")
    click.echo(f"state   {state}")
    click.echo(f"(registry: {registry_path()})")


def _report(verb: str, config: str | None, state: str, before: str | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"config": config, "state_dir": state, "before": before}, indent=2))
        return
    was = f" (was {before})" if before and before != config else ""
    if config is None:
        click.echo(f"{verb}: the built-in default is the active mesh{was}; state in {state}")
    else:
        click.echo(f"{verb} {config} as the active mesh{was}; state in {state}")
    if os.environ.get("AGENT_MESH_CONFIG"):
        click.echo(f"note: $AGENT_MESH_CONFIG={os.environ['AGENT_MESH_CONFIG']} still wins in this shell", err=True)


def serve_choice(config_path: str | None) -> str | None:
    """The config `agent-mesh serve` runs: the usual rule, except that serve started in a folder with an
    `agent-mesh.yaml` (and no --config or $AGENT_MESH_CONFIG) serves that file, and says so. serve is the
    command that chooses the mesh; every other command follows what it registers."""
    resolved = resolve_mesh(config_path)
    if resolved.source in (FLAG, ENVIRONMENT) or not os.path.isfile(DEFAULT_CONFIG_NAME):
        return config_path
    here = os.path.abspath(DEFAULT_CONFIG_NAME)
    if resolved.config != here:
        click.echo(f"agent-mesh serve: using {here} (found in this folder)", err=True)
    return here


def register_served(loaded: LoadedConfig) -> None:
    """Make what serve runs the active mesh, naming what it replaces; a registry that cannot be written is a
    warning (serve still runs, but commands elsewhere will not find it)."""
    config = None if loaded.file.startswith("<") else os.path.abspath(loaded.file)
    try:
        before = register(config, "agent-mesh serve")
    except OSError as exc:
        click.echo(f"agent-mesh serve: cannot register the mesh in {registry_path()}: {exc}", err=True)
        return
    was = f" (was {before or 'the ' + BUILT_IN})" if before != config else ""
    click.echo(
        f"agent-mesh serve: {config or BUILT_IN} is the active mesh{was}: agent-mesh and mcpwrap use it anywhere",
        err=True,
    )
