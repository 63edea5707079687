"""The active mesh: which config and state dir a command or process uses, by one rule wherever it runs.

    1. the flag (`--config FILE`, `--state-dir DIR`),
    2. the environment (`$AGENT_MESH_CONFIG`),
    3. the mesh registered by `agent-mesh serve` or `agent-mesh use` (`$XDG_CONFIG_HOME/agent-mesh/active.json`),
    4. the built-in default, its state in `$XDG_DATA_HOME/agent-mesh/.agent-mesh`.

The working directory plays no part (an `agent-mesh.yaml` beside the command is used only when named), so a
client starting mcpwrap in `/` and an operator in `$HOME` reach the same policy and the same approvals. Light
on purpose (json and os only): mcpwrap resolves before it imports the rest of the core.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Mapping

ENV_VAR = "AGENT_MESH_CONFIG"
REGISTRY_NAME = "active.json"
STATE_NAME = ".agent-mesh"
_FORMAT = 1
_MAX_BYTES = 64 * 1024  # a registry is a few lines of JSON

FLAG = "--config"
ENVIRONMENT = f"${ENV_VAR}"
REGISTERED = "registered"
BUILT_IN = "built-in default"


class RegistryError(ValueError):
    """The registry file exists but cannot be read as a registered mesh: nothing falls back silently."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = f"{reason}; run `agent-mesh use CONFIG` (or `agent-mesh use --default`)"
        super().__init__(f"{path}: {self.reason}")


class Resolved:
    """Where the config comes from: `config` is None for the built-in default; `source` says which step."""

    __slots__ = ("config", "registered_by", "source")

    def __init__(self, config: str | None, source: str, registered_by: str | None = None) -> None:
        self.config = config
        self.source = source
        self.registered_by = registered_by

    def describe(self) -> str:
        """`/abs/agent-mesh.yaml (registered by agent-mesh serve)`, `built-in default`."""
        if self.config is None:
            return BUILT_IN
        why = {FLAG: "--config", ENVIRONMENT: ENVIRONMENT}.get(self.source)
        if why is None:
            why = f"registered by {self.registered_by}" if self.registered_by else "registered"
        return f"{os.path.abspath(self.config)} ({why})"


def _home(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def config_home(env: Mapping[str, str] | None = None) -> str:
    """`$XDG_CONFIG_HOME/agent-mesh`, else `~/.config/agent-mesh`."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(_home(env), ".config")
    return os.path.join(base, "agent-mesh")


def data_dir(env: Mapping[str, str] | None = None) -> str:
    """The user's agent-mesh data folder: `$XDG_DATA_HOME/agent-mesh`, else `~/.local/share/agent-mesh`."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(_home(env), ".local", "share")
    return os.path.abspath(os.path.join(base, "agent-mesh"))


def default_state_dir(env: Mapping[str, str] | None = None) -> str:
    """The built-in default's state dir, `<data dir>/.agent-mesh`. Named like a project's state dir on purpose:
    the argument guard treats that name as the mesh's wherever it appears, while a plain `agent-mesh` folder
    (this repository's clone, `~/.config/agent-mesh`) stays an ordinary folder for agents to work in."""
    return os.path.join(data_dir(env), STATE_NAME)


def registry_path(env: Mapping[str, str] | None = None) -> str:
    return os.path.join(config_home(env), REGISTRY_NAME)


def read_registered(env: Mapping[str, str] | None = None) -> Resolved | None:
    """The registered mesh, or None when nothing is registered. Raises RegistryError for a damaged file:
    falling back to the built-in default would run another policy than the operator chose."""
    path = registry_path(env)
    try:
        # without blocking: a FIFO in the registry's place would hang every start (refused below, not a file)
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), encoding="utf-8") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_BYTES:
                raise RegistryError(path, f"not a registered mesh (a regular file of at most {_MAX_BYTES} bytes)")
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                # whoever can write it chooses the policy every command and mcpwrap runs
                mode = st.st_mode & 0o777
                raise RegistryError(path, f"other users can change the registered mesh (mode {mode:04o}): chmod 600 it")
            data = json.load(f)
    except FileNotFoundError:
        return None
    except RegistryError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RegistryError(path, f"cannot read the registered mesh ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise RegistryError(path, "not a registered mesh")
    config, by = data.get("config"), data.get("by")
    if config is not None and (not isinstance(config, str) or not os.path.isabs(config)):
        raise RegistryError(path, "the registered mesh's config must be an absolute path")
    return Resolved(config, REGISTERED, by if isinstance(by, str) else None)


def resolve(explicit: str | None, env: Mapping[str, str] | None = None) -> Resolved:
    """Apply the rule: flag, environment, registered mesh, built-in default. Raises RegistryError."""
    env = os.environ if env is None else env
    if explicit:
        return Resolved(explicit, FLAG)
    if env.get(ENV_VAR):
        return Resolved(env[ENV_VAR], ENVIRONMENT)
    return read_registered(env) or Resolved(None, BUILT_IN)


def stray_config_note(resolved: Resolved, name: str = "agent-mesh.yaml") -> str | None:
    """A note when `./agent-mesh.yaml` exists but another config applies (the folder never picks the policy)."""
    if resolved.source == FLAG or not os.path.isfile(name):
        return None
    if resolved.config is not None and os.path.abspath(resolved.config) == os.path.abspath(name):
        return None
    return (
        f"note: ./{name} is not the active mesh; pass --config {name} "
        f"or make it the active one with `agent-mesh use {name}`"
    )


def register(config: str | None, by: str, env: Mapping[str, str] | None = None) -> str | None:
    """Make `config` (None: the built-in default) the active mesh for this user; returns the config that was
    registered before (None when none was, or the built-in default). Written atomically, mode 0600."""
    path = registry_path(env)
    before: str | None = None
    with contextlib.suppress(RegistryError):
        old = read_registered(env)
        before = old.config if old is not None else None
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    record = {
        "format": _FORMAT,
        "config": None if config is None else os.path.abspath(config),
        "by": by,
        "at": time.time(),
    }
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return before


def unregister(env: Mapping[str, str] | None = None) -> bool:
    """Forget the registered mesh (the built-in default applies again); True when one was registered."""
    try:
        os.unlink(registry_path(env))
    except FileNotFoundError:
        return False
    return True
