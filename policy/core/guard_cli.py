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

from policy.core.guard_paths import ansi_c

# Always walk folders given to them (or the cwd).
ALWAYS = frozenset(
    {"rg", "ag", "ack", "find", "fd", "fdfind", "du", "tree", "tar", "bsdtar", "7z", "7za", "mv", "pax", "rclone"}
)
# Walk folders with one of these flags: short letters (alone or combined, `-rn`) and long options.
FLAGGED: dict[str, tuple[str, frozenset[str]]] = {
    "grep": ("rR", frozenset({"--recursive", "--dereference-recursive"})),  # and `-d recurse`: _grep_recurses
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
    "diff": ("r", frozenset({"--recursive"})),  # prints the files' contents
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
    "grep": ("", frozenset({"--no-index", "--untracked", "--no-exclude-standard"})),
    "diff": ("", frozenset({"--no-index"})),
}
# git's global options that take the next argument as their value (`-C DIR` also moves the cwd).
GIT_VALUE_OPTIONS = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env", "--exec-path"}
)
# Run the command that follows them: `nice grep -r x .`, `env A=1 find /`, `timeout 5 rg x`, `xargs grep -r`.
WRAPPERS = frozenset(
    {"env", "nice", "nohup", "timeout", "sudo", "doas", "command", "exec", "time", "stdbuf", "ionice", "xargs",
     "busybox", "setsid", "chroot", "unbuffer", "watch", "flock", "strace", "ltrace", "parallel", "firejail",
     "unshare", "nsenter", "runuser", "systemd-run", "taskset", "chrt", "prlimit", "faketime", "proxychains",
     "proxychains4", "torsocks", "fakeroot", "pkexec", "catchsegv", "valgrind", "rlwrap", "entr", "caffeinate"}
)  # fmt: skip
# A wrapper's options that move where its command runs (`env -C DIR`, `sudo -D DIR`): read as a `cd`.
CHDIR_OPTIONS = frozenset({"-C", "--chdir", "-D", "--working-directory", "-w", "--wd"})
# Clouds' copy commands that walk a local folder: `aws s3 sync . s3://b`, `gsutil -m rsync -r . gs://b`.
CLOUD_WALKS = frozenset({"aws", "gsutil", "gcloud", "az", "s3cmd", "mc"})
CONTAINERS = frozenset({"docker", "podman", "nerdctl"})
# `python -m MODULE` that walks folders or serves them: `-m zipfile -c out.zip .`, `-m http.server`.
PYTHON_WALKS = frozenset({"zipfile", "tarfile", "http.server", "shutil"})
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
# Command names a wrapper's words are searched for (every other word may be an option's value).
KNOWN = (
    WALKERS | SHELLS | WRAPPERS | CONTAINERS | CLOUD_WALKS
    | {"eval", "cd", "python", "python3", "cat", "sqlite3", "kubectl", "helm", "npm", "npx", "cargo", "gh",
       "terraform", "systemctl", "pip", "pip3", "uv", "curl", "wget", "ssh", "node", "perl", "ruby", "make"}
)  # fmt: skip


MAX_SHELL_DEPTH = 4


def commands_of(argv: Sequence[str], depth: int = 0) -> Iterator[list[str]]:
    """The simple commands an argv runs: itself without wrappers, and the commands of `sh -c SCRIPT` and
    `eval WORDS`. A wrapper that moves its command (`env -C DIR`) yields `["cd", DIR]` first. Raises
    ValueError for shells nested deeper than MAX_SHELL_DEPTH (what is not read is refused, never passed)."""
    argv = list(argv)
    while argv and _name(argv[0]) in WRAPPERS:
        moved, argv = _unwrap(argv)
        if moved is not None:
            yield ["cd", moved]
    if not argv:
        return
    name = _name(argv[0])
    script: str | None = None
    if name == "eval":
        script = " ".join(argv[1:])
    elif name in SHELLS:
        for i, arg in enumerate(argv[1:], 1):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg and i + 1 < len(argv):
                rest = argv[i + 1 :]
                script = rest[1] if rest[0] == "--" and len(rest) > 1 else rest[0]
                break
    if script is None:
        yield argv
        return
    if depth >= MAX_SHELL_DEPTH:
        raise ValueError(f"shell lines nested deeper than {MAX_SHELL_DEPTH} levels cannot be inspected")
    for command in split_shell(script):
        yield from commands_of(command, depth + 1)


def split_shell(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell line, split at `;`, `&&`, `|`, newlines… (best effort: a line that
    does not parse is split on whitespace, so its words are still seen)."""
    if "$'" in script:
        script = ansi_c(script, quoted=True)  # shlex does not know bash's `$'\\x2e'`
    try:
        # a newline ends a command as `;` does (shlex would read it as a space)
        lexer = shlex.shlex(script, posix=True, punctuation_chars="();<>|&\n")
        lexer.whitespace_split = True
        lexer.whitespace = " \t\r"
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
    special = _special_walks(name, args, cwd, exists)
    if special is not None:
        return special or None
    if name == "git":
        # `grep.fallbackToNoIndex` makes `git grep` outside a repository walk every file, as --no-index does
        no_index = any("grep.fallbacktonoindex" in a.lower() for a in args)
        cwd, args = _git_subcommand(args, cwd)
        if not args or args[0] not in GIT_WALKS:
            return None
        rule = GIT_WALKS[args[0]]
        walks = no_index and args[0] == "grep"
        args = args[1:]
        if rule is not None and not walks and not _has_flag(args, *rule):
            return None
    elif name not in ALWAYS:
        rule = FLAGGED.get(name)
        if rule is None or not (_has_flag(args, *rule) or (rule is FLAGGED["grep"] and _grep_recurses(args))):
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
    """Whether `args` hold one of the short `letters` (alone or bundled) or a long option, also abbreviated:
    getopt_long and git take any unambiguous prefix (`--recur`, `--forc`); an ambiguous one only errs."""
    for arg in args:
        if arg == "--":
            return False
        if arg.startswith("--"):
            name = arg.partition("=")[0]
            if name in long or (len(name) > 3 and any(o.startswith(name) for o in long)):
                return True
        elif arg.startswith("-") and any(c in letters for c in arg[1:]):
            return True
    return False


def _grep_recurses(args: Sequence[str]) -> bool:
    """grep's `-d recurse` / `--directories=recurse` (its value abbreviated too: `-d rec`)."""
    for i, arg in enumerate(args):
        value: str | None = None
        if arg.startswith("--"):
            name, eq, after = arg.partition("=")
            if len(name) > 3 and "--directories".startswith(name):
                value = after if eq else (args[i + 1] if i + 1 < len(args) else "")
        elif arg.startswith("-") and "d" in arg:
            before, _, after = arg[1:].partition("d")
            if not any(c in "efmABCD" for c in before):  # `-ed` is the pattern "d"
                value = after or (args[i + 1] if i + 1 < len(args) else "")
        if value is not None and len(value) >= 3 and "recurse".startswith(value):
            return True
    return False


def _special_walks(name: str, args: list[str], cwd: str, exists: Callable[[str], bool]) -> list[str] | None:
    """Folders walked by tools whose walking is not a flag: a container's bind mounts and build context,
    a cloud copy's sync, `python -m zipfile -c`. None: not such a tool; []: such a tool walking nothing."""
    if name in CONTAINERS:
        sources = [_mount_source(args, i) for i in range(len(args))]
        found = [posixpath.join(cwd, s) for s in sources if s]
        if {"build", "buildx", "cp"} & set(args[:3]):
            found += [posixpath.join(cwd, a) for a in args if not a.startswith("-") and exists(posixpath.join(cwd, a))]
            found = found or [cwd]
        return found
    if name in CLOUD_WALKS:
        walking = {"sync", "rsync", "--recursive", "-r", "-R"} & set(args)
        local = [posixpath.join(cwd, a) for a in args if "://" not in a and exists(posixpath.join(cwd, a))]
        return (local or [cwd]) if walking else []
    if name.startswith("python") and "-m" in args:
        at = args.index("-m")
        module = args[at + 1] if at + 1 < len(args) else ""
        if module not in PYTHON_WALKS:
            return []
        rest = args[at + 2 :]
        local = [posixpath.join(cwd, a) for a in rest if not a.startswith("-") and exists(posixpath.join(cwd, a))]
        return local or [cwd]
    return None


def _mount_source(args: list[str], i: int) -> str:
    """The host path of a bind mount at args[i] (`-v SRC:DST`, `--volume=SRC:DST`, `--mount ...,source=SRC`)."""
    arg = args[i]
    option, eq, value = arg.partition("=")
    if option in ("-v", "--volume", "--mount") and not eq:
        value = args[i + 1] if i + 1 < len(args) else ""
    elif not (eq and option in ("--volume", "--mount")) and not (arg.startswith("-v") and len(arg) > 2):
        return ""
    elif arg.startswith("-v") and not eq:
        value = arg[2:]
    if option == "--mount":
        fields = dict(f.partition("=")[::2] for f in value.split(","))
        value = fields.get("source") or fields.get("src") or ""
        return value if value.startswith(("/", ".", "~")) else ""
    source = value.partition(":")[0]
    return source if source.startswith(("/", ".", "~")) else ""  # else a named volume


def _unwrap(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the folder a wrapper moves to, or None; the command it runs). The command is the first word that
    names a known command (`timeout -s KILL 5 grep`: not `KILL`), else the first that is no option,
    `VAR=value` or number."""
    rest = argv[1:]
    moved: str | None = None
    for i, arg in enumerate(rest):
        option, eq, value = arg.partition("=")
        if option in CHDIR_OPTIONS and i + 1 < len(rest) + (1 if eq else 0):
            moved = value if eq else rest[i + 1]
    for i, arg in enumerate(rest):
        if _name(arg) in KNOWN and not arg.startswith("-"):
            return moved, rest[i:]
    while rest and (rest[0].startswith("-") or "=" in rest[0] or rest[0].replace(".", "").isdigit()):
        rest = rest[1:]
    return moved, rest


def _name(arg0: str) -> str:
    return arg0.rstrip("/").rsplit("/", 1)[-1].lower()
