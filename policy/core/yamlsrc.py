"""Read YAML while remembering the line of every key path, so config errors can point at it.

`load_yaml` returns plain data plus a `Lines` map; `{$env: NAME}` and `{$file: PATH}` are resolved here,
except where a secret is needed by one surface only (those stay `SecretRef`s, policy.core.secrets). Work is
bounded: aliases are capped in number and in what they expand to (a 1 KB "billion laughs" document is an
error at the alias that crosses the cap, not gigabytes), and so is nesting depth.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from policy.core.errors import ConfigError
from policy.core.secrets import SecretRef, is_lazy

Path = tuple[str | int, ...]

# A config is written by hand: these are far above any real one and far below what hurts.
MAX_ALIASES = 200  # `*name` references in one document
MAX_VALUES = 200_000  # values (scalars, lists, mappings) once every alias is expanded
MAX_DEPTH = 64  # lists and mappings inside each other


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
    # Every `{$file: PATH}` of the file, resolved or not: the argument guard keeps agents away from them.
    secret_files: list[str] = field(default_factory=list)

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


class _CappedLoader(yaml.SafeLoader):
    """A SafeLoader that counts aliases and the values they expand to while composing."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.aliases = 0
        self.values = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if not self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            assert node is not None  # PyYAML composes a node or raises
            self._count(1, node.start_mark.line + 1, "the document")
            return node
        line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise ConfigError(f"more than {MAX_ALIASES} YAML aliases: refused", file=self.file, line=line)
        target = super().compose_node(parent, index)
        assert target is not None
        self._count(self._size(target, 0), line, "this alias")
        return target

    def _count(self, n: int, line: int, where: str) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            message = f"YAML aliases expand to more than {MAX_VALUES} values at {where}: refused"
            raise ConfigError(message, file=self.file, line=line)

    def _size(self, node: yaml.Node, depth: int) -> int:
        """Values in `node` with aliases expanded (memoised: shared nodes are measured once)."""
        key = id(node)
        hit = self._sizes.get(key)
        if hit is not None:
            return hit
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"YAML nested deeper than {MAX_DEPTH} levels", file=self.file, line=node.start_mark.line + 1
            )
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size(k, depth + 1) + self._size(v, depth + 1) for k, v in node.value)
        self._sizes[key] = size
        return size


class _Builder:
    """Turns a composed YAML node tree into plain data, recording lines and resolving `{$env}`/`{$file}`."""

    def __init__(self, lines: Lines, env: Mapping[str, str]) -> None:
        self.lines = lines
        self.env = env
        self.loader = yaml.SafeLoader("")
        self.open: set[int] = set()  # the collections being built, to refuse a cycle made with an alias

    def build(self, node: yaml.Node, path: Path) -> Any:
        lines = self.lines
        lines.by_path.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if len(path) > MAX_DEPTH:
                raise ConfigError(
                    f"YAML nested deeper than {MAX_DEPTH} levels", file=lines.file, line=node.start_mark.line + 1
                )
            if id(node) in self.open:  # `&a [*a]`: a value that contains itself
                raise ConfigError(
                    "a YAML alias refers to a value that contains it", file=lines.file, line=node.start_mark.line + 1
                )
            self.open.add(id(node))
            try:
                return self.build_collection(node, path)
            finally:
                self.open.discard(id(node))
        return self.scalar(node)

    def build_collection(self, node: yaml.MappingNode | yaml.SequenceNode, path: Path) -> Any:
        lines = self.lines
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
            if set(out) == {"$env"} or set(out) == {"$file"}:
                return self.secret(*next(iter(out.items())), path)
            return out
        return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]

    def scalar(self, node: yaml.Node) -> Any:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.ScalarNode):
            raise ConfigError("a key must be a plain value", file=self.lines.file, line=line)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # a merge key `<<`, an unknown `!!tag`: never a traceback
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"invalid YAML: {problem}", file=self.lines.file, line=line) from None
        except ValueError as exc:  # an integer of more than 4300 digits, a bad timestamp
            raise ConfigError(f"invalid YAML: {exc}", file=self.lines.file, line=line) from None

    def secret(self, key: str, name: Any, path: Path) -> str | SecretRef:
        """`{$env: NAME}` / `{$file: PATH}`: kept as a SecretRef where only one surface needs it
        (policy.core.secrets.LAZY_PATHS), else resolved now."""
        kind = key[1:]
        if not isinstance(name, str) or not name:
            what = "the name of an environment variable" if kind == "env" else "a file path (relative to this file)"
            raise self.lines.error(path, f"{key} takes {what}")
        base = os.path.dirname(os.path.abspath(self.lines.file)) if not self.lines.file.startswith("<") else "."
        ref = SecretRef(
            kind, name, file=self.lines.file, line=self.lines.line_of(path), path=format_path(path), base_dir=base
        )
        if kind == "file":
            self.lines.secret_files.append(os.path.join(base, os.path.expanduser(name)))
        return ref if is_lazy(path) else ref.resolve(self.env)


def load_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> tuple[Any, Lines]:
    """Parse YAML text into plain data and the line map; syntax errors become ConfigError with a line."""
    lines = Lines(file)
    try:
        loader = _CappedLoader(text, file)  # its reader refuses a NUL or an escape character here, at once
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}".replace('"<unicode string>"', "the file"), file=file) from None
    try:
        node = loader.get_single_node()
    except RecursionError:
        raise ConfigError(f"invalid YAML: nested deeper than {MAX_DEPTH} levels", file=file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    if node is None:
        return None, lines
    builder = _Builder(lines, os.environ if env is None else env)
    try:
        return builder.build(node, ()), lines
    finally:
        builder.loader.dispose()
