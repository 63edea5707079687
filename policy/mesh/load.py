"""Loading the active mesh's config: the one resolution rule (`policy.mesh.active`) applied, then the core's
loader. Every command and process loads its config through `load_config` here, so none depends on its folder."""

from __future__ import annotations

from collections.abc import Mapping

from policy.core.config import LoadedConfig, load_config_file, load_default_config
from policy.core.errors import ConfigError
from policy.mesh.active import RegistryError
from policy.mesh.locate import default_state_dir, find_config

__all__ = ["find_config", "load_config"]


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """The config at `path`, else the active mesh's (env, then the registry); the built-in default when none."""
    try:
        found = find_config(path, env)
    except RegistryError as exc:  # a damaged registry: never another policy silently
        raise ConfigError(exc.reason, file=exc.path) from None
    if found is None:
        # The built-in default keeps its state in the user's data dir, wherever the command runs.
        return load_default_config(default_state_dir(env), env)
    return load_config_file(found, env)
