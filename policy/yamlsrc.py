"""Read YAML while remembering the line of every key path, so config errors can point at it.

`load_yaml` returns plain data plus a `Lines` map; `{$env: NAME}` secrets are resolved here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from policy.errors import ConfigError

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """`("policies", 0, "rules", 2, "action")` -> `policies[0].rules[2].action`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Lines:
    """Key path -> 1-based line number, for one file."""

    file: str
    by_path: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of the path, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.by_path:
                return self.by_path[p]
            p = p[:-1]
        return self.by_path.get((), None)

    def error(self, path: Path, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line_of(path), path=format_path(path))


class _Builder:
    """Turns a composed YAML node tree into plain data, recording lines and resolving `{$env: NAME}`."""

    def __init__(self, lines: Lines, env: Mapping[str, str]) -> None:
        self.lines = lines
        self.env = env
        self.loader = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path) -> Any:
        lines = self.lines
        lines.by_path.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node)
                key = key if isinstance(key, str) else str(key)
                child = (*path, key)
                if key in out:
                    line = key_node.start_mark.line + 1
                    raise ConfigError("duplicate key", file=lines.file, line=line, path=format_path(child))
                lines.by_path[child] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            if set(out) == {"$env"}:
                return self.resolve_env(out["$env"], path)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise ConfigError("a key must be a plain value", file=self.lines.file, line=node.start_mark.line + 1)
        return self.loader.construct_object(node, deep=True)

    def resolve_env(self, name: Any, path: Path) -> str:
        if not isinstance(name, str) or not name:
            raise self.lines.error(path, "$env takes the name of an environment variable")
        if name not in self.env:
            raise self.lines.error(path, f"environment variable {name} is not set")
        return self.env[name]


def load_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> tuple[Any, Lines]:
    """Parse YAML text into plain data and the line map; syntax errors become ConfigError with a line."""
    lines = Lines(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    if node is None:
        return None, lines
    builder = _Builder(lines, os.environ if env is None else env)
    try:
        return builder.build(node, ()), lines
    finally:
        builder.loader.dispose()
