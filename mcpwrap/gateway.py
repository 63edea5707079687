"""Loading the config and opening the Gate for the mcpwrap commands, with their exit codes.

Kept apart from `mcpwrap.cli` so that `mcpwrap -- CMD` can check the config, then start the server while
the rest of the core (store, trace writer) loads: a wrong config starts nothing.
"""

from __future__ import annotations

import sys

import click

from policy import ConfigError, Gate, LoadedConfig, StoreUnavailable, compile_policies, load_config

CONFIG_ERROR_STATUS = 2


def load(config_path: str | None) -> LoadedConfig:
    """The config (found as ARCHITECTURE §5 says), fully checked — policies compiled too — so a wrong one
    exits 2 with `file:line: key: message` before anything is started."""
    try:
        loaded = load_config(config_path)
        compile_policies(loaded)
    except ConfigError as exc:
        click.echo(f"mcpwrap: {exc}", err=True)
        sys.exit(CONFIG_ERROR_STATUS)
    return loaded


def open_gate(config: str | LoadedConfig | None) -> Gate:
    """A Gate on the config's state dir; exit 2 on a config error, a ClickException if the store fails."""
    loaded = config if isinstance(config, LoadedConfig) else load(config)
    try:
        return Gate.open(loaded)
    except ConfigError as exc:
        click.echo(f"mcpwrap: {exc}", err=True)
        sys.exit(CONFIG_ERROR_STATUS)
    except StoreUnavailable as exc:
        raise click.ClickException(f"the state store is unavailable: {exc}") from None
