"""What a command line writes over, for the argument guard: the paths a move, copy, removal or extraction puts in
place or takes away (policy.core.guard refuses them when they hold a file that chooses the policy).

Pure reading of words (with `exists` and `is_dir` passed in for the paths that decide where a copy lands): a
copy into an existing folder lands as folder/NAME, `SRC/` or `SRC/.` as the folder itself, and a path that
does not exist yet is the new name.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Sequence

from policy.core.guard_cli import _name, walked

# Commands that move, remove, copy onto, link over or change every path they are given (a folder: all below it).
CHANGERS = frozenset(
    {"mv", "cp", "rsync", "rm", "rmdir", "ln", "install", "chmod", "chown", "chgrp", "setfacl", "scp", "rclone",
     "unlink", "shred", "truncate"}
)  # fmt: skip
_MOVERS = frozenset({"mv", "cp", "rsync", "scp", "install", "ln", "rclone"})
_EXECS = frozenset({"-delete", "-exec", "-execdir", "-ok", "-okdir", "-x", "--exec", "-X", "--exec-batch"})


def changed_paths(
    argv: Sequence[str], cwd: str, exists: Callable[[str], bool], is_dir: Callable[[str], bool] = os.path.isdir
) -> list[str]:
    """The paths a command replaces, removes or writes below (relative to `cwd`, existing or not): each path
    argument of a CHANGER (`rm -r DIR`; `mv /tmp/x DIR` puts another DIR in place), what a copy or move writes
    (into an existing folder: the folder/NAME of each source, the folder itself for `SRC/` or `SRC/.`), the
    folder an archive is extracted into (`tar x`, `unzip`, `7z x`: `-C`/`-d`/`-o` or the cwd), the folders
    `find -exec|-delete` and `fd -x` walk. The guard refuses them when they hold a file that chooses the policy."""
    if not argv:
        return []
    name, args = _name(argv[0]), list(argv[1:])
    if name in CHANGERS:
        if name in _MOVERS:
            return _written(name, args, cwd, is_dir)
        out = [a.partition("=")[2] if a.startswith("-") else a for a in args if a != "--"]
        return [a for a in out if a]
    if name in ("find", "fd", "fdfind"):
        return (walked(argv, cwd, exists) or []) if any(a in _EXECS for a in args) else []
    if name in ("tar", "bsdtar"):
        first = args[0] if args and not args[0].startswith("-") else ""
        extract = "x" in first or any(
            a in ("--extract", "--get") or (a.startswith("-") and not a.startswith("--") and "x" in a) for a in args
        )
        return [_option_value(args, ("-C", "--directory")) or "."] if extract else []
    if name == "unzip":
        listing = any(a.startswith("-") and not a.startswith("--") and ("l" in a or "t" in a or "Z" in a) for a in args)
        return [] if listing else [_option_value(args, ("-d",)) or "."]
    if name in ("7z", "7za", "7zr"):
        if not args or args[0] not in ("x", "e"):
            return []
        return [next((a[2:] for a in args if a.startswith("-o") and len(a) > 2), ".")]
    if name in ("pax", "cpio") and any(a.startswith("-") and ("r" in a or "i" in a) for a in args):
        return ["."]
    return []


def _written(name: str, args: Sequence[str], cwd: str, is_dir: Callable[[str], bool]) -> list[str]:
    """What `cp|mv|rsync|scp|install|ln|rclone SOURCES… DEST` (or `-t DEST SOURCES…`) puts in place, and for
    `mv` the sources it takes away."""
    words: list[str] = []
    target: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-t", "--target-directory") and i + 1 < len(args):
            target, i = args[i + 1], i + 2
            continue
        if arg.startswith("--target-directory="):
            target = arg.partition("=")[2]
        elif arg != "--" and not arg.startswith("-"):
            words.append(arg)
        i += 1
    if target is None and words:
        target, words = words[-1], words[:-1]
    if not target:
        return words if name == "mv" else []
    out = list(words) if name == "mv" else []  # a move takes its sources away; a copy leaves them be
    if not words or not is_dir(posixpath.join(cwd, target)):
        return [*out, target]  # a new name, or one file replaced
    for source in words:
        bare = source.rstrip("/")
        contents = source.endswith("/") or bare.endswith("/.") or bare in (".", "")
        out.append(target if contents else posixpath.join(target, posixpath.basename(bare)))
    return out


def _option_value(args: Sequence[str], names: Sequence[str]) -> str | None:
    """The value of the last of `names` (`-C DIR`, `-CDIR`, `--directory=DIR`), or None."""
    found = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                found = args[i + 1]
            elif name.startswith("--") and arg.startswith(name + "="):
                found = arg[len(name) + 1 :]
            elif not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                found = arg[len(name) :]
    return found
