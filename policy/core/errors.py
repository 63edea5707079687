"""The exception tree of the core.

ValueError
 └── ConfigError          a config file is wrong: names file, line and key path
RuntimeError
 └── StoreUnavailable     the state store cannot be read or written: callers fail closed
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration error that points at the file, the line and the key path."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, path: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class StoreUnavailable(RuntimeError):
    """The state store failed (read-only, corrupt, locked too long): no call may pass on it."""
