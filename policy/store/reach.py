"""Who can reach the mesh's state: each file of the state dir, read or written by a given OS user.

For the current user the kernel is asked (`os.access`, which knows ACLs and capabilities); for another
user (`doctor --as-user`) the POSIX mode bits are evaluated for that user's uid and groups, with search
permission on every folder above the file, as the kernel would without ACLs.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from policy.store.statedir import CONFDIR, is_public, is_secret


@dataclass(frozen=True, slots=True)
class User:
    """An OS user as the permission check sees it; `current` means: ask the kernel about this process."""

    name: str
    uid: int
    gids: frozenset[int]
    current: bool

    @classmethod
    def me(cls) -> User:
        uid = os.geteuid()
        return cls(_user_name(uid), uid, frozenset({os.getegid(), *os.getgroups()}), True)

    @classmethod
    def named(cls, name: str) -> User:
        """The user `name` (or a numeric uid). Raises ValueError when there is no such user."""
        try:
            entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
        except (KeyError, OverflowError):
            raise ValueError(f"no such user: {name!r}") from None
        return cls(entry.pw_name, entry.pw_uid, frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid)), False)


@dataclass(frozen=True, slots=True)
class Access:
    """One path of the state and what the user can do to it."""

    what: str
    path: Path
    exists: bool | None  # None: this process cannot tell (a folder above it is closed to us)
    mode: int | None
    owner: str | None
    read: bool
    write: bool
    matters: bool  # whether reading it is a reach (a public certificate is meant to be read)

    @property
    def reachable(self) -> bool:
        return self.write or (self.read and self.matters)


def may(user: User, path: Path, want: int) -> bool:
    """Whether `user` may read (os.R_OK), write (os.W_OK) or search/run (os.X_OK) `path`."""
    if user.current:
        return os.access(path, want)
    try:
        for folder in reversed(path.parents):
            if not _allowed(user, os.stat(folder), os.X_OK):
                return False
        return _allowed(user, os.stat(path), want)
    except OSError:
        return False


def _allowed(user: User, st: os.stat_result, want: int) -> bool:
    if user.uid == 0:  # root reads and writes anything; runs what has an x bit
        return want != os.X_OK or bool(st.st_mode & 0o111) or stat.S_ISDIR(st.st_mode)
    shift = 6 if st.st_uid == user.uid else 3 if st.st_gid in user.gids else 0
    bit = {os.R_OK: 4, os.W_OK: 2, os.X_OK: 1}[want]
    return bool((st.st_mode >> shift) & bit)


def state_access(user: User, state_dir: Path) -> list[Access]:
    """What `user` can do to the state dir, every file in it and in the CA's folder, and the folder above it
    (whoever may write there can move the state dir aside and put another in its place)."""
    found = [_dir_access(user, "state dir", state_dir)]
    parent = state_dir.parent
    st = _stat(parent)
    sticky_guard = st is not None and bool(st.st_mode & stat.S_ISVTX) and _stat_uid(state_dir) != user.uid
    replace = st is not None and may(user, parent, os.W_OK) and may(user, parent, os.X_OK) and not sticky_guard
    found.append(_entry("folder above it", parent, st, read=False, write=replace, matters=False))
    for folder in (state_dir, state_dir / CONFDIR):
        try:
            names = sorted(os.listdir(folder))
        except OSError:  # not there, or not ours to list: the files are checked by name below
            names = []
        if folder == state_dir:
            names = sorted({*names, "state.db", "operator.token", "traces.jsonl"})
        elif not names:
            names = ["mitmproxy-ca.pem"]
        for name in names:
            path = folder / name
            st = _stat(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                continue
            what = _describe(name, folder != state_dir)
            found.append(
                _entry(what, path, st, may(user, path, os.R_OK), may(user, path, os.W_OK), not is_public(name))
            )
    return found


def _dir_access(user: User, what: str, path: Path) -> Access:
    st = _stat(path)
    listable = st is not None and may(user, path, os.R_OK) and may(user, path, os.X_OK)
    writable = st is not None and may(user, path, os.W_OK) and may(user, path, os.X_OK)
    return _entry(what, path, st, listable, writable, True)


def _entry(what: str, path: Path, st: os.stat_result | None, read: bool, write: bool, matters: bool) -> Access:
    if st is None:
        return Access(what, path, False if _missing(path) else None, None, None, False, False, matters)
    return Access(what, path, True, stat.S_IMODE(st.st_mode), _user_name(st.st_uid), read, write, matters)


def _describe(name: str, in_confdir: bool) -> str:
    if name == "operator.token":
        return "operator token"
    if name.startswith("state.db"):
        return "state database"
    if name.startswith("traces") and name.endswith(".jsonl"):
        return "trace file"
    if in_confdir:
        return "CA certificate" if is_public(name) else "CA private key"
    if is_public(name):
        return "public file"
    return "secret" if is_secret(name) else "state file"


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _missing(path: Path) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def _stat_uid(path: Path) -> int | None:
    st = _stat(path)
    return None if st is None else st.st_uid


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
