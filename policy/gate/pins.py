"""Tool pinning: the fingerprint of each tool's description and input schema, per server and tool.

A server that silently changes what a tool says or accepts (a "rug pull") is noticed on the next
`tools/list`. Pins live in `<state_dir>/mcp-pins.json`, shared by every mcpwrap process under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from policy import canonical_json
from policy.store.statedir import create_private_file, make_private_dir

PINS_FILE = "mcp-pins.json"


class PinState(StrEnum):
    SAME = "same"
    NEW = "new"
    CHANGED = "changed"


def fingerprint(tool: Mapping[str, Any]) -> str:
    """SHA-256 over the tool's description and input schema (what the model reads and what it sends), and its
    titles when it has any (the model reads those too; absent, the fingerprint is what it always was)."""
    pinned = {"description": tool.get("description"), "inputSchema": tool.get("inputSchema")}
    annotations = tool.get("annotations")
    titles = [tool.get("title"), annotations.get("title") if isinstance(annotations, dict) else None]
    if titles != [None, None]:
        pinned["titles"] = titles
    return hashlib.sha256(canonical_json(pinned).encode("utf-8")).hexdigest()


class PinBook:
    """The pins of every server, in one JSON file: `{server: {tool: fingerprint}}`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock_path = path.with_name(path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        make_private_dir(self._path.parent)
        create_private_file(self._lock_path)  # state-dir files are 0600 (policy/store/statedir.py)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self._path}: unreadable pin file ({exc}); fix or remove it") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self._path}: a pin file is a JSON object of servers")
        return data

    def pinned(self, server: str) -> dict[str, str]:
        """The current pins of one server."""
        with self._locked():
            return dict(self._read().get(server, {}))

    def compare(self, server: str, tools: Mapping[str, str]) -> dict[str, PinState]:
        """How each listed tool's fingerprint compares to its pin."""
        pins = self.pinned(server)
        return {
            name: PinState.NEW if name not in pins else PinState.SAME if pins[name] == fp else PinState.CHANGED
            for name, fp in tools.items()
        }

    def accept(self, server: str, tool: str, fp: str) -> None:
        """Pin `tool` at `fp` (atomically: readers never see a half-written file)."""
        with self._locked():
            data = self._read()
            data.setdefault(server, {})[tool] = fp
            tmp = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
            create_private_file(tmp)
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", "utf-8")
            os.replace(tmp, self._path)
