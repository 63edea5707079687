"""`mcpwrap install --client-config FILE`: put every stdio server of an MCP client config under mcpwrap.

Works on the `mcpServers` JSON of Claude Desktop, Claude Code (also per project) and Cursor, and the
`servers` JSON (or JSONC: comments, trailing commas) of VS Code. Settings travel as flags (clients strip the
environment). Installing again brings every wrapped entry up to date (agent, config, state dir, the mcpwrap
command itself) and says what changed; `--undo` puts each server back exactly as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy.core.textfile import read_bounded

BACKUP_SUFFIX = ".agent-mesh.bak"
# Claude Code keeps its history in ~/.claude.json (megabytes); far above that, a file is no client's config.
MAX_CLIENT_CONFIG_BYTES = 64 * 1024 * 1024
_SERVER_KEYS = ("mcpServers", "servers")
# mcpwrap's own flags in a wrapped entry, in the order install writes them.
_FLAGS = ("--agent", "--server", "--config", "--state-dir")
_FLAG_NAMES = {"--agent": "agent", "--server": "server", "--config": "config", "--state-dir": "state dir"}


@dataclass
class Outcome:
    """What an install did, per server name."""

    wrapped: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)  # name -> "agent a → b", …
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name (why)"

    @property
    def changed(self) -> bool:
        return bool(self.wrapped or self.updated)


@dataclass
class ClientFile:
    """A parsed client config; `jsonc` when it needed the JSONC reader (comments are not written back)."""

    data: dict[str, Any]
    jsonc: bool = False


def _server_tables(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every table of servers in the config: top level, and Claude Code's per-project tables."""
    for key in _SERVER_KEYS:
        if isinstance(data.get(key), dict):
            yield data[key]
    projects = data.get("projects")
    if isinstance(projects, dict):
        for project in projects.values():
            if isinstance(project, dict) and isinstance(project.get("mcpServers"), dict):
                yield project["mcpServers"]


def _prefix_length(entry: dict[str, Any], mcpwrap: Sequence[str]) -> int | None:
    """How many items of `[command, *args]` start mcpwrap, or None when the entry is not wrapped. An entry
    wrapped by another install of mcpwrap (another venv, `python -m mcpwrap`) counts too."""
    command, args = entry.get("command"), entry.get("args", [])
    if not isinstance(command, str) or not isinstance(args, list) or "--" not in args:
        return None
    line = [command, *args]
    if line[: len(mcpwrap)] == list(mcpwrap):
        return len(mcpwrap)
    if os.path.basename(command) == "mcpwrap":
        return 1
    if args[:2] == ["-m", "mcpwrap"] and os.path.basename(command).startswith("python"):
        return 3
    return None


def _split(line: list[str], start: int) -> tuple[dict[str, str], list[str], list[str]] | None:
    """mcpwrap's flags, any other options kept as they are, and the original command after `--` (read as
    mcpwrap reads them: a flag's value is the next word even when it is `--`)."""
    rest = line[start:]
    if rest[:1] == ["run"]:
        rest = rest[1:]
    flags: dict[str, str] = {}
    other: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            original = rest[i + 1 :]
            return (flags, other, original) if original else None
        name, eq, value = word.partition("=")
        if name in _FLAGS and (eq or i + 1 < len(rest)):
            flags[name] = value if eq else rest[i + 1]
            i += 1 if eq else 2
        else:
            other.append(word)
            i += 1
    return None


def _flags(agent: str, server: str, config: str | None, state_dir: str | None) -> dict[str, str]:
    out = {"--agent": agent, "--server": server}
    if config:
        out["--config"] = config
    if state_dir:
        out["--state-dir"] = state_dir
    return out


def _args(mcpwrap: Sequence[str], flags: dict[str, str], other: list[str], original: list[str]) -> list[str]:
    out = list(mcpwrap[1:])
    for name in _FLAGS:
        if name in flags:
            value = flags[name]
            # `--agent=-x` / `--server=--`: a value that looks like an option stays attached to its flag
            out += [f"{name}={value}"] if value[:1] == "-" or not value else [name, value]
    return [*out, *other, "--", *original]


def _differences(old: dict[str, str], new: dict[str, str], old_command: list[str], mcpwrap: Sequence[str]) -> list[str]:
    out = []
    for name in _FLAGS:
        if old.get(name) != new.get(name):
            before, after = old.get(name), new.get(name)
            default = {"--config": "the active mesh", "--state-dir": "the config's"}.get(name, "none")
            out.append(f"{_FLAG_NAMES[name]} {before or '(' + default + ')'} → {after or '(' + default + ')'}")
    if old_command != list(mcpwrap):
        out.append(f"mcpwrap {' '.join(old_command)} → {' '.join(mcpwrap)}")
    return out


# Variables of an entry's `env` that choose another policy or state for mcpwrap (the active-mesh rule reads
# them), or run other code inside it (Python's start-up, the dynamic loader). The client passes `env` to the
# process it starts, and a project's client config is a file the agent can write: such an entry is refused.
_HIJACK_EXACT = frozenset({"AGENT_MESH_CONFIG", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "HOME"})
_HIJACK_PREFIXES = ("PYTHON", "LD_", "DYLD_")


def _hijacking(env: Any) -> list[str]:
    """The names in an entry's `env` that change which policy mcpwrap runs or what code it runs (any case:
    Windows reads them so)."""
    if not isinstance(env, dict):
        return []
    return [
        k for k in env if isinstance(k, str) and (k.upper() in _HIJACK_EXACT or k.upper().startswith(_HIJACK_PREFIXES))
    ]


def _stdio(entry: Any) -> bool:
    """Whether the client starts this entry as a process: a `command`, and no `type` naming another transport
    (VS Code and Claude Code use the `url` of a `type: http|sse` entry whatever its `command` says)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return False
    kind = entry.get("type")
    return kind is None or (isinstance(kind, str) and kind.strip().lower() == "stdio")


def wrap_servers(
    data: dict[str, Any], mcpwrap: Sequence[str], *, agent: str, config: str | None, state_dir: str | None = None
) -> Outcome:
    """Rewrite `data` in place: wrap every stdio server, bring wrapped ones up to date. Raises ValueError."""
    done = Outcome()
    for table in _server_tables(data):
        for name, entry in table.items():
            if not _stdio(entry):
                done.skipped.append(f"{name} (not a stdio server: govern it through the proxy)")
                continue
            hijack = _hijacking(entry.get("env"))
            if hijack:
                raise ValueError(
                    f"server {name!r}: its env sets {', '.join(hijack)}, which would choose another policy or run "
                    "other code inside mcpwrap; remove it from the entry (pass --config to choose the mesh)"
                )
            args = entry.get("args", [])
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                raise ValueError(f"server {name!r}: args must be a list of strings")
            want = _flags(agent, name, config, state_dir)
            start = _prefix_length(entry, mcpwrap)
            if start is None:
                entry["args"] = _args(mcpwrap, want, [], [entry["command"], *args])
                entry["command"] = mcpwrap[0]
                done.wrapped.append(name)
                continue
            line = [entry["command"], *args]
            parts = _split(line, start)
            if parts is None:
                raise ValueError(f"server {name!r}: its mcpwrap arguments have no `-- COMMAND`")
            flags, other, original = parts
            changes = _differences(flags, want, line[:start], mcpwrap)
            if not changes:
                done.unchanged.append(name)
                continue
            entry["command"], entry["args"] = mcpwrap[0], _args(mcpwrap, want, other, original)
            done.updated[name] = changes
    return done


def unwrap_servers(data: dict[str, Any], mcpwrap: Sequence[str], original: dict[str, Any] | None = None) -> list[str]:
    """Undo wrap_servers in place (keeping any other edit made since). Returns the unwrapped names.

    `original` (the backup) tells an entry that had no `args` key from one with `args: []`, so the entry
    comes back exactly as it was."""
    before = _entries(original) if original is not None else {}
    done: list[str] = []
    for index, table in enumerate(_server_tables(data)):
        for name, entry in table.items():
            start = _prefix_length(entry, mcpwrap) if isinstance(entry, dict) else None
            if start is None:
                continue
            parts = _split([entry["command"], *entry.get("args", [])], start)
            if parts is None:
                raise ValueError(f"server {name!r}: its mcpwrap arguments have no `-- COMMAND`")
            command = parts[2]
            entry["command"], entry["args"] = command[0], command[1:]
            old = before.get((index, name))
            if not entry["args"] and old is not None and old.get("command") == command[0] and "args" not in old:
                del entry["args"]
            done.append(name)
    return done


def _entries(data: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    return {
        (index, name): entry
        for index, table in enumerate(_server_tables(data))
        for name, entry in table.items()
        if isinstance(entry, dict)
    }


def load(path: Path) -> ClientFile:
    """Parse a client config: JSON, else JSONC/JSON5 (VS Code's comments and trailing commas). Raises
    ValueError naming the file (and the line, for JSON)."""
    try:  # bounded: a FIFO or /dev/zero in the client config's place must not hang or fill the install
        text = read_bounded(str(path), MAX_CLIENT_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    jsonc = False
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        import json5  # only for files that are not plain JSON

        try:
            data = json5.loads(text)
        except ValueError:
            raise ValueError(f"{path}:{exc.lineno}: not JSON or JSONC ({exc.msg})") from None
        jsonc = True
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a client config is a JSON object")
    return ClientFile(data, jsonc)


def read_config(path: Path) -> dict[str, Any]:
    """Parse a client config (JSON or JSONC). Raises ValueError naming the file."""
    return load(path).data


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically with plain JSON, keeping its permissions (it may hold tokens)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, "utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


def backup(path: Path) -> Path:
    """Copy the original once: a second install keeps the first, untouched backup."""
    copy = path.with_name(path.name + BACKUP_SUFFIX)
    if not copy.exists():
        copy.write_bytes(path.read_bytes())
        os.chmod(copy, path.stat().st_mode & 0o7777)
    return copy
