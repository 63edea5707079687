"""The state dir's permissions: created 0700 with files 0600, and refused at start when other users can reach it.

An agent that can read `operator.token` or write `state.db` can approve its own calls, so the state is
private to the mesh's OS user. What is created here is created private whatever the umask. What exists is
checked once per process: a state dir other users can enter is refused with the `chmod` that fixes it; an open
file inside a 0700 dir (which no other user can reach through it) is a warning with its fix.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from policy.core.errors import StoreUnavailable

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
CONFDIR = "mitmproxy"
# Certificates (never keys) that agents are meant to be handed, and public keys (`*.pub`).
PUBLIC_FILES = frozenset(
    {
        "ca-bundle.pem",
        "upstream-ca.pem",
        "mitmproxy-ca-cert.pem",
        "mitmproxy-ca-cert.cer",
        "mitmproxy-ca-cert.p12",
        "mitmproxy-dhparam.pem",
        ".gitignore",
    }
)
_STATE_PREFIXES = ("state.db", "traces", "operator.token")
_SECRET_WORDS = ("key", "token", "secret", "private", "mitmproxy-ca.")
log = logging.getLogger("agent_mesh.statedir")


class StateDirExposed(StoreUnavailable):
    """The state dir, or a file in it, can be read or written by users other than its owner."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """One path that other users can reach, its mode, and the command that closes it."""

    path: Path
    mode: int
    fix: str
    serious: bool  # the state dir itself is open: every file in it is as open as its own mode says

    def __str__(self) -> str:
        owned = self.fix.partition("(it is ")[2].rstrip(")")
        return f"{self.path} (mode {self.mode:04o}{', ' + owned if owned else ''})"


def make_private_dir(path: str | Path) -> Path:
    """Create `path` with mode 0700 (its missing parents as usual); an existing folder is left as it is."""
    folder = Path(path)
    try:
        os.mkdir(folder, PRIVATE_DIR)
    except FileExistsError:
        return folder
    except FileNotFoundError:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder, PRIVATE_DIR)
        except FileExistsError:  # another process made it meanwhile
            return folder
    os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is masked by the umask; this is the mode we mean
    # A state dir inside a repository ignores itself: `git add -A` / `git stash -u` never pick up the token.
    if create_private_file(folder / ".gitignore"):
        (folder / ".gitignore").write_text("# agent-mesh state: never commit it\n*\n", "utf-8")
    return folder


def create_private_file(path: str | Path) -> bool:
    """Create an empty file with mode 0600 unless it exists; True when it was created here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return True


def exposures(state_dir: str | Path) -> list[Exposure]:
    """What in `state_dir` (and the CA's folder in it) other users can reach; empty when it does not exist."""
    root = Path(state_dir)
    found: list[Exposure] = []
    for folder in (root, root / CONFDIR):
        try:
            st = os.stat(folder)  # followed: a state dir that is a symlink is as open as where it leads
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid != os.geteuid():
            # another user (the agent's?) owns it: it may chmod it open or swap state.db at any time
            owner = _user_name(st.st_uid)
            fix = f"chown -R {_user_name(os.geteuid())} {_quote(folder)}"
            found.append(Exposure(folder, stat.S_IMODE(st.st_mode), f"{fix} (it is owned by {owner})", True))
        try:
            names = os.listdir(folder)
        except OSError:  # not ours to list (another user's state dir): opening its files will say so
            names = []
        if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o077:
            found.append(Exposure(folder, stat.S_IMODE(st.st_mode), f"chmod 700 {_quote(folder)}", folder == root))
        for name in sorted(names):
            path = folder / name
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # removed meanwhile (a rotated trace, a -shm file)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            public = is_public(name)
            if st.st_mode & (0o022 if public else 0o077):
                fix = "chmod go-w" if public else "chmod 600"
                found.append(Exposure(path, stat.S_IMODE(st.st_mode), f"{fix} {_quote(path)}", False))
    return found


def is_public(name: str) -> bool:
    """A certificate or public key, meant to be handed out: readable by others is fine, writable is not."""
    return name in PUBLIC_FILES or name.endswith(".pub")


def is_secret(name: str) -> bool:
    """Whether a file of the state dir is the state itself or a secret (by name: never handed to agents)."""
    low = name.lower()
    return not is_public(name) and (low.startswith(_STATE_PREFIXES) or any(w in low for w in _SECRET_WORDS))


def explain(state_dir: str | Path, found: list[Exposure]) -> str:
    """One message naming what is open and the commands that close it."""
    what = ", ".join(str(e) for e in found)
    fixes = "; ".join(dict.fromkeys(e.fix for e in found))
    if not any(e.serious for e in found):
        return (
            f"files in the state dir {state_dir} are open to other users: {what}. Its folder (0700) keeps them "
            f"out for now; make them private too. Run: {fixes}"
        )
    return (
        f"the state dir {state_dir} can be reached by other users: {what}. Agents running as another user could "
        f"read the operator token or change approvals. Run: {fixes}"
    )


_checked: set[str] = set()
_lock = threading.Lock()


def require_private(state_dir: str | Path) -> None:
    """Raise StateDirExposed (with the fix) when other users can reach `state_dir`; checked once per process
    and folder, and not at all while it does not exist (it will be created private)."""
    key = os.path.abspath(state_dir)
    with _lock:
        if key in _checked:
            return
    found = exposures(key)
    if any(e.serious for e in found):
        raise StateDirExposed(explain(key, found))
    if found:
        log.warning("agent-mesh: %s", explain(key, found))
    with _lock:
        _checked.add(key)


def forget_checks() -> None:
    """Check every folder again on its next use (after a chmod, in a long-lived process or a test)."""
    with _lock:
        _checked.clear()


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _quote(path: Path) -> str:
    text = str(path)
    return text if all(c.isalnum() or c in "/._-+,@%:" for c in text) else "'" + text.replace("'", "'\\''") + "'"
