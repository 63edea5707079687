"""Path-like strings in the canonical form conditions compare: `/tmp/../etc/passwd` is `/etc/passwd`.

A string is path-like when it starts with `/`, with `~`, or with `file://` (a local file URI: no host or
`localhost`). Its form: the URI's path percent-decoded, then `.` and `..` segments resolved and repeated
slashes collapsed (a leading `//` too), as the kernel would. Symlinks are not resolved: conditions are pure
and the file a path names may not exist on this machine (the state-dir guard resolves what it can).
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote


def _file_uri_path(value: str) -> str | None:
    """The local path of a `file://` URI (percent-decoded), None for a remote host."""
    rest = value[7:]
    if rest[:10].lower() == "localhost/":
        rest = rest[9:]
    if not rest.startswith("/"):
        return None
    return unquote(rest, errors="surrogateescape")


def path_form(value: str) -> str | None:
    """The canonical form of a path-like string, or None when the string is not path-like (or is a path
    through another process's cwd or file descriptors, whose target nobody here knows: compared as relative)."""
    if value[:1] in ("/", "~"):
        path = value
    elif value[:7].lower() == "file://":
        uri_path = _file_uri_path(value)
        if uri_path is None:
            return None
        path = uri_path
    elif value[:6].lower() == "file:/":  # `file:/etc/passwd`: curl and most URL parsers read it as a path
        path = unquote(value[5:], errors="surrogateescape")
    else:
        return None
    if "/proc/" in path or "/dev/fd" in path:
        return through_proc(path)
    if "/." not in path and "//" not in path and not path.endswith("/"):
        return path  # already canonical: the common case costs two substring scans
    norm = posixpath.normpath(path)
    if norm.startswith("//"):  # POSIX keeps a leading `//`; Linux reads it as `/`
        norm = "/" + norm.lstrip("/")
    return norm


# Kernel links that lead elsewhere: /proc/PID/root (and a task's) is the root; /proc/PID/cwd, /proc/PID/fd/N,
# /dev/fd/N lead to a folder or file known only to that process.
_ROOT_LINKS = frozenset({"root"})
_UNKNOWN_LINKS = frozenset({"cwd", "fd", "map_files", "exe", "fdinfo"})


def through_proc(path: str) -> str | None:
    """`path` resolved segment by segment as the kernel does: `..` after /proc/self/root stays at the root."""
    stack: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if stack:
                stack.pop()
            continue
        stack.append(segment)
        if stack[0] == "proc" and len(stack) in (3, 5) and (len(stack) == 3 or stack[2] == "task"):
            if stack[-1] in _ROOT_LINKS:
                stack = []
            elif stack[-1] in _UNKNOWN_LINKS:
                return None
        elif stack[:2] == ["dev", "fd"] and len(stack) == 2:
            return None
    return "/" + "/".join(stack)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def relative_form(value: str) -> str:
    """What `glob` compares for a string that is not path-like: for a URI of another scheme, what follows
    `scheme://` with its dot and empty segments resolved, the authority counting as the first segment
    (`demo://public/../private/x` is `demo://private/x`: a deny rule on `demo://private/**` must not be
    walked around, and an allow rule on `demo://public/**` must not be walked out of); a relative path with
    `.`/`..`/`//` resolved as far as it can be (`a/./b/../c` is `a/c`)."""
    m = _SCHEME.match(value)
    if m is not None:
        rest = value[m.end() :]
        if "/." not in "/" + rest and "//" not in rest:
            return value
        return value[: m.end()] + posixpath.normpath(rest).lstrip("/")
    if "/." in value or value.startswith(".") or "//" in value:
        return posixpath.normpath(value)
    return value


def under(path: str, prefix: str) -> bool:
    """Whether canonical `path` is `prefix` or inside it, by whole segments (`/tmpx` is not under `/tmp`)."""
    if path == prefix:
        return True
    return path.startswith(prefix if prefix.endswith("/") else prefix + "/")
