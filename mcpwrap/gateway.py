"""Loading the config and opening the Gate for the mcpwrap commands, with their exit codes.

Kept apart from `mcpwrap.cli` (and free of click) so that `mcpwrap -- CMD` can check the config while the
server boots (or before it starts, see mcpwrap.launch) and the rest of the core (store, trace writer) loads:
a wrong config never gets a frame to the server. Failures
print `mcpwrap: …` on stderr and exit: 2 for a wrong config, 1 for an unavailable store.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

from mcpwrap.checked import Checked, RecordingEnv, policy_folder, remember
from policy import ConfigError, LoadedConfig, compile_policies, find_config, load_config
from policy.core.secrets import SecretMissing

if TYPE_CHECKING:
    from policy import Gate

CONFIG_ERROR_STATUS = 2
STORE_ERROR_STATUS = 1


def _fail(message: object, status: int) -> NoReturn:
    if isinstance(message, SecretMissing) and message.variable:
        message = (
            f"{message}. MCP clients start servers with a stripped environment: put {message.variable} in this "
            'server\'s "env" in the client config (or use {$file: PATH} in the mesh config)'
        )
    sys.stderr.write(f"mcpwrap: {message}\n")
    sys.stderr.flush()
    sys.exit(status)


def load(config_path: str | None, state_dir: str | None = None, *, note_checked: bool = False) -> LoadedConfig:
    """The config (found as ARCHITECTURE §5 says), fully checked — policies compiled too — so a wrong one
    exits 2 with `file:line: key: message` before anything is started. `state_dir` overrides the config's.
    With `note_checked`, a clean check is recorded (mcpwrap.checked) so the next start can launch first."""
    env = RecordingEnv(os.environ)
    try:
        loaded = load_config(config_path, env)
        compile_policies(loaded)
    except ConfigError as exc:
        _fail(exc, CONFIG_ERROR_STATUS)
    if note_checked:
        found = None if loaded.file.startswith("<") else loaded.file  # what was checked, wherever it came from
        folder = policy_folder(found, loaded.config.policy_dir)
        remember(found, state_dir, folder, env.names, Checked(listen=loaded.config.proxy.listen))
    if state_dir is None:
        return loaded
    config = loaded.config.model_copy(update={"state_dir": os.path.abspath(os.path.expanduser(state_dir))})
    return LoadedConfig(config, loaded.sources, loaded.file)


def pinned_settings(config_path: str | None) -> tuple[str | None, str | None]:
    """(config, state_dir) to write into a client config or shim, so mcpwrap runs the same mesh whatever folder
    a client starts it in: the config the active-mesh rule finds now (flag, $AGENT_MESH_CONFIG, registered),
    by absolute path. With none (the built-in default) nothing is pinned: the entry follows the active mesh,
    so a config registered later (`agent-mesh serve`, `agent-mesh use`) applies on the server's next start.
    The state dir is the config's own. Exits 2 when the config is wrong."""
    try:
        found = find_config(config_path)
    except ValueError as exc:  # a damaged registry
        _fail(exc, CONFIG_ERROR_STATUS)
    load(found)
    return (os.path.abspath(found), None) if found is not None else (None, None)


def open_gate(config: str | LoadedConfig | None) -> Gate:
    """A Gate on the config's state dir; exit 2 on a config error, 1 when the store is unavailable."""
    from policy import Gate, StoreUnavailable  # after the config check: the store and trace load here

    loaded = config if isinstance(config, LoadedConfig) else load(config)
    try:
        return Gate.open(loaded)
    except ConfigError as exc:
        _fail(exc, CONFIG_ERROR_STATUS)
    except StoreUnavailable as exc:
        _fail(f"the state store is unavailable: {exc}", STORE_ERROR_STATUS)
