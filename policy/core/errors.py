"""The exception tree of the core.

ValueError
 └── ConfigError          a config file is wrong: names file, line and key path
      └── ConfigErrors    several of them, found at once
RuntimeError
 └── StoreUnavailable     the state store cannot be read or written: callers fail closed
"""

from __future__ import annotations

from collections.abc import Sequence


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

    @property
    def every(self) -> tuple[ConfigError, ...]:
        """Each error this one stands for: itself, or every error of a ConfigErrors."""
        return (self,)


class ConfigErrors(ConfigError):
    """Several config errors found at once (every key pydantic refused, every bad policy file).

    It reads as the first (file, line, path, message) wherever one error is expected; str() lists them all,
    one `file:line: path: message` a line, and `every` hands them out (agent-mesh check prints each)."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(one for err in errors for one in err.every)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, line=first.line, path=first.path)

    @property
    def every(self) -> tuple[ConfigError, ...]:
        return self.errors

    def __str__(self) -> str:
        return "\n".join(ConfigError.__str__(err) for err in self.errors)


def config_errors(errors: Sequence[ConfigError]) -> ConfigError:
    """One error as itself, several as a ConfigErrors (never called with none)."""
    return errors[0] if len(errors) == 1 and not isinstance(errors[0], ConfigErrors) else ConfigErrors(errors)


class StoreUnavailable(RuntimeError):
    """The state store failed (read-only, corrupt, locked too long): no call may pass on it."""
