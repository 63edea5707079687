"""Where the configuration file is (ARCHITECTURE §5), without loading anything heavy.

Kept apart from `policy.core.config` (pydantic, YAML) so that `mcpwrap` can find and fingerprint the config
before it imports the rest of the core (see `mcpwrap.checked`). The rule itself is `policy.mesh.active`.
"""

from __future__ import annotations

from collections.abc import Mapping

from policy.core.builtin import default_config_path
from policy.mesh.active import ENV_VAR, default_state_dir, resolve

DEFAULT_CONFIG_NAME = "agent-mesh.yaml"

__all__ = ["DEFAULT_CONFIG_NAME", "ENV_VAR", "default_config_path", "default_state_dir", "find_config"]


def find_config(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """`--config`, else `$AGENT_MESH_CONFIG`, else the registered mesh, else None (the built-in default).

    The working directory is not looked at: `./agent-mesh.yaml` counts only when named. Raises
    `policy.mesh.active.RegistryError` (a ValueError) when the registry file is damaged."""
    return resolve(explicit, env).config
