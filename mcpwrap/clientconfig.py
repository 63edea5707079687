"""`mcpwrap install --client-config FILE`: put every stdio server of an MCP client config under mcpwrap.

Works on the `mcpServers` JSON of Claude Desktop, Claude Code (also per project) and Cursor, and the
`servers` JSON of VS Code. Settings travel as flags (clients strip the environment). `--undo` unwraps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BACKUP_SUFFIX = ".agent-mesh.bak"
_SERVER_KEYS = ("mcpServers", "servers")


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


def _is_wrapped(entry: dict[str, Any], mcpwrap: Sequence[str]) -> bool:
    return [entry.get("command"), *entry.get("args", [])][: len(mcpwrap)] == list(mcpwrap)


def wrap_servers(
    data: dict[str, Any], mcpwrap: Sequence[str], *, agent: str, config: str | None, state_dir: str | None = None
) -> tuple[list[str], list[str]]:
    """Rewrite `data` in place. Returns (wrapped server names, skipped names with why)."""
    wrapped: list[str] = []
    skipped: list[str] = []
    for table in _server_tables(data):
        for name, entry in table.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
                skipped.append(f"{name} (not a stdio server: govern it through the proxy)")
                continue
            if _is_wrapped(entry, mcpwrap):
                skipped.append(f"{name} (already under mcpwrap)")
                continue
            args = entry.get("args", [])
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                raise ValueError(f"server {name!r}: args must be a list of strings")
            flags = ["--agent", agent, "--server", name] + (["--config", config] if config else [])
            flags += ["--state-dir", state_dir] if state_dir else []
            entry["args"] = [*mcpwrap[1:], *flags, "--", entry["command"], *args]
            entry["command"] = mcpwrap[0]
            wrapped.append(name)
    return wrapped, skipped


def unwrap_servers(data: dict[str, Any], mcpwrap: Sequence[str]) -> list[str]:
    """Undo wrap_servers in place (keeping any other edit made since). Returns the unwrapped names."""
    done: list[str] = []
    for table in _server_tables(data):
        for name, entry in table.items():
            if not isinstance(entry, dict) or not _is_wrapped(entry, mcpwrap):
                continue
            args = entry.get("args", [])
            if "--" not in args or args.index("--") + 1 >= len(args):
                raise ValueError(f"server {name!r}: its mcpwrap arguments have no `-- COMMAND`")
            original = args[args.index("--") + 1 :]
            entry["command"], entry["args"] = original[0], original[1:]
            done.append(name)
    return done


def read_config(path: Path) -> dict[str, Any]:
    """Parse a client config. Raises ValueError naming the file."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a client config is a JSON object")
    return data


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically, keeping its permissions (it may hold tokens)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


def backup(path: Path) -> Path:
    """Copy the original once: a second install keeps the first, untouched backup."""
    copy = path.with_name(path.name + BACKUP_SUFFIX)
    if not copy.exists():
        copy.write_bytes(path.read_bytes())
        os.chmod(copy, path.stat().st_mode & 0o7777)
    return copy
