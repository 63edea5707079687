"""Shared pieces of the CLI: the --config option, loading with exit code 2, building a call from flags."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from policy.core.config import LoadedConfig
from policy.core.engine import PolicySet, compile_policies
from policy.core.errors import ConfigError
from policy.core.model import HttpInfo, Surface, ToolCall, split_tool
from policy.mesh.active import RegistryError, Resolved, resolve, stray_config_note
from policy.mesh.load import load_config
from policy.mesh.locate import DEFAULT_CONFIG_NAME

F = TypeVar("F", bound=Callable[..., Any])


class ConfigProblem(click.ClickException):
    """A config error: printed as `file:line: key: message`, exit code 2."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message


WHERE_KEY = "agent_mesh.where"
CONFIG_HELP = (
    "Config file (default: $AGENT_MESH_CONFIG, else the mesh registered by `agent-mesh serve` or `agent-mesh use`, "
    "else the built-in default). The current folder is not searched."
)


def config_option[F: Callable[..., Any]](f: F) -> F:
    return click.option("--config", "config_path", default=None, metavar="FILE", help=CONFIG_HELP)(f)


def resolve_mesh(config_path: str | None) -> Resolved:
    """Which config applies (flag, environment, registered mesh, built-in default); exit 2 on a damaged registry."""
    try:
        return resolve(config_path)
    except RegistryError as exc:
        raise ConfigProblem(str(exc)) from None


def load_loaded(config_path: str | None, *, announce: bool = True) -> LoadedConfig:
    """Load the active mesh's config; exit 2 with the precise error when it is wrong.

    With `announce`, one dim line on a terminal's stderr names the config and the state dir (not with `--json`:
    the JSON carries them), and a note says when an `agent-mesh.yaml` in the current folder is not in use."""
    resolved = resolve_mesh(config_path)
    try:
        loaded = load_config(resolved.config)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    ctx = click.get_current_context(silent=True)
    where = {"config": resolved.config and os.path.abspath(resolved.config), "state_dir": loaded.config.state_dir}
    if ctx is not None:
        ctx.meta[WHERE_KEY] = where
    if announce and not (ctx is not None and ctx.params.get("as_json")):
        if _stderr_is_terminal():
            line = f"config {resolved.describe()} · state {loaded.config.state_dir}"
            click.echo(click.style(line, dim=True), err=True)
        hint = stray_config_note(resolved, DEFAULT_CONFIG_NAME)
        if hint:
            click.echo(hint, err=True)
    return loaded


def _stderr_is_terminal() -> bool:
    # A person reads the dim line; logs and pipes get results only (scripts have `--json`'s fields).
    try:
        return sys.stderr.isatty()
    except (ValueError, OSError):
        return False


def where_used() -> dict[str, str | None]:
    """`{"config": …, "state_dir": …}` of the config this command loaded (empty before it loaded one)."""
    ctx = click.get_current_context(silent=True)
    found = ctx.meta.get(WHERE_KEY) if ctx is not None else None
    return dict(found) if isinstance(found, dict) else {}


def load_policy_set(config_path: str | None) -> tuple[PolicySet, str]:
    """Load and compile the config; exit 2 with the precise error when it is wrong."""
    loaded = load_loaded(config_path)
    try:
        return compile_policies(loaded), loaded.file
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=what) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=what)
    return value


def parse_call_options(
    agent: str,
    tool: str,
    args_json: str,
    surface: str,
    http_method: str | None,
    http_host: str | None,
    http_path: str | None,
    annotations: tuple[str, ...],
) -> ToolCall:
    """Build a ToolCall from `explain`-style flags."""
    server, name = split_tool(tool)
    ann: dict[str, Any] = {}
    for item in annotations:
        key, eq, raw = item.partition("=")
        if not eq:
            raise click.BadParameter(f"{item!r} is not HINT=JSON", param_hint="--annotation")
        try:
            ann[key] = json.loads(raw)
        except json.JSONDecodeError:
            ann[key] = raw
    http = None
    if http_method or http_host or http_path:
        http = HttpInfo((http_method or "GET").upper(), http_host or "", http_path or "/")
    surf: Surface = surface  # type: ignore[assignment]
    return ToolCall(agent, surf, server, name, parse_json_object(args_json, "--args"), http=http, annotations=ann)
