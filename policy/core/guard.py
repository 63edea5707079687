"""The built-in guard: no tool call may reach the mesh's own state (approvals, grants, the operator token).

An agent that could write `state.db` or read `operator.token` could approve its own calls, so any call whose
arguments name the state dir is denied before the policy is consulted — whatever the policy says. It is a
seatbelt, not the fence (that is the state dir's permissions, policy/store/statedir.py): it reads what arguments
say, decoded and normalised, with symlinks resolved for words that look like paths, and refuses recursive
tools (`grep -r`, `find`, `tar`, …) over a folder that holds the state dir or, when they follow links, over
a tree with a link into it. It cannot see what a program reads on its own (a script's contents, a path
built at run time) nor a link made after it looked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from policy.core.guard_cli import KNOWN, WALKERS, commands_of, follows_links, walked
from policy.core.guard_paths import MAX_PATTERNS, PROTECTED_NAMES, StatePaths, decoded, lexical, words
from policy.core.guard_writes import changed_paths
from policy.core.model import Action, Decision, ToolCall

GUARD_RULE = "guard/state-dir"
_MAX_DEPTH = 32
# Symlinks are resolved for strings that are one path each (and every command-line word), this long at most;
# each resolution is an lstat per segment, counted against _MAX_SEGMENTS per call.
_MAX_PATH = 4096
_MAX_NAMES = 256  # bare names under path keys resolved per call (one lstat each)
# A recursive tool that follows symlinks has its folders scanned for links into the state, up to this many entries.
_MAX_WALKED = 20_000
# A command line's words are all resolved, up to this many path segments in all (each one an lstat); a longer
# one is refused rather than left partly unread or allowed to stall the deciding process.
_MAX_SEGMENTS = 8192
# Free-text arguments longer than this (a file's content) are not read as shell lines: see docs/state.md's limits.
_MAX_SHELL_LINE = 4096
_SHELL_WORDS = re.compile(r"[\s;&|()`]+")
_SPACE = re.compile(r"\s")
# Words of one argument read closely (patterns, words naming part of the state): ~10 µs each at most.
_MAX_CANDIDATES = 10_000
_SPELLED = re.compile(r"[.%\\*?[{]")


_SCALARS = frozenset({int, float, bool, type(None)})


def _strings(value: Any, out: list[str], depth: int = 0) -> list[str]:
    """Every string in `value`, keys included, appended to `out`. Exact types are tested before the ABCs:
    for the small arguments of most calls, the ABC checks cost more than the rest of the walk."""
    kind = type(value)
    if kind is str:
        out.append(value)
        return out
    children: Iterable[Any]
    if kind is not dict and kind is not list and isinstance(value, str):
        out.append(value)
        return out
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        for k in value:
            out.append(k if type(k) is str else str(k))
        children = value.values()
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        children = value
    else:
        return out
    if depth >= _MAX_DEPTH and len(value):  # its children would be deeper than the limit
        raise ValueError(f"arguments nested deeper than {_MAX_DEPTH} levels cannot be inspected")
    for v in children:
        if type(v) is str:
            out.append(v)
        elif type(v) not in _SCALARS:
            _strings(v, out, depth + 1)
    return out


def state_guard(
    state_dir: str, also: Sequence[str] = (), walked: Sequence[str] = ()
) -> Callable[[ToolCall], Decision | None]:
    """A check that denies calls whose arguments reach the state dir: by absolute or relative path in any
    spelling, through a symlink, by its folder name when that name is the mesh's own (`.agent-mesh`), by the
    names of its files (`operator.token`, `state.db`), or by a recursive tool over a folder that holds it.
    `also`: files and folders refused the same way when named (the config, its policy_dir, the registry:
    policy.core.guard_mesh); `walked`: those of them a recursive tool may not walk over either (secrets)."""
    paths = StatePaths(state_dir, also, walked)
    # The cheap pre-filter: a string is read closely when it names the state (a folder or file name, any
    # case), may spell it otherwise (`%2E`, `\\-`, a glob) or is one path on its own (it may be a symlink).
    needles = tuple(sorted({n.casefold() for n in (*paths.mentioned, *PROTECTED_NAMES, "operator.tok", "state.d")}))
    plain = sorted(n for n in paths.mentioned if "." not in n)  # every other needle holds a dot or a sign
    quick = re.compile("[.%\\\\*?[{]" + "".join("|" + re.escape(n) for n in plain), re.IGNORECASE)

    def mentions(text: str) -> bool:
        if "%" in text or "\\" in text or "*" in text or "?" in text or "[" in text or "{" in text:
            return True
        if "(" in text and ("@(" in text or "+(" in text or "!(" in text):  # bash's extglob
            return True
        folded = text.casefold()
        return any(n in folded for n in needles)

    def hit(texts: list[str], argvs: list[list[str]], base: str, names: list[str]) -> str | None:
        budget = _MAX_SEGMENTS  # path segments left to resolve (each an lstat); past them, refused
        # bash's dotglob (or GLOBIGNORE) lets `*` match `.agent-mesh`: looked for only when a pattern is seen
        hidden: list[bool] = []
        for text in texts:
            if quick.search(text) is not None and mentions(text):
                if not hidden:
                    hidden.append(any("dotglob" in t or "GLOBIGNORE" in t for t in texts))
                found = _text_hit(paths, text, base, hidden=hidden[0])
                if found is not None:
                    return found
            if ("/" in text or text[:1] == "~") and _one_path(text):
                budget -= text.count("/") + base.count("/") + 1
                if budget < 0:
                    raise ValueError(f"arguments with more than {_MAX_SEGMENTS} path segments to resolve")
                real = paths.resolved(lexical(text, base))
                if paths.inside(real) or paths.same_file(real):
                    return f"{text!r} (that is {real})"
        if len(names) > _MAX_NAMES:
            raise ValueError(f"more than {_MAX_NAMES} file names under path keys to resolve")
        for name in names:  # a bare file name under a path key: `{"path": "db"}`, a committed link in the cwd
            real = paths.resolved(lexical(name, base))
            if paths.inside(real) or paths.same_file(real):
                return f"{name!r} (that is {real})"
        if argvs and not hidden:
            hidden.append(any("dotglob" in t or "GLOBIGNORE" in t for t in texts))
        for argv in argvs:
            found = _argv_hit(paths, argv, base, hidden=hidden[0])
            if found is not None:
                return found
        for text in texts:
            if len(text) <= _MAX_SHELL_LINE and _reads_as_shell_line(text):
                if not hidden:
                    hidden.append(any("dotglob" in t or "GLOBIGNORE" in t for t in texts))
                found = _argv_hit(paths, ["sh", "-c", text], base, hidden=hidden[0])  # a shell line, `cd` included
                if found is not None:
                    return found
        return None

    def check(call: ToolCall) -> Decision | None:
        try:
            texts = _strings(call.arguments, [])
        except ValueError as exc:  # what cannot be inspected is refused, never waved through
            return Decision(Action.DENY, GUARD_RULE, f"fail closed: {exc}", considered=())
        arguments = call.arguments if isinstance(call.arguments, Mapping) else {}
        cwd = arguments.get("cwd")
        cwd = lexical(cwd, "/") if type(cwd) is str and cwd.startswith("/") else cwd  # `/p/./` is `/p`
        here = os.getcwd()
        # Relative paths are looked for in the call's cwd (mcpwrap sets it for a command line) and in this
        # process's: an MCP server's cwd is unknown, and an agent's `cwd` argument must not hide where it runs.
        bases = (cwd, here) if type(cwd) is str and cwd.startswith("/") and cwd != here else (here,)
        argvs = _command_lines(arguments, 0)
        names = _bare_names(arguments)
        for base in bases:
            try:
                found = hit(texts, argvs, base, names)
            except ValueError as exc:  # a command line nested or long beyond what is read: refused
                return Decision(Action.DENY, GUARD_RULE, f"fail closed: {exc}", considered=())
            if found is not None:
                return _deny(found)
        return None

    return check


# An MCP tool that runs commands names them its own way: `{"command": "grep", "args": ["-r", "x", "."]}`.
_COMMAND_KEYS = (
    "command", "cmd", "program", "executable", "binary", "bin", "exe", "script", "shell", "commandLine",
    "command_line", "cmdline", "shell_command", "bash", "sh",
)  # fmt: skip
_COMMAND_KEY_SET = frozenset(_COMMAND_KEYS)
_ARGS_KEYS = ("args", "arguments", "argv", "params", "parameters")


def _command_lines(arguments: Mapping[str, Any], depth: int) -> list[list[str]]:
    """The command lines in a call's arguments: `argv`, a command key with an argument list, a lone command
    word (`{"command": "find"}` walks the cwd), and any list of words whose first names a known command."""
    found: list[list[str]] = []
    given = arguments.get("argv")
    if isinstance(given, list) and given:
        found.append([_word(a) for a in given])  # a number among the words is still a word
    command = None
    if not _COMMAND_KEY_SET.isdisjoint(arguments):  # most calls have none: one set operation
        command = next((arguments[k] for k in _COMMAND_KEYS if type(arguments.get(k)) is str), None)
    if command and _SPACE.search(command) is None:
        rest: list[Any] = next((arguments[k] for k in _ARGS_KEYS if isinstance(arguments.get(k), list)), [])
        found.append([command, *(_word(a) for a in rest)])
    elif command and len(command) <= _MAX_SHELL_LINE:
        found.append(["sh", "-c", command])  # a shell line: its words resolved (`cat link/traces.jsonl`)
    for value in arguments.values():
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is float or value is None:
            continue  # the common case, decided by exact types before the ABC checks
        if isinstance(value, list):
            if not value:
                continue
            if type(value[0]) is str:  # a list of words: a command line when the first names a command
                if value is not given and _command_name(value[0]) in KNOWN:
                    found.append([_word(a) for a in value])
            elif depth < 3:  # `steps: [{command: …}, …]`
                for item in value:
                    if type(item) is dict or (type(item) is not str and isinstance(item, Mapping)):
                        found.extend(_command_lines(item, depth + 1))
        elif depth < 3 and isinstance(value, Mapping):
            found.extend(_command_lines(value, depth + 1))
    return found


_PATH_KEY = re.compile(r"path|file|dir|folder|source|src|dest|target|location", re.IGNORECASE)


_path_keys: dict[str, bool] = {}


def _is_path_key(key: str) -> bool:
    """Whether an argument's name says it holds a path (remembered: tools use the same few names)."""
    known = _path_keys.get(key)
    if known is None:
        known = _PATH_KEY.search(key) is not None
        if len(key) <= 64:
            if len(_path_keys) >= 4096:
                _path_keys.clear()
            _path_keys[key] = known
    return known


def _bare_names(arguments: Mapping[str, Any]) -> list[str]:
    """Plain names (no `/`, no space) given under a key that names a path: resolved as files of the cwd."""
    found: list[str] = []
    for key, value in arguments.items():
        if type(key) is not str or not _is_path_key(key):
            continue
        for item in value if isinstance(value, list) else (value,):
            if type(item) is str and 0 < len(item) <= 255 and "/" not in item and _SPACE.search(item) is None:
                found.append(item)
    return found


def _word(value: Any) -> str:
    return value if type(value) is str else str(value)


def _command_name(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1].lower()


def _reads_as_shell_line(text: str) -> bool:
    """Whether a string has a command that walks folders among its words (`/usr/bin/grep` counts)."""
    if _SPACE.search(text) is None:
        return False
    parts = set(_SHELL_WORDS.split(text))
    if not WALKERS.isdisjoint(parts):
        return True
    return "/" in text and not WALKERS.isdisjoint({w.rpartition("/")[2] for w in parts if "/" in w})


def _one_path(text: str) -> bool:
    """A string that is a single path (`/srv/x`, `link/x`, `~/x`): worth resolving, it may be a symlink."""
    return 0 < len(text) <= _MAX_PATH and ("/" in text or text[0] == "~") and _SPACE.search(text) is None


def _text_hit(
    paths: StatePaths, text: str, base: str, *, hidden: bool = False, budget: list[int] | None = None
) -> str | None:
    """What in one argument string names the state, if anything (pure: no filesystem call)."""
    plain = decoded(text)
    whole = _SPACE.search(plain) is None
    budget = [MAX_PATTERNS] if budget is None else budget
    # a word that names no part of the state and is no pattern cannot reach it from a folder outside it
    every = paths.inside(base)
    left = _MAX_CANDIDATES
    for word in dict.fromkeys(words(plain)):  # a word repeated in a long text is read once
        if not every and paths.candidate.search(word) is None:
            continue
        left -= 1
        if left < 0:  # bounded work: past this, what was not read is not vouched for
            raise ValueError(f"more than {_MAX_CANDIDATES} words that may name the state in one argument")
        if paths.named(word, whole=whole):
            return repr(word)
        absolute = lexical(word, base)
        if paths.inside(absolute):
            return f"{word!r} (that is {absolute})"
        if ("*" in word or "?" in word or "[" in word) and paths.glob_hits(absolute, hidden=hidden, budget=budget):
            return f"{word!r} (a pattern that matches the state)"
    return None


def _argv_hit(paths: StatePaths, argv: Sequence[str], base: str, *, hidden: bool = False) -> str | None:
    """A command line's words resolved as paths in its cwd (symlinks included), and its recursive commands
    checked for walking a folder that holds the state dir. Raises ValueError past _MAX_SEGMENTS."""
    segments = 0
    for command in commands_of(argv):
        if command[0] in ("cd", "pushd") and len(command) > 1:  # later commands of a shell line start there
            base = lexical(command[1], base)
            continue
        operator = _operator_command(command)
        if operator is not None:
            return operator
        for arg in command[1:]:
            value = arg.partition("=")[2] if arg.startswith("-") else arg
            if value and len(value) <= _MAX_PATH:
                # a word as the shell leaves it once quotes are gone: `'.agent'-mes?/x` is a pattern again
                # (a word without these signs can only reach the state as the path resolved below)
                found = _text_hit(paths, value, base, hidden=hidden) if _SPELLED.search(value) else None
                if found is not None:
                    return found
                segments += value.count("/") + base.count("/") + 1
                if segments > _MAX_SEGMENTS:
                    raise ValueError(f"a command line with more than {_MAX_SEGMENTS} path segments to resolve")
                real = paths.resolved(lexical(value, base))
                if paths.inside(real) or paths.same_file(real):
                    return f"{arg!r} (that is {real})"
        folders = walked(command, base, os.path.lexists)
        tool = " ".join(command[:2]) if len(command) > 1 else command[0]
        if paths.guards_more:  # a folder above the config, policy_dir or registry moved, removed or written over
            for path in changed_paths(command, base, os.path.lexists):
                absolute = lexical(path, base)
                real = paths.resolved(absolute)
                if paths.holds_guarded(absolute) or paths.holds_guarded(real) or paths.inside(real):
                    return f"{tool!r} replaces {absolute}, which holds a file that chooses the policy"
        for folder in folders or ():
            absolute = lexical(folder, base)
            for candidate in dict.fromkeys([absolute, paths.resolved(absolute)]):
                if paths.contains(candidate):
                    return f"{tool!r} walks {candidate}, which holds the state dir"
        if folders and follows_links(command):
            found = _links_inside(paths, [lexical(f, base) for f in folders])
            if found is not None:
                return f"{tool!r} follows symlinks while walking: {found}"
    return None


# Runners that start the command named after their own words (`uv run agent-mesh …`).
_RUNNERS = frozenset({"uv", "uvx", "pipx", "poetry", "pdm", "hatch", "rye", "npx", "pixi", "conda", "micromamba"})
_RUNNER_WORDS = frozenset({"run", "exec", "tool", "x"})


def _operator_command(command: Sequence[str]) -> str | None:
    """What makes `command` one of the operator's: `agent-mesh` (any subcommand: `use` writes the registry,
    `approvals approve` and `resume` change the state from inside, where no argument shows it) or `mcpwrap
    install|shims` (they rewrite how the agent's own servers and binaries are governed). Found by name through
    a runner (`uv run`) or `python -m policy.cli|mcpwrap`; a copy under another name is past what is read."""
    words = list(command)
    if words and _command_name(words[0]) in _RUNNERS:
        words = words[1:]
        while words and (words[0] in _RUNNER_WORDS or words[0].startswith("-")):
            words = words[1:]
    if not words:
        return None
    name = _command_name(words[0])
    if name.startswith("python") and "-m" in words[1:]:
        at = words.index("-m", 1)
        module = words[at + 1] if at + 1 < len(words) else ""
        name = {"policy.cli": "agent-mesh", "policy": "agent-mesh", "mcpwrap": "mcpwrap"}.get(module, name)
        words = [name, *words[at + 2 :]]
    if name == "agent-mesh":
        return f"{' '.join(command[:3])!r} runs agent-mesh's operator commands (approvals, stops, the active mesh)"
    if name == "mcpwrap":
        head = words[1 : words.index("--")] if "--" in words else words[1:]
        if "install" in head or "shims" in head:
            return f"{' '.join(command[:3])!r} changes how the agent's servers and commands are governed"
    return None


def _links_inside(paths: StatePaths, folders: list[str]) -> str | None:
    """A symlink under `folders` that leads into the state dir (or above it), walked without following
    links; past _MAX_WALKED entries the walk is refused, since what was not looked at cannot be vouched for."""
    stack = list(folders)
    seen = 0
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:  # not a folder (a file argument), or not ours to read: nothing to follow there
            continue
        with entries:
            for entry in entries:
                seen += 1
                if seen > _MAX_WALKED:
                    return (
                        f"more than {_MAX_WALKED} entries to check for links into the state (walk without "
                        "following links, or name smaller folders)"
                    )
                if entry.is_symlink():
                    real = paths.resolved(entry.path)
                    if paths.inside(real) or paths.contains(real):
                        return f"{entry.path} leads to {real}"
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return None


def _deny(found: str) -> Decision:
    return Decision(
        Action.DENY,
        GUARD_RULE,
        f"the arguments reach agent-mesh's own state ({found}): agents may not read or change approvals, grants, "
        "the operator token, or the files and commands that choose the policy",
        considered=(),
    )
