"""Name a command line as a tool: `git -C repo push --force` is `git.push` (pure, table-driven).

Only binaries known to take subcommands get one, and their global options that take a separate value
(`git -C dir`, `kubectl -n prod`, `docker --context x`) are skipped with it, so they cannot pose as the
subcommand. Any other binary is named by itself: `rm -rf x` is `rm`. git is parsed further (`gitargv`):
a call that defines an alias is `git.alias`, one whose config, options or environment run code is
`git.config-exec`, and `command_arguments` gives rules what it found (`args.config`, `args.env`,
`args.exec`, `args.force`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mcpwrap.cliexec import env_findings, external, findings
from mcpwrap.gitargv import GLOBAL_VALUE_OPTIONS, PUSHERS, judged_name, parse_git
from mcpwrap.wrapped import judge_wrapped

# Where system binaries live (policy/core/default.yaml asks the same of `args.program`).
_SYSTEM = re.compile(r"^/(?:usr/(?:local/)?)?s?bin/[^/]+$")

# Per binary: the global options whose value is the next argument (the `--opt=value` form needs no entry).
VALUE_OPTIONS: dict[str, frozenset[str]] = {
    "git": GLOBAL_VALUE_OPTIONS,  # `--exec-path` alone prints a path; `--exec-path=DIR` sets it
    "kubectl": frozenset(
        {"-n", "--namespace", "--context", "--cluster", "--user", "-s", "--server", "--kubeconfig",
         "--token", "--as", "--as-group", "--as-uid", "--request-timeout", "--certificate-authority",
         "--client-certificate", "--client-key", "--tls-server-name", "-v", "--v", "--log-dir",
         "--cache-dir", "--username", "--password", "-l", "--selector", "-o", "--output", "-f", "--filename"}
    ),
    "docker": frozenset(
        {"-c", "--context", "-H", "--host", "--config", "-l", "--log-level", "--tlscacert", "--tlscert", "--tlskey"}
    ),
    "helm": frozenset(
        {"-n", "--namespace", "--kube-context", "--kubeconfig", "--kube-apiserver", "--kube-as-user",
         "--kube-as-group", "--kube-token", "--kube-ca-file", "--registry-config", "--repository-cache",
         "--repository-config", "--burst-limit", "--qps"}
    ),
    "npm": frozenset({"--prefix", "-C", "--workspace", "-w", "--registry", "--userconfig", "--cache", "--loglevel"}),
    "cargo": frozenset({"-C", "--config", "-Z", "--color"}),
    "aws": frozenset({"--profile", "--region", "--output", "--endpoint-url", "--query", "--ca-bundle",
                      "--cli-read-timeout", "--cli-connect-timeout", "--color"}),
    "gh": frozenset({"-R", "--repo", "--hostname"}),
    "terraform": frozenset(),
    "systemctl": frozenset({"-H", "--host", "-M", "--machine", "-t", "--type", "-p", "--property", "--state",
                            "-o", "--output", "-n", "--lines", "-s", "--signal"}),
    "pip": frozenset({"--python", "--log", "--proxy", "--retries", "--timeout", "--exists-action",
                      "--trusted-host", "--cert", "--client-cert", "--cache-dir"}),
    "uv": frozenset({"--directory", "--project", "--config-file", "--cache-dir", "--color", "--python", "-p"}),
}  # fmt: skip
VALUE_OPTIONS["podman"] = VALUE_OPTIONS["docker"] | {"--connection", "--url", "--identity", "--root", "--runroot"}
VALUE_OPTIONS["pip3"] = VALUE_OPTIONS["pip"]
_PARSED = frozenset(VALUE_OPTIONS)


def binary_name(arg0: str) -> str:
    """`/usr/bin/git` -> `git`. Raises ValueError on an empty command."""
    name = os.path.basename(arg0.rstrip("/"))
    if not name:
        raise ValueError("no command given")
    return name


def subcommand(name: str, args: Sequence[str]) -> str | None:
    """The subcommand of binary `name` given its arguments (without argv[0]); None if it has none."""
    takes_value = VALUE_OPTIONS.get(name)
    if takes_value is None:
        return None
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == "--":
            return args[i + 1] if i + 1 < len(args) and args[i + 1] else None
        if arg.startswith("-") and arg != "-":
            skip = arg in takes_value
            continue
        return arg or None
    return None


def tool_of(argv: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(server, tool) for a command line: ("git", "push") for `git -C d push`, ("", "rm") for `rm -rf x`,
    ("git", "alias") for `git -c alias.x=... x`. `env` is the environment the command will run with."""
    server, tool, _ = judge_wrapped(argv, {} if env is None else env, describe, _PARSED)
    return server, tool


def describe(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, str, dict[str, Any]]:
    """(server, tool, arguments beyond argv and cwd) for a command line run with environment `env`."""
    if not argv:
        raise ValueError("no command given")
    name = binary_name(argv[0])
    extra: dict[str, Any] = {}
    if "/" in argv[0]:
        extra["program"] = argv[0]  # the file that will run: `/tmp/x/git` is not the system's git
    else:
        from mcpwrap.execute import resolve_binary  # (execute uses this module: imported when first needed)

        resolved = resolve_binary(argv[0], env.get("PATH", os.defpath))  # what exec will run, shims skipped
        if resolved is not None and not _SYSTEM.match(resolved):
            extra["program"] = resolved  # the agent's PATH finds its own `git` first
    if name == "git":
        git = parse_git(argv[1:], env)
        git.exec.update(env_findings(name, env))  # LD_PRELOAD, PAGER…: git's own GIT_* are parsed there
        sub = judged_name(git)
        extra["subcommand"] = git.subcommand or ""
        if git.config:
            extra["config"] = git.config
        if git.env:
            extra["env"] = git.env
        if git.exec:
            extra["exec"] = sorted(git.exec)
        if git.aliases:
            extra["alias"] = sorted(git.aliases)
        if git.subcommand == "push" or git.subcommand in PUSHERS:
            extra["force"] = git.force
            extra["delete"] = git.delete
        if git.subcommand and external(name, git.subcommand):
            extra["external"] = True
    else:
        sub = subcommand(name, argv[1:])
        runs = findings(name, argv[1:], env)
        if sub and external(name, sub):
            extra["external"] = True  # an alias or a `BIN-SUB` program, not the binary's own read
        if runs:
            extra["exec"] = runs
            extra["subcommand"] = sub or ""
            sub = "config-exec"
    return (name, sub, extra) if sub else ("", name, extra)


def command_arguments(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> tuple[str, str, dict[str, Any]]:
    """(server, tool, arguments) of the ToolCall for a command line: `argv` (program by base name), `cwd`,
    and what `describe` found."""
    server, tool, extra = judge_wrapped(argv, env, describe, _PARSED)
    return server, tool, {"argv": [binary_name(argv[0]), *argv[1:]], "cwd": cwd, **extra}
