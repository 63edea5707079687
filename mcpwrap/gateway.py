"""Loading the config and opening the Gate for the mcpwrap commands, with their exit codes.

Kept apart from `mcpwrap.cli` so that `mcpwrap -- CMD` can start the server before importing the core:
the server's start-up and the policy's loading then overlap.
"""

from __future__ import annotations

import sys

import click

from policy import ConfigError, Gate, LoadedConfig, StoreUnavailable, load_config

CONFIG_ERROR_STATUS = 2


def load(config_path: str | None) -> LoadedConfig:
    """The config (found as ARCHITECTURE §5 says); exit 2 with `file:line: key: message` when it is wrong."""
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"mcpwrap: {exc}", err=True)
        sys.exit(CONFIG_ERROR_STATUS)


def open_gate(config_path: str | None) -> Gate:
    """A Gate on the config's state dir; exit 2 on a config error, a ClickException if the store fails."""
    loaded = load(config_path)
    try:
        return Gate.open(loaded)
    except ConfigError as exc:
        click.echo(f"mcpwrap: {exc}", err=True)
        sys.exit(CONFIG_ERROR_STATUS)
    except StoreUnavailable as exc:
        raise click.ClickException(f"the state store is unavailable: {exc}") from None
