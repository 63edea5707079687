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
import time
from collections.abc import Iterator, Sequence
from urllib.parse import unquote

from policy.core.paths import through_proc

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
_MAX_TEXT_VARIANTS = 4096
_SPACES = re.compile(r"\S+")


_EXTGLOB = re.compile(r"[@+*?!]\([^()\s]*\)")
_HOME_VAR = re.compile(r"\$(?:HOME\b|\{HOME\})")
_ANSI_C = re.compile(r"\$'((?:[^'\\]|\\.)*)'", re.DOTALL)
_ANSI_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.DOTALL)
_SIMPLE = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def ansi_c(text: str, *, quoted: bool = False) -> str:
    """`text` with bash's `$'…'` strings decoded (`$'\\x2eagent-mesh'` is `.agent-mesh`); `quoted`: each one
    left as a single-quoted shell word, for a shell line still to be split."""

    def escape(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU" and len(e) > 1:
            return chr(min(int(e[1:], 16), 0x10FFFF))
        if e[0] in "01234567":
            return chr(int(e, 8) & 0xFF)
        if e[0] == "c" and len(e) == 2:
            return chr(ord(e[1]) & 0x1F)
        return _SIMPLE.get(e, e)

    def string(m: re.Match[str]) -> str:
        inner = _ANSI_ESCAPE.sub(escape, m.group(1))
        return "'" + inner.replace("'", "'\\''") + "'" if quoted else inner

    return _ANSI_C.sub(string, text)


def decoded(text: str) -> str:
    """`text` with percent-escapes decoded (repeatedly: `%252E` is `%2E` is `.`) and backslashes dropped (a
    shell reads `.agent\\-mesh` as `.agent-mesh`)."""
    if "$" in text:
        if "$'" in text:
            text = ansi_c(text)
        if "HOME" in text:  # the one variable every shell has and an agent reaches for: `$HOME/…`, `${HOME}/…`
            text = _HOME_VAR.sub(lambda _: os.path.expanduser("~"), text)
    for _ in range(_MAX_DECODES):
        if "%" not in text:
            break
        once = unquote(text, errors="surrogateescape")
        if once == text:
            break
        text = once
    text = text.replace("\\", "") if "\\" in text else text
    if "(" in text:  # bash's extglob `.agent-@(mesh)`, `+(…)`, `!(…)`: read as `*`, a pattern over them all
        text = _EXTGLOB.sub("*", text)
    return _without_braces(text) if "{" in text else text


def _without_braces(text: str) -> str:
    """`text` with the brace groups of each word expanded, the variants joined by spaces (bounded: a shell
    expands within one word, so a long text with many small groups stays small; past _MAX_TEXT_VARIANTS
    in one text, groups are read as `*`)."""
    left = [_MAX_TEXT_VARIANTS]

    def one(match: re.Match[str]) -> str:
        word = match.group()
        if "{" not in word:
            return word
        out = _expanded(word, _MAX_EXPANSIONS if left[0] > 0 else 1)
        left[0] -= out.count(" ") + 1
        return out

    return _SPACES.sub(one, text)


def _expanded(word: str, most: int) -> str:
    done: list[str] = []
    todo = [word]
    while todo:
        item = todo.pop()
        group = _BRACES.search(item)
        if group is None:
            done.append(item)
            continue
        inner = group.group()[1:-1]
        full = len(done) + len(todo) >= most
        if full and "/" in inner:
            raise ValueError(
                f"more brace expansions than can be read, with groups reaching into folders: {word[:80]!r}"
            )
        if (".." in inner and "," not in inner) or full:
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
    if word.startswith("~+") and (len(word) == 2 or word[2] == "/"):  # bash's `~+` is the cwd
        word = base + word[2:]
    if "/" not in word and word not in (".", "..") and word[:1] != "~":
        return (base if base != "/" else "") + "/" + word  # one plain name in a normalised folder (common)
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

    def __init__(self, state_dir: str, also: Sequence[str] = (), walked: Sequence[str] = ()) -> None:
        """`also`: more files and folders refused when named (the config, its policy_dir: policy.core.guard_mesh);
        `walked`: those of them also refused to a recursive tool over a folder holding them (secrets)."""
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
        self.inodes, self._files = _inodes(real)
        extra = _roots(also)
        self._extra = tuple(r.casefold() for r in extra)
        self._extra_below = tuple(r + "/" for r in self._extra)
        self.guards_more = bool(extra)  # files besides the state dir: more to check per command line
        self._walked = self._folded + tuple(r.casefold() for r in _roots(walked))
        if extra:
            inodes, files = _extra_inodes(extra)
            self.inodes, self._files = self.inodes | inodes, self._files + files
        # The names of every guarded file or folder (a cheap textual pre-filter lets a string mentioning one in).
        self.mentioned = self.names | frozenset(posixpath.basename(r) for r in extra)
        # A guarded file named as distinctively as the mesh's (`agent-mesh.yaml`) counts as the last segment of a
        # relative path given as a whole argument, wherever it is: an MCP server's cwd is not known here.
        self._file_names = frozenset(
            posixpath.basename(r).casefold() for r in extra if "agent-mesh" in posixpath.basename(r) and _is_file(r)
        )
        self._links_checked = float("-inf")
        self._has_links = False
        # A word of free text can reach the state only by naming it (a folder or file name) or by a pattern.
        needles = sorted({n.casefold() for n in (*self.mentioned, *PROTECTED_NAMES)})
        self.candidate = re.compile("[*?[]|" + "|".join(re.escape(n) for n in needles), re.IGNORECASE)

    def inside(self, path: str) -> bool:
        """Whether the absolute, normalised `path` is the state dir or in it (case-insensitively: a macOS
        volume opens `STATE.DB` as `state.db`)."""
        folded = path.casefold()
        if folded in self._folded or folded.startswith(self._below):
            return True
        return bool(self._extra) and (folded in self._extra or folded.startswith(self._extra_below))

    def contains(self, path: str) -> bool:
        """Whether the state dir is `path` or below it: a recursive tool over `path` reaches it."""
        folded = path.casefold().rstrip("/") or "/"
        prefix = folded if folded.endswith("/") else folded + "/"
        return any(r == folded or r.startswith(prefix) for r in self._walked)

    def holds_guarded(self, path: str) -> bool:
        """Whether the absolute, normalised `path` is a guarded file or folder (policy.core.guard_mesh) or above
        one: moving, removing or replacing it replaces what chooses the policy."""
        if not self._extra:
            return False
        folded = path.casefold().rstrip("/") or "/"
        prefix = folded if folded.endswith("/") else folded + "/"
        return any(r == folded or r.startswith(prefix) for r in self._extra)

    def named(self, word: str, *, whole: bool) -> bool:
        """Whether a path segment of `word` names the state by its name alone, whatever folder it is in.

        A plain state dir name (`state`) counts where a relative path starts with it (`state/x`, `./state`), or
        as a whole argument; in free text it is an ordinary word."""
        segments = [s.casefold() for s in word.split("/") if s and s != "."]
        if any(s in PROTECTED_NAMES for s in segments):
            return True
        if self.distinctive and self._name_folded in segments:
            return True
        if not segments or word.startswith(("/", "~")):
            return False
        if segments[-1] in self._file_names and whole:  # a path argument; prose that mentions it is read as paths
            return True
        return segments[0] == self._name_folded and (whole or "/" in word)

    def glob_hits(self, pattern: str, *, hidden: bool = False, budget: list[int] | None = None) -> bool:
        """Whether a shell pattern (`.agent-mes?/*`, `/p/*/state.db`, `operator.tok*`, `/p/.a*/t*`) can match
        a file in the state dir. `hidden`: a wildcard may match a leading dot (bash's dotglob), else, as a
        shell does, it does not (`/p/*/x` does not reach `/p/.agent-mesh/x`). Cheap string tests come first;
        each pattern left to a compiled matcher costs one unit of `budget` (raises ValueError when spent)."""
        for segment in pattern.split("/"):
            # `*` alone would match the token's name too, but names every file: only patterns with a stem count.
            if not ("*" in segment or "?" in segment or "[" in segment) or len(segment) - _signs(segment) < 3:
                continue
            folded_segment = segment.casefold()
            head, tail = _literal_ends(folded_segment)
            if any(_ends_fit(head, tail, n) for n in PROTECTED_NAMES):
                _spend(budget)
                if _matches_a_name(folded_segment):
                    return True
        if not pattern.startswith("/"):
            return False
        folded = pattern.casefold()
        first = _HEAD.match(folded).end()  # type: ignore[union-attr]  # (it matches the empty string)
        literal = folded[: folded.rfind("/", 0, first) + 1]  # the folder part before the first wildcard
        segments = folded.split("/")
        for root in self._folded:
            below = root + "/"
            # cheap first: the literal part must lead towards the state dir or be inside it
            if not (below.startswith(literal) or literal.startswith(below)):
                continue
            if "**" in folded:
                _spend(budget)
                if _compiled(folded, hidden).match(below + "x") or _compiled(folded, hidden).match(root):
                    return True
                continue
            parts = root.split("/")
            if len(segments) <= len(parts):
                continue  # the pattern names the state dir or a folder above it, not a file in it
            if all(_segment_matches(p, r, hidden, budget) for p, r in zip(segments, parts, strict=False)):
                return True  # the pattern names something inside the state dir
        for root in self._extra:  # a guarded file or folder: a pattern naming it counts as well as one inside it
            parts = root.split("/")
            if len(segments) < len(parts) or not ((root + "/").startswith(literal) or literal.startswith(root)):
                continue
            if "**" in folded:
                _spend(budget)
                if _compiled(folded, hidden).match(root) or _compiled(folded, hidden).match(root + "/x"):
                    return True
            elif all(_segment_matches(p, r, hidden, budget) for p, r in zip(segments, parts, strict=False)):
                return True
        return False

    def same_file(self, path: str) -> bool:
        """Whether `path` is a hard link to a file of the state: the same inode as one that was there when the
        guard was made. One `stat`, and only while a state file has more than one link (looked at once a
        second): the common call pays nothing."""
        if not self.inodes or not self._linked():
            return False
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return False
        return (st.st_dev, st.st_ino) in self.inodes

    def _linked(self) -> bool:
        now = time.monotonic()
        if now - self._links_checked >= 1.0:
            self._links_checked = now
            self._has_links = any(_links(f) > 1 for f in self._files)
        return self._has_links

    @staticmethod
    def resolved(path: str) -> str:
        """`path` with symlinks resolved (a few lstat calls; a path that does not exist resolves lexically)."""
        try:
            return os.path.realpath(path)
        except (OSError, ValueError):
            return path


MAX_PATTERNS = 256  # patterns per call left to a compiled matcher once the cheap tests let them through


def _signs(segment: str) -> int:
    return segment.count("*") + segment.count("?") + segment.count("[") + segment.count("]")


def _spend(budget: list[int] | None) -> None:
    if budget is not None:
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError(f"more than {MAX_PATTERNS} shell patterns that may name the state in one call")


_HEAD = re.compile(r"[^*?\[]*")
_TAIL = re.compile(r"[^*?\]]*\Z")


def _literal_ends(pattern: str) -> tuple[str, str]:
    """The literal text before the first wildcard and after the last one (of a pattern that has one)."""
    head = _HEAD.match(pattern)
    tail = _TAIL.search(pattern)
    return (head.group() if head else ""), (tail.group() if tail else "")


def _could_match(pattern: str, name: str) -> bool:
    """A necessary condition for a one-segment pattern to match `name`: its literal ends fit."""
    return _ends_fit(*_literal_ends(pattern), name)


def _ends_fit(head: str, tail: str, name: str) -> bool:
    return name.startswith(head) and name.endswith(tail) and len(name) >= len(head) + len(tail)


def _segment_matches(pattern: str, name: str, hidden: bool, budget: list[int] | None) -> bool:
    if not any(c in _GLOB for c in pattern):
        return pattern == name
    if name.startswith(".") and not pattern.startswith(".") and not hidden:
        return False  # a shell's wildcard does not match a leading dot
    if not _could_match(pattern, name):
        return False
    _spend(budget)
    return fnmatch.fnmatchcase(name, pattern)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str, hidden: bool) -> re.Pattern[str]:
    return re.compile(glob.translate(pattern, recursive=True, include_hidden=hidden))


def _matches_a_name(segment: str) -> bool:
    return any(fnmatch.fnmatchcase(name, segment) for name in PROTECTED_NAMES)


def _inodes(state_dir: str) -> tuple[frozenset[tuple[int, int]], tuple[str, ...]]:
    """(device, inode) of the files in the state dir, two levels deep (`mitmproxy/` holds the CA key), and
    their paths."""
    found: set[tuple[int, int]] = set()
    files: list[str] = []
    folders = [state_dir]
    for level in range(2):
        nxt: list[str] = []
        for folder in folders:
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            if level == 0:
                                nxt.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            est = entry.stat(follow_symlinks=False)
                            found.add((est.st_dev, est.st_ino))
                            files.append(entry.path)
            except OSError:  # not there yet, or not ours to read: nothing to compare with
                continue
        folders = nxt
    return frozenset(found), tuple(files)


def _roots(paths: Sequence[str]) -> tuple[str, ...]:
    """Each path absolute and normalised, and its real path when that differs."""
    found: list[str] = []
    for path in paths:
        absolute = posixpath.normpath(os.path.abspath(path))
        found += [absolute, os.path.realpath(absolute)]
    return tuple(dict.fromkeys(found))


def _is_file(path: str) -> bool:
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


def _extra_inodes(roots: Sequence[str]) -> tuple[frozenset[tuple[int, int]], tuple[str, ...]]:
    """(device, inode) of guarded files, and of the files directly in guarded folders (a policy_dir)."""
    found: set[tuple[int, int]] = set()
    files: list[str] = []
    for root in roots:
        try:
            st = os.stat(root)
        except (OSError, ValueError):
            continue
        if os.path.isdir(root):
            more, inner = _inodes(root)
            found |= more
            files += inner
        else:
            found.add((st.st_dev, st.st_ino))
            files.append(root)
    return frozenset(found), tuple(files)


def _links(path: str) -> int:
    try:
        return os.lstat(path).st_nlink
    except OSError:
        return 1
