"""Command lines that walk folders: which paths `grep -r`, `find`, `rsync -a`, `tar c` … will read or change.

A recursive tool over an ancestor of the state dir reaches `operator.token` without naming it. This reads an
argv (or the simple commands of a shell line) and gives the folders each recursive command walks: its
arguments that exist, else the working directory (where `grep -r TOKEN` and `find` start). Pure but for
`exists`, which the caller passes in.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable, Iterator, Sequence

# Always walk folders given to them (or the cwd).
ALWAYS = frozenset({"rg", "ag", "ack", "find", "fd", "fdfind", "du", "tree", "tar", "bsdtar", "7z", "7za", "mv"})
# Walk folders with one of these flags: short letters (alone or combined, `-rn`) and long options.
FLAGGED: dict[str, tuple[str, frozenset[str]]] = {
    "grep": ("rR", frozenset({"--recursive", "--dereference-recursive", "--directories=recurse"})),
    "rsync": ("ar", frozenset({"--recursive", "--archive"})),
    "cp": ("rRa", frozenset({"--recursive", "--archive"})),
    "scp": ("r", frozenset()),
    "ls": ("R", frozenset({"--recursive"})),
    "zip": ("rR", frozenset({"--recurse-paths", "--recurse-patterns"})),
    "rm": ("rR", frozenset({"--recursive"})),
    "chmod": ("R", frozenset({"--recursive"})),
    "chown": ("R", frozenset({"--recursive"})),
    "chgrp": ("R", frozenset({"--recursive"})),
    "setfacl": ("R", frozenset({"--recursive"})),
}
FLAGGED["egrep"] = FLAGGED["fgrep"] = FLAGGED["grep"]
# git subcommands that walk ignored files (the state dir ignores itself, see statedir.py), with the flags that
# make them do so; `clean` and `mv`/`rm` of a folder change it whatever their flags.
GIT_WALKS: dict[str, tuple[str, frozenset[str]] | None] = {
    "clean": None,
    "mv": None,
    "rm": ("r", frozenset({"-r"})),
    "add": ("f", frozenset({"--force"})),
    "stash": ("a", frozenset({"--all"})),
    "grep": ("", frozenset({"--no-index", "--untracked"})),
}
# git's global options that take the next argument as their value (`-C DIR` also moves the cwd).
GIT_VALUE_OPTIONS = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env", "--exec-path"}
)
# Run the command that follows them: `nice grep -r x .`, `env A=1 find /`, `timeout 5 rg x`, `xargs grep -r`.
WRAPPERS = frozenset(
    {"env", "nice", "nohup", "timeout", "sudo", "doas", "command", "exec", "time", "stdbuf", "ionice", "xargs",
     "busybox", "setsid", "chroot", "unbuffer", "watch", "flock"}
)  # fmt: skip
# Follow symlinks met while walking: with these flags, or always (`zip` unless `-y`, `scp -r`, `7z`).
FOLLOWING: dict[str, tuple[str, frozenset[str]]] = {
    "grep": ("R", frozenset({"--dereference-recursive"})),
    "rg": ("L", frozenset({"--follow"})),
    "ag": ("f", frozenset({"--follow"})),
    "ack": ("", frozenset({"--follow"})),
    "find": ("L", frozenset({"-follow"})),
    "fd": ("L", frozenset({"--follow"})),
    "du": ("L", frozenset({"--dereference"})),
    "tree": ("l", frozenset()),
    "tar": ("h", frozenset({"--dereference"})),
    "cp": ("L", frozenset({"--dereference"})),
    "rsync": ("LkK", frozenset({"--copy-links", "--copy-dirlinks", "--keep-dirlinks", "--copy-unsafe-links"})),
    "ls": ("L", frozenset({"--dereference"})),
    "chmod": ("L", frozenset()),
    "chown": ("L", frozenset()),
    "chgrp": ("L", frozenset()),
}
FOLLOWING["egrep"] = FOLLOWING["fgrep"] = FOLLOWING["grep"]
FOLLOWING["fdfind"] = FOLLOWING["fd"]
ALWAYS_FOLLOWING = frozenset({"scp", "7z", "7za"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish"})
# Every command name this module knows to walk folders (a string naming none of them is no shell line to read).
WALKERS = ALWAYS | FLAGGED.keys() | {"git"}
_OPERATORS = frozenset({";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "\n"})


def commands_of(argv: Sequence[str], depth: int = 0) -> Iterator[list[str]]:
    """The simple commands an argv runs: itself without wrappers, and the commands of `sh -c SCRIPT`."""
    argv = list(argv)
    while argv and _name(argv[0]) in WRAPPERS:
        argv = _unwrap(argv)
    if not argv:
        return
    name = _name(argv[0])
    if name in SHELLS and depth < 4:
        for i, arg in enumerate(argv[1:], 1):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg and i + 1 < len(argv):
                for command in split_shell(argv[i + 1]):
                    yield from commands_of(command, depth + 1)
                return
    yield argv


def split_shell(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell line, split at `;`, `&&`, `|`, newlines… (best effort: a line that
    does not parse is split on whitespace, so its words are still seen)."""
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        tokens = script.split()
    command: list[str] = []
    for token in tokens:
        if token in _OPERATORS or set(token) <= set(";&|()\n"):
            if command:
                yield command
            command = []
        else:
            command.append(token)
    if command:
        yield command


def walked(argv: Sequence[str], cwd: str, exists: Callable[[str], bool]) -> list[str] | None:
    """The paths (absolute or relative to `cwd`) a recursive command walks; None when it walks nothing."""
    if not argv:
        return None
    name = _name(argv[0])
    args = list(argv[1:])
    if name == "git":
        cwd, args = _git_subcommand(args, cwd)
        if not args or args[0] not in GIT_WALKS:
            return None
        rule = GIT_WALKS[args[0]]
        args = args[1:]
        if rule is not None and not _has_flag(args, *rule):
            return None
    elif name not in ALWAYS:
        rule = FLAGGED.get(name)
        if rule is None or not _has_flag(args, *rule):
            return None
    candidates: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            _, eq, value = arg.partition("=")
            if eq and value:
                candidates.append(value)
            continue
        candidates.append(arg)
    present = [joined for c in candidates if exists(joined := posixpath.join(cwd, c))]
    return present or [cwd]


def follows_links(argv: Sequence[str]) -> bool:
    """Whether a recursive command follows the symlinks it meets inside the folders it walks."""
    name = _name(argv[0])
    args = argv[1:]
    if name in ALWAYS_FOLLOWING:
        return True
    if name == "zip":
        return not _has_flag(args, "y", frozenset({"--symlinks"}))
    if name in ("tar", "bsdtar") and args and not args[0].startswith("-") and "h" in args[0]:
        return True  # old-style letters without a dash: `tar czhf out.tgz dir`
    rule = FOLLOWING.get(name)
    if rule is None:
        return False
    # find's -L and -follow are options of its own kind: single-dash words, looked for as such
    return bool(name == "find" and {"-L", "-follow"} & set(args)) or _has_flag(args, *rule)


def _git_subcommand(args: list[str], cwd: str) -> tuple[str, list[str]]:
    """(the cwd git works in, its arguments from the subcommand on) for `git [-C DIR] [-c k=v] … SUB …`."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        option, eq, value = args[i].partition("=")
        if not eq and option in GIT_VALUE_OPTIONS and i + 1 < len(args):
            i += 1
            value = args[i]
        if option in ("-C", "--work-tree"):
            cwd = posixpath.join(cwd, value)
        i += 1
    return cwd, args[i:]


def _has_flag(args: Sequence[str], letters: str, long: frozenset[str]) -> bool:
    for arg in args:
        if arg == "--":
            return False
        if arg.startswith("--"):
            if arg in long or arg.partition("=")[0] in long:
                return True
        elif arg.startswith("-") and any(c in letters for c in arg[1:]):
            return True
    return False


def _unwrap(argv: list[str]) -> list[str]:
    """The command a wrapper runs: skip its options, `VAR=value` words and a leading number (timeout, nice)."""
    rest = argv[1:]
    while rest and (rest[0].startswith("-") or "=" in rest[0] or rest[0].replace(".", "").isdigit()):
        rest = rest[1:]
    return rest


def _name(arg0: str) -> str:
    return arg0.rstrip("/").rsplit("/", 1)[-1].lower()
