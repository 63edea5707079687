"""What makes a CLI other than git run code the command line does not name: options and environment.

`kubectl --kubeconfig F get pods` runs F's exec credential plugin, `cargo --config 'alias.get="run"' get`
runs the project, `LD_PRELOAD=x.so` runs x.so inside any binary, `PAGER='sh -c …'` runs under `git show`.
`findings` lists them so a call that has any is judged `BIN.config-exec` (as git's are, see gitargv), never
as the plain read a `kubectl.get: allow` would pass. `external` says when a read-named subcommand is not
one of the binary's own (`cargo get` is an alias or a `cargo-get` program on PATH).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Per binary: options (anywhere on the line: cobra and clap take global flags after the subcommand) that make
# it read a config able to run programs, or run one itself.
EXEC_OPTIONS: dict[str, tuple[str, ...]] = {
    "kubectl": ("--kubeconfig",),
    "helm": ("--kubeconfig", "--post-renderer"),
    "docker": ("--config", "-H", "--host"),
    "cargo": ("--config", "-Z"),
    "pip": ("--python",),
    "uv": ("--python", "-p", "--config-file"),
    "systemctl": ("-H", "--host", "-M", "--machine"),
    "npm": ("--userconfig", "--globalconfig", "--script-shell", "--node-options"),
}
EXEC_OPTIONS["podman"] = EXEC_OPTIONS["docker"]
EXEC_OPTIONS["pip3"] = EXEC_OPTIONS["pip"]
# Options that run a program only for an ssh:// value (else they name a daemon's socket or TCP address).
_SSH_ONLY = {"docker": ("-H", "--host"), "podman": ("-H", "--host")}
# Parsers that take any unambiguous prefix of a long option (`pip --pyth`).
ABBREVIATING = frozenset({"pip", "pip3", "npm"})

# Per binary: environment variables (or prefixes ending in `_`) with the same effect.
EXEC_ENV: dict[str, tuple[str, ...]] = {
    "kubectl": ("KUBECONFIG", "KUBECTL_EXTERNAL_DIFF"),
    "helm": ("KUBECONFIG", "HELM_PLUGINS", "HELM_POST_RENDERER"),
    "docker": ("DOCKER_CONFIG", "DOCKER_HOST", "DOCKER_CONTEXT"),
    "cargo": ("CARGO_ALIAS_", "CARGO_HOME", "RUSTC_WRAPPER", "RUSTC", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_"),
    "pip": ("PIP_PYTHON", "PIP_CONFIG_FILE"),
    "uv": ("UV_PYTHON", "UV_CONFIG_FILE"),
    "terraform": ("TF_CLI_CONFIG_FILE", "TF_DATA_DIR", "TF_PLUGIN_CACHE_DIR"),
    "npm": ("NPM_CONFIG_", "npm_config_"),
    "gh": ("GH_PAGER", "GH_BROWSER"),
    "aws": ("AWS_PAGER", "AWS_CONFIG_FILE"),
    "systemctl": ("SYSTEMD_PAGER", "SYSTEMD_LESS"),
}
EXEC_ENV["podman"] = (*EXEC_ENV["docker"], "CONTAINERS_CONF")
EXEC_ENV["pip3"] = EXEC_ENV["pip"]
# Any binary: the loader's and the interpreters' hooks, and the pager a CLI starts on a terminal.
ANY_ENV = (
    "LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH", "GCONV_PATH", "BASH_ENV", "ENV", "SHELLOPTS", "PS4",
    "BASH_FUNC_", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "NODE_OPTIONS", "NODE_PATH",
    "PERL5OPT", "PERL5LIB", "RUBYOPT", "RUBYLIB", "PAGER", "LESSOPEN", "LESSCLOSE",
)  # fmt: skip
# Values of the above that run nothing new: a plain pager, Debian's lesspipe.
_HARMLESS = {
    "PAGER": re.compile(r"^(?:|(?:/usr)?/bin/)?(?:less|more|cat|most)?(?: -[A-Za-z]+)*$"),
    "LESSOPEN": re.compile(r"^\|{0,2} ?/usr/bin/lesspipe(?:\.sh)? %s(?: %s)?$"),
    "LESSCLOSE": re.compile(r"^/usr/bin/lesspipe(?:\.sh)? %s %s$"),
}

# The read-named subcommands (policy/core/default.yaml's words) each binary has built in. Another read word is an
# alias or an external program (`cargo-get`, `docker-list`, a `gh` extension) the agent may have written.
BUILTIN_READS: dict[str, frozenset[str]] = {
    "git": frozenset({"show"}),
    "kubectl": frozenset({"get", "describe"}),
    "docker": frozenset({"search"}),
    "podman": frozenset({"search"}),
    "helm": frozenset({"get", "list", "search", "show"}),
    "cargo": frozenset({"search"}),
    "gh": frozenset({"search"}),
    "npm": frozenset({"view", "search", "list", "find", "show"}),
    "pip": frozenset({"show", "list", "search"}),
    "pip3": frozenset({"show", "list", "search"}),
    "terraform": frozenset({"show"}),
    "systemctl": frozenset({"show"}),
}
READ_WORDS = frozenset({"read", "get", "list", "search", "find", "query", "describe", "show", "view"})


def findings(name: str, args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The options and environment variables of a command line that run code (sorted, distinct)."""
    found = set(env_findings(name, env))
    options = EXEC_OPTIONS.get(name, ())
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        option, eq, value = arg.partition("=")
        for known in options:
            attached = len(known) == 2 and arg.startswith(known) and len(arg) > 2  # `-Hssh://h`
            if option == known or attached or (name in ABBREVIATING and len(option) > 3 and known.startswith(option)):
                value = value if eq else arg[2:] if attached else (args[i + 1] if i + 1 < len(args) else "")
                if name in _SSH_ONLY and known in _SSH_ONLY[name] and "ssh:" not in value:
                    continue  # a daemon over TCP or a socket: no program of the agent's runs here
                found.add(known)
    return sorted(found)


def env_findings(name: str, env: Mapping[str, str]) -> list[str]:
    """The environment variables that make binary `name` run code, with a value that is not harmless."""
    watched = (*ANY_ENV, *EXEC_ENV.get(name, ()))
    found = []
    for var, value in env.items():
        if any(var == w or (w.endswith("_") and var.startswith(w)) for w in watched):
            harmless = _HARMLESS.get(var)
            if harmless is None or harmless.match(value.strip()) is None:
                found.append(var)
    return found


def external(name: str, sub: str) -> bool:
    """Whether `sub` is named like a read but is not one of `name`'s own subcommands."""
    builtins = BUILTIN_READS.get(name)
    return builtins is not None and sub in READ_WORDS and sub not in builtins
