"""Where the configuration file is (ARCHITECTURE §5), without loading anything heavy.

Kept apart from `policy.core.config` (pydantic, YAML) so that `mcpwrap` can find and fingerprint the config
before it imports the rest of the core (see `mcpwrap.checked`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_CONFIG_NAME = "agent-mesh.yaml"
ENV_VAR = "AGENT_MESH_CONFIG"


def find_config(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """`--config`, else `$AGENT_MESH_CONFIG`, else `./agent-mesh.yaml`, else None (the built-in default)."""
    env = os.environ if env is None else env
    if explicit:
        return explicit
    if env.get(ENV_VAR):
        return env[ENV_VAR]
    if os.path.isfile(DEFAULT_CONFIG_NAME):
        return DEFAULT_CONFIG_NAME
    return None


def default_config_path() -> str:
    """The file holding the built-in default configuration (YAML)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "core", "default.yaml")
