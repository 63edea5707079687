"""Command lines that run another command: `env A=1 git push -f`, `timeout 60 git push -f`, `sh -c '…'`.

A rule on `git.push` must hold whatever runs git: a wrapper (`env`, `nice`, `timeout`, `sudo`, `xargs`, …)
is judged as the command it runs, and so is a shell line whose one command is a CLI with a subcommand
parser (`sh -c 'git push -f'` is `git.push`); `args.wrapper` names what ran it. Any other shell line keeps
the shell's name (a `tools: [sh]` rule still holds) and lists what it runs in `args.commands`, with
`args.force` set when one of them force-pushes. The unwrapping is the state-dir guard's (policy/guard_cli).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from policy.core.guard_cli import WRAPPERS, commands_of

Describe = Callable[[Sequence[str], Mapping[str, str]], tuple[str, str, dict[str, Any]]]


def inner_commands(argv: Sequence[str]) -> list[list[str]] | None:
    """The commands a wrapper or a shell line runs (without `cd`), or None when `argv` runs itself only."""
    try:
        found = [c for c in commands_of(argv) if c and c[0] and c[0] not in ("cd", "pushd")]
    except ValueError:  # nested past what is read: judged as itself (the guard refuses it anyway)
        return None
    if len(found) == 1 and found[0] == list(argv):
        return None
    return found


def wrapper_env(argv: Sequence[str], inner: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """The environment `inner` runs with: `env`'s and the shell's `VAR=value` words before it added."""
    merged = dict(env)
    for word in argv[: max(len(argv) - len(inner), 0)]:
        name, eq, value = word.partition("=")
        if eq and name.isidentifier() and not word.startswith("-"):
            merged[name] = value
    return merged


def judge_wrapped(
    argv: Sequence[str], env: Mapping[str, str], describe: Describe, parsed: frozenset[str]
) -> tuple[str, str, dict[str, Any]]:
    """(server, tool, extra arguments) for a command line, seen through wrappers and one-command shells.
    `parsed`: the binaries with a subcommand parser."""
    inner = inner_commands(argv)
    if not inner:
        return describe(argv, env)
    try:
        return _through(argv, env, describe, parsed, inner)
    except ValueError:  # an inner command that names nothing: judged as what was written
        return describe(argv, env)


def _through(
    argv: Sequence[str], env: Mapping[str, str], describe: Describe, parsed: frozenset[str], inner: list[list[str]]
) -> tuple[str, str, dict[str, Any]]:
    wrapper = argv[0].rstrip("/").rsplit("/", 1)[-1]
    by_wrapper = wrapper.lower() in WRAPPERS
    if len(inner) == 1 and (by_wrapper or inner[0][0].rstrip("/").rsplit("/", 1)[-1] in parsed):
        server, tool, extra = describe(inner[0], wrapper_env(argv, inner[0], env))
        extra["wrapper"] = wrapper
        return server, tool, extra
    server, tool, extra = describe(argv, env)
    commands = []
    for command in inner:
        sub_server, sub_tool, sub_extra = describe(command, env)
        commands.append(f"{sub_server}.{sub_tool}" if sub_server else sub_tool)
        if sub_extra.get("force"):
            extra["force"] = True
    extra["commands"] = commands
    return server, tool, extra
