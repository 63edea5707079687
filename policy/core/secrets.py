"""Secrets in the config (`{$env: NAME}`, `{$file: PATH}`), kept unresolved until the surface that uses one
asks for it: the proxy's agent tokens in the proxy, the supervisor's URL in the supervisor, the notify secret
in the control plane. mcpwrap and the operator commands load the same config without any of them.

A `SecretRef` remembers the key, file and line it came from, so a missing secret is named precisely. It
prints and serialises as its reference (`{"$env": "NAME"}`), never as its value: the policy hash and
`agent-mesh config show` do not depend on, or show, what the environment holds.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import Any

from policy.core.errors import ConfigError

MAX_SECRET_BYTES = 64 * 1024
# Where a `{$env}`/`{$file}` stays unresolved at load: the values only one surface needs ("*": any name).
LAZY_PATHS: tuple[tuple[str, ...], ...] = (
    ("agents", "*", "token"),
    ("control", "token"),
    ("approval", "notify_secret"),
    ("approval", "notify_url"),
    ("supervisor", "url"),
)


def is_lazy(path: tuple[str | int, ...]) -> bool:
    """Whether a key path holds a secret resolved where it is used (not when the config loads)."""
    return any(
        len(path) == len(pattern) and all(p == "*" or p == part for p, part in zip(pattern, path, strict=True))
        for pattern in LAZY_PATHS
    )


class SecretMissing(ConfigError):
    """A secret the running surface needs is not there (unset variable, missing or open file)."""

    def __init__(self, message: str, *, file: str | None, line: int | None, path: str, variable: str | None) -> None:
        self.variable = variable
        super().__init__(message, file=file, line=line, path=path)


class SecretRef:
    """`{$env: NAME}` or `{$file: PATH}` at a key path of a config file, not yet read."""

    __slots__ = ("base_dir", "file", "kind", "line", "name", "path")

    def __init__(self, kind: str, name: str, *, file: str, line: int | None, path: str, base_dir: str) -> None:
        if kind not in ("env", "file"):
            raise ValueError(f"unknown secret kind {kind!r}")
        self.kind = kind
        self.name = name
        self.file = file
        self.line = line
        self.path = path
        self.base_dir = base_dir

    def spec(self) -> dict[str, str]:
        return {f"${self.kind}": self.name}

    def __repr__(self) -> str:
        return f"SecretRef(${self.kind}: {self.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and (self.kind, self.name) == (other.kind, other.name)

    def __hash__(self) -> int:
        return hash((self.kind, self.name))

    def missing(self, message: str) -> SecretMissing:
        variable = self.name if self.kind == "env" else None
        return SecretMissing(message, file=self.file, line=self.line, path=self.path, variable=variable)

    def resolve(self, env: Mapping[str, str] | None = None) -> str:
        """The secret's value. Raises SecretMissing naming the key, file and line."""
        if self.kind == "env":
            env = os.environ if env is None else env
            if self.name not in env:
                raise self.missing(f"environment variable {self.name} is not set")
            return env[self.name]
        return read_secret_file(self)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema  # only where config models are built

        return core_schema.is_instance_schema(
            cls, serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.spec())
        )


def read_secret_file(ref: SecretRef) -> str:
    """A `{$file: PATH}` secret (relative to its config file's folder): one trailing newline dropped; refused
    when other users can read or write it (the mesh's own state files are 0600 for the same reason)."""
    path = os.path.join(ref.base_dir, os.path.expanduser(ref.name))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block: refused below as no regular file
    except FileNotFoundError:
        raise ref.missing(f"secret file {path} does not exist") from None
    except OSError as exc:
        raise ref.missing(f"cannot read secret file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ref.missing(f"secret file {path} is not a regular file")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise ref.missing(f"secret file {path} is open to other users (mode {mode:04o}): run chmod 600 {path}")
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise ref.missing(f"secret file {path} is larger than {MAX_SECRET_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ref.missing(f"secret file {path} is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


def reveal(value: str | SecretRef | None, env: Mapping[str, str] | None = None) -> str | None:
    """A config value that may be a secret reference, resolved now (by the surface that uses it)."""
    return value.resolve(env) if isinstance(value, SecretRef) else value


Secret = str | SecretRef
