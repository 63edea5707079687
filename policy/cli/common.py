"""Shared pieces of the CLI: the --config option, loading with exit code 2, building a call from flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from policy.core.config import LoadedConfig, find_config, load_config
from policy.core.engine import PolicySet, compile_policies
from policy.core.errors import ConfigError
from policy.core.model import HttpInfo, Surface, ToolCall

F = TypeVar("F", bound=Callable[..., Any])


class ConfigProblem(click.ClickException):
    """A config error: printed as `file:line: key: message`, exit code 2."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message


def config_option[F: Callable[..., Any]](f: F) -> F:
    return click.option(
        "--config",
        "config_path",
        default=None,
        metavar="FILE",
        help="Config file (default: $AGENT_MESH_CONFIG, else ./agent-mesh.yaml, else the built-in default).",
    )(f)


def load_loaded(config_path: str | None) -> LoadedConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def load_policy_set(config_path: str | None) -> tuple[PolicySet, str]:
    """Load and compile the config; exit 2 with the precise error when it is wrong."""
    try:
        loaded = load_config(config_path)
        return compile_policies(loaded), find_config(config_path) or "<built-in default>"
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def split_tool(full: str) -> tuple[str, str]:
    """`filesystem.write_file` -> ("filesystem", "write_file"); the server is what precedes the first dot."""
    server, dot, tool = full.partition(".")
    return (server, tool) if dot else ("", full)


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
