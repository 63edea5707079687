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
    """The canonical form of a path-like string, or None when the string is not path-like."""
    if value[:1] in ("/", "~"):
        path = value
    elif value[:7].lower() == "file://":
        uri_path = _file_uri_path(value)
        if uri_path is None:
            return None
        path = uri_path
    else:
        return None
    if "/." not in path and "//" not in path and not path.endswith("/"):
        return path  # already canonical: the common case costs two substring scans
    norm = posixpath.normpath(path)
    if norm.startswith("//"):  # POSIX keeps a leading `//`; Linux reads it as `/`
        norm = "/" + norm.lstrip("/")
    return norm


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
