"""The files beside the state dir that the argument guard must cover too: those that choose the policy.

With hot reload (policy.mesh.reload) a written config file is a new policy within a second, a file added to its
`policy_dir` is loaded with it, and the registry of the active mesh (`$XDG_CONFIG_HOME/agent-mesh/active.json`)
picks the policy of every process started next (`mcpwrap exec` is one per call). An agent that can write any of
them grants itself what it likes; one that reads a `{$file}` secret holds an agent's token. So the guard refuses
a call naming them, in every spelling it reads for the state dir (policy.core.guard). The registry's whole folder
is covered: `agent-mesh use` writes a temporary file there and renames it over `active.json`.

Computed once per loaded config (at gate open and on each reload), never per call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel

from policy.core.config import LoadedConfig
from policy.core.guard import state_guard
from policy.core.model import Decision, ToolCall
from policy.core.secrets import SecretRef


class Guarded(NamedTuple):
    """`files` choose the policy (refused when named); `secrets` are read by the mesh alone (refused when named,
    and to a recursive tool over a folder holding one, as the state dir is)."""

    files: tuple[str, ...]
    secrets: tuple[str, ...]


def registry_folder(env: Mapping[str, str] | None = None) -> str:
    """The registry's folder, `$XDG_CONFIG_HOME/agent-mesh` else `~/.config/agent-mesh`: the rule of
    policy.mesh.active.config_home, restated here because the core sits below the mesh layer (a test holds
    the two equal)."""
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "agent-mesh")


def guarded_files(loaded: LoadedConfig, env: Mapping[str, str] | None = None) -> Guarded:
    """Absolute paths of the config file, its policy_dir and local OpenAPI specs, the registry's folder, and each
    `{$file}` secret (the built-in default has no file of its own: only the registry and secrets)."""
    files: list[str] = [registry_folder(env)]
    if not loaded.file.startswith("<"):
        config_file = os.path.abspath(loaded.file)
        files.append(config_file)
        folder = os.path.dirname(config_file)
        policy_dir = loaded.config.policy_dir
        if policy_dir:
            files.append(os.path.join(folder, os.path.expanduser(policy_dir)))
        # A local OpenAPI spec names the operations rules match (`github.getRepo`): rewritten, it renames them.
        for server in loaded.config.servers.values():
            spec = server.openapi
            if spec and not spec.startswith(("http://", "https://")):
                files.append(os.path.join(folder, os.path.expanduser(spec)))
    secrets = [
        os.path.join(r.base_dir, os.path.expanduser(r.name)) for r in _secrets(loaded.config) if r.kind == "file"
    ]
    # and those read when the config loaded (a `{$file}` outside the keys kept unread: a rule's reason, a header)
    for lines in (loaded.lines, *(source.lines for source in loaded.sources)):
        secrets += lines.secret_files
    return Guarded(_absolute(files), _absolute(secrets))


def mesh_guard(loaded: LoadedConfig, env: Mapping[str, str] | None = None) -> Callable[[ToolCall], Decision | None]:
    """The argument guard of a gate running `loaded`: its state dir, and the files that choose its policy."""
    guarded = guarded_files(loaded, env)
    return state_guard(loaded.config.state_dir, also=guarded.files + guarded.secrets, walked=guarded.secrets)


def _absolute(paths: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(os.path.normpath(os.path.abspath(p)) for p in paths))


def _secrets(value: Any, depth: int = 0) -> Iterator[SecretRef]:
    """Every SecretRef in a config model (the lazy ones: agent tokens, control token, notify and supervisor)."""
    if isinstance(value, SecretRef):
        yield value
    elif depth > 16:
        return
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secrets(getattr(value, name), depth + 1)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secrets(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secrets(item, depth + 1)
