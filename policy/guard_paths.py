"""Path spellings for the state-dir guard: the words of an argument string as the paths they name.

An agent spells the state dir as it likes: `%2Eagent-mesh`, `file:///p/.agent-mesh/operator%2Etoken`,
`//p/./.agent-mesh`, `sub/../.agent-mesh`, `STATE.DB`, `.agent-mes?/*`, or through a symlink committed in
a repository. Words are decoded and normalised lexically (pure); symlinks are resolved only for words that
look like paths (a few `lstat`s), after a cheap textual pre-filter has let the string through.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import posixpath
import re
from collections.abc import Iterator
from urllib.parse import unquote

from policy.paths import through_proc

# Files of the state dir that are dangerous wherever they are named: the operator token and the database.
PROTECTED_NAMES = frozenset(
    {
        "operator.token",
        "state.db",
        "state.db-wal",
        "state.db-shm",
        "state.db-journal",
        "mcp-pins.json",
        "trace-key.pem",
        "mitmproxy-ca.pem",
    }
)  # fmt: skip  (trace-key.pem signs the trace's checkpoints; mitmproxy-ca.pem holds the proxy CA's key)
# What separates words in free text, shell lines and option values (`--db=x`, `k:v`, `a,b`).
_SPLIT = re.compile(r"""[\s'"`=,;|&()<>{}]+|:(?!//)""")
_SLASHES = re.compile(r"/{2,}")
_GLOB = frozenset("*?[")
_MAX_DECODES = 4
# A shell brace group that expands (`{a,b}`, `{a..z}`) within one word. JSON objects (quotes, colons, spaces)
# are left be. Groups are expanded (`.{agent,x}-mesh` -> `.agent-mesh .x-mesh`) up to _MAX_EXPANSIONS
# variants; past that, or for a `{a..z}` sequence, a group is read as `*`, a pattern matching every expansion.
_BRACES = re.compile(r"""\{[^{}\s"':]*(?:,|\.\.)[^{}\s"':]*\}""")
_MAX_EXPANSIONS = 64
_SPACES = re.compile(r"\S+")


def decoded(text: str) -> str:
    """`text` with percent-escapes decoded (repeatedly: `%252E` is `%2E` is `.`) and backslashes dropped (a
    shell reads `.agent\\-mesh` as `.agent-mesh`)."""
    for _ in range(_MAX_DECODES):
        if "%" not in text:
            break
        once = unquote(text, errors="surrogateescape")
        if once == text:
            break
        text = once
    text = text.replace("\\", "") if "\\" in text else text
    return _without_braces(text) if "{" in text else text


def _without_braces(text: str) -> str:
    """`text` with the brace groups of each word expanded, the variants joined by spaces (bounded: a shell
    expands within one word, so a long text with many small groups stays small)."""
    return _SPACES.sub(lambda m: _expanded(m.group()) if "{" in m.group() else m.group(), text)


def _expanded(word: str) -> str:
    done: list[str] = []
    todo = [word]
    while todo:
        item = todo.pop()
        group = _BRACES.search(item)
        if group is None:
            done.append(item)
            continue
        inner = group.group()[1:-1]
        if len(done) + len(todo) >= _MAX_EXPANSIONS and "/" in inner:
            raise ValueError(f"a word with more than {_MAX_EXPANSIONS} brace expansions reaching into folders")
        if (".." in inner and "," not in inner) or len(done) + len(todo) >= _MAX_EXPANSIONS:
            todo.append(item[: group.start()] + "*" + item[group.end() :])  # `*` matches every expansion
        else:
            todo.extend(item[: group.start()] + alt + item[group.end() :] for alt in inner.split(","))
    return " ".join(done)


def words(text: str) -> Iterator[str]:
    """The words of a decoded string that could be paths, with a `file:` URL's scheme and host removed."""
    for word in _SPLIT.split(text):
        if not word:
            continue
        if word[:5].lower() == "file:":
            rest = word[5:]
            if rest.startswith("//"):  # file://HOST/path: the host (empty, localhost) does not change the path
                rest = "/" + rest[2:].partition("/")[2]
            word = rest
        yield word


def lexical(word: str, base: str) -> str:
    """`word` as an absolute, normalised path: `~` expanded, relative to `base`, `//`, `.` and `..` resolved."""
    if word.startswith("~"):
        word = os.path.expanduser(word)
    path = word if word.startswith("/") else base + "/" + word
    if "/proc/" in path:  # `/proc/self/root/…` is `/…`, as the kernel reads it
        through = through_proc(path)
        if through is not None:
            return through
    return posixpath.normpath(_SLASHES.sub("/", path))


class StatePaths:
    """The state dir's spellings, computed once at config load: its absolute and real paths, its name."""

    def __init__(self, state_dir: str) -> None:
        absolute = posixpath.normpath(os.path.abspath(state_dir))
        real = os.path.realpath(absolute)
        self.roots = tuple(dict.fromkeys([absolute, real]))
        self._folded = tuple(r.casefold() for r in self.roots)
        self._below = tuple(r + "/" for r in self._folded)
        self.name = posixpath.basename(absolute)
        self.names = frozenset(posixpath.basename(r) for r in self.roots)  # a symlinked state dir has two
        self._name_folded = self.name.casefold()
        # A name as distinctive as the mesh's own (`.agent-mesh`) is the state wherever it appears in a path;
        # a plain one (`state`) only where a path starts with it, as the configured relative `state_dir` does.
        self.distinctive = "agent-mesh" in self._name_folded
        self.inodes = _inodes(real)

    def inside(self, path: str) -> bool:
        """Whether the absolute, normalised `path` is the state dir or in it (case-insensitively: a macOS
        volume opens `STATE.DB` as `state.db`)."""
        folded = path.casefold()
        return folded in self._folded or folded.startswith(self._below)

    def contains(self, path: str) -> bool:
        """Whether the state dir is `path` or below it: a recursive tool over `path` reaches it."""
        folded = path.casefold().rstrip("/") or "/"
        prefix = folded if folded.endswith("/") else folded + "/"
        return any(r == folded or r.startswith(prefix) for r in self._folded)

    def named(self, word: str, *, whole: bool) -> bool:
        """Whether a path segment of `word` names the state by its name alone, whatever folder it is in.

        A plain state dir name (`state`) counts where a relative path starts with it (`state/x`, `./state`), or
        as a whole argument; in free text it is an ordinary word."""
        segments = [s.casefold() for s in word.split("/") if s and s != "."]
        if any(s in PROTECTED_NAMES for s in segments):
            return True
        if self.distinctive and self._name_folded in segments:
            return True
        relative = bool(segments) and not word.startswith(("/", "~")) and segments[0] == self._name_folded
        return relative and (whole or "/" in word)

    def glob_hits(self, pattern: str, *, hidden: bool = False) -> bool:
        """Whether a shell pattern (`.agent-mes?/*`, `/p/*/state.db`, `operator.tok*`, `/p/.a*/t*`) can match
        a file in the state dir. `hidden`: a wildcard may match a leading dot (bash's dotglob), else, as a
        shell does, it does not (`/p/*/x` does not reach `/p/.agent-mesh/x`)."""
        for segment in pattern.split("/"):
            # `*` alone would match the token's name too, but names every file: only patterns with a stem count.
            stem = sum(c not in "*?[]" for c in segment) >= 3
            if stem and any(c in _GLOB for c in segment) and _matches_a_name(segment.casefold()):
                return True
        if not pattern.startswith("/"):
            return False
        folded = pattern.casefold()
        first = min((i for i in (folded.find(c) for c in _GLOB) if i >= 0), default=len(folded))
        literal = folded[: folded.rfind("/", 0, first) + 1]  # the folder part before the first wildcard
        segments = folded.split("/")
        for root in self._folded:
            below = root + "/"
            # cheap first: the literal part must lead towards the state dir or be inside it
            if not (below.startswith(literal) or literal.startswith(below)):
                continue
            depth = root.count("/") + 1
            if "**" in folded:
                if _compiled(folded, hidden).match(below + "x") or _compiled(folded, hidden).match(root):
                    return True
            elif len(segments) > depth and _compiled("/".join(segments[:depth]), hidden).match(root):
                return True  # the pattern names something inside the state dir
        return False

    def same_file(self, path: str) -> bool:
        """Whether `path` is a hard link to a file of the state (or a bind mount of the state dir): the same
        inode as one that was there when the guard was made. One `stat`; a path that is not there is not."""
        if not self.inodes:
            return False
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return False
        return (st.st_dev, st.st_ino) in self.inodes

    @staticmethod
    def resolved(path: str) -> str:
        """`path` with symlinks resolved (a few lstat calls; a path that does not exist resolves lexically)."""
        try:
            return os.path.realpath(path)
        except (OSError, ValueError):
            return path


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str, hidden: bool) -> re.Pattern[str]:
    return re.compile(glob.translate(pattern, recursive=True, include_hidden=hidden))


def _matches_a_name(segment: str) -> bool:
    return any(fnmatch.fnmatchcase(name, segment) for name in PROTECTED_NAMES)


def _inodes(state_dir: str) -> frozenset[tuple[int, int]]:
    """(device, inode) of the state dir and what is in it, two levels deep (`mitmproxy/` holds the CA key)."""
    found: set[tuple[int, int]] = set()
    folders = [state_dir]
    for level in range(2):
        nxt: list[str] = []
        for folder in folders:
            try:
                st = os.stat(folder)
                found.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            if level == 0:
                                nxt.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            est = entry.stat(follow_symlinks=False)
                            found.add((est.st_dev, est.st_ino))
            except OSError:  # not there yet, or not ours to read: nothing to compare with
                continue
        folders = nxt
    return frozenset(found)
