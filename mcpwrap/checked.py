"""A record that a configuration's exact inputs were checked, so a process can start work before re-checking.

Loading and checking the config (YAML, pydantic, compiled policies) takes most of `mcpwrap`'s start-up.
After a config has loaded cleanly, `remember` stores a fingerprint of everything the check read: the
config file's bytes (or the built-in default's), every file of its `policy_dir`, the `{$env: NAME}` values
it used (hashed, never stored), the working directory, the `--state-dir` override and the core's own code.
`recall` recomputes that fingerprint from the files as they are now, with nothing heavier than `hashlib`,
and says whether the same inputs were already found valid.

This only reorders start-up; it never replaces the check. `mcpwrap` starts the server on a match and
still loads and checks the config fully before a single frame reaches the server (it stops the server
and exits 2 if that check fails). A config never checked, or changed in any input since, gets no match:
its server also starts first unless the environment has proxy variables (their tagging needs the
config's proxy.listen: then it is checked first, and a wrong one starts nothing); see mcpwrap.launch. The
records live in the user's cache directory; a forged one can at most start a server that is stopped
again before it hears anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping

from policy.mesh.locate import default_config_path, find_config

_FORMAT = 1
# Records kept (one per working directory, config and --state-dir); the least recently used go first.
MAX_RECORDS = 256
_POLICY_SUFFIXES = (".yaml", ".yml")


class Checked:
    """What a start-up needs from a config that is known to be valid, before loading it."""

    def __init__(self, listen: str) -> None:
        self.listen = listen  # proxy.listen: tags the server's own HTTPS_PROXY egress with the session


def cache_dir(env: Mapping[str, str] | None = None) -> str:
    """`$XDG_CACHE_HOME/agent-mesh/checked`, else `~/.cache/agent-mesh/checked`."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "agent-mesh", "checked")


def policy_folder(found: str | None, policy_dir: str | None) -> str | None:
    """The absolute folder a config's `policy_dir` names (relative to the config file's folder)."""
    if not policy_dir:
        return None
    base = os.path.dirname(found) if found else "."
    return os.path.abspath(os.path.join(base, os.path.expanduser(policy_dir)))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _code_stamp() -> list[tuple[str, int, int]]:
    # The modules that judge a config valid (and the built-in default): a new version rechecks everything.
    here = os.path.dirname(default_config_path())
    with os.scandir(here) as entries:
        return sorted(
            (e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.name.endswith((".py", ".yaml"))
        )


def _policy_files(folder: str | None) -> list[tuple[str, str | None]]:
    if folder is None:
        return []
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(_POLICY_SUFFIXES))
    except OSError:
        return [("<unreadable>", None)]
    out = []
    for name in names:
        data = _read(os.path.join(folder, name))
        out.append((name, None if data is None else hashlib.sha256(data).hexdigest()))
    return out


def _fingerprint(
    found: str | None, state_dir: str | None, policy_dir: str | None, env_names: Iterable[str], env: Mapping[str, str]
) -> str | None:
    config = _read(found if found is not None else default_config_path())
    if config is None:
        return None
    values = {name: hashlib.sha256(env[name].encode()).hexdigest() if name in env else None for name in env_names}
    inputs = {
        "format": _FORMAT,
        "code": _code_stamp(),
        "cwd": os.getcwd(),
        "home": os.path.expanduser("~"),  # `~` in policy_dir and state_dir
        "config": [found, hashlib.sha256(config).hexdigest()],
        "state_dir": state_dir,
        "policy_dir": [policy_dir, _policy_files(policy_dir)],
        "env": sorted(values.items()),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _record_path(found: str | None, state_dir: str | None, env: Mapping[str, str]) -> str:
    key = json.dumps([os.getcwd(), found, state_dir]).encode()
    return os.path.join(cache_dir(env), hashlib.sha256(key).hexdigest()[:32] + ".json")


def recall(explicit: str | None, state_dir: str | None, env: Mapping[str, str] | None = None) -> Checked | None:
    """The checked facts when the config that `explicit` finds has the inputs of an earlier clean check."""
    env = os.environ if env is None else env
    try:
        found = find_config(explicit, env)
        path = _record_path(found, state_dir, env)
        data = _read(path)
        if data is None:
            return None
        record = json.loads(data)
        if record.get("format") != _FORMAT:
            return None
        now = _fingerprint(found, state_dir, record["policy_dir"], record["env"], env)
        if now is None or now != record["fingerprint"]:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        return Checked(listen=str(record["listen"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no usable record: the ordinary path checks first


def remember(
    found: str | None,
    state_dir: str | None,
    policy_dir: str | None,
    env_names: Iterable[str],
    checked: Checked,
    env: Mapping[str, str] | None = None,
) -> None:
    """Record that the config `found` (None: the built-in default) loaded cleanly with these inputs.

    `policy_dir` is the absolute folder its `policy_dir` named, `env_names` the `{$env: NAME}` it read.
    Best effort: a cache directory that cannot be written only means the next start checks first again.
    """
    env = os.environ if env is None else env
    names = sorted(set(env_names))
    fingerprint = _fingerprint(found, state_dir, policy_dir, names, env)
    if fingerprint is None:
        return
    record = {"format": _FORMAT, "fingerprint": fingerprint, "policy_dir": policy_dir, "env": names}
    record["listen"] = checked.listen
    path = _record_path(found, state_dir, env)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    _prune(os.path.dirname(path))


def _prune(folder: str) -> None:
    with contextlib.suppress(OSError):
        with os.scandir(folder) as entries:
            records = [(e.stat().st_mtime_ns, e.path) for e in entries if e.name.endswith(".json")]
        if len(records) > MAX_RECORDS:
            for _, old in sorted(records)[: len(records) - MAX_RECORDS]:
                with contextlib.suppress(OSError):
                    os.unlink(old)


class RecordingEnv(Mapping[str, str]):
    """An environment mapping that notes which names were looked up (to fingerprint `{$env: NAME}`)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self._env[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.names.add(name)
        return name in self._env

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)
