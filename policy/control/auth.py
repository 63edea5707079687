"""Who may use the control plane: the operator token (a 0600 file in state_dir), one-time login links,
browser sessions (HttpOnly, SameSite=Strict cookie) and their CSRF tokens.

Agent proxy credentials are never operator credentials: a token equal to an agent's is refused at start.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from policy.store.statedir import StateDirExposed, make_private_dir, require_private

TOKEN_FILE = "operator.token"
SESSION_COOKIE = "mesh_session"
CSRF_HEADER = "x-csrf-token"
LOGIN_LINK_SECONDS = 15 * 60.0
SESSION_SECONDS = 12 * 3600.0
MIN_TOKEN_LENGTH = 16


def parse_bearer(header: str | None) -> str | None:
    """`Bearer <token>` -> the token; None for a missing header or any other scheme."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_token(token: str, agent_tokens: Iterable[str | None]) -> str:
    """Validate an operator token. Raises ValueError when it is short or equals an agent's token."""
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the operator token must have at least {MIN_TOKEN_LENGTH} characters")
    if any(t is not None and same_secret(token, t) for t in agent_tokens):
        raise ValueError("the operator token equals an agent's proxy token: agents must never hold it")
    return token


def load_or_create_token(state_dir: Path) -> tuple[str, bool]:
    """(token, created): read `<state_dir>/operator.token`, or write a new random one with mode 0600."""
    path = state_dir / TOKEN_FILE
    try:
        require_private(state_dir)
    except StateDirExposed as exc:
        raise ValueError(str(exc)) from None
    make_private_dir(state_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            raise ValueError(f"{path} is readable by other users: run `chmod 600 {path}`") from None
        token = path.read_text("utf-8").strip()
        if not token:
            raise ValueError(f"{path} is empty: delete it to have a new token generated") from None
        return token, False
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True


@dataclass(frozen=True, slots=True)
class Session:
    """A browser logged in as the operator; `csrf` must accompany every state-changing request."""

    id: str
    operator: str
    csrf: str
    expires_at: float


class OperatorAuth:
    """Holds the operator token, pending one-time login codes and live browser sessions (in memory)."""

    def __init__(self, token: str, operator: str, *, clock: Callable[[], float] = time.time) -> None:
        self.token = token
        self.operator = operator
        self._clock = clock
        self._codes: dict[str, float] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def token_ok(self, given: str | None) -> bool:
        return same_secret(given, self.token)

    def login_code(self) -> str:
        """A new one-time code for the login link; valid for LOGIN_LINK_SECONDS."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = self._clock() + LOGIN_LINK_SECONDS
        return code

    def redeem(self, code: str | None) -> Session | None:
        """Use a login code once: a new Session, or None when the code is unknown, used or stale."""
        if not code:
            return None
        now = self._clock()
        with self._lock:
            match = next((c for c in self._codes if same_secret(code, c)), None)
            if match is None:
                return None
            expires = self._codes.pop(match)
            if expires <= now:
                return None
            return self._open(now)

    def login_with_token(self, token: str | None) -> Session | None:
        """A Session for whoever types the operator token into the login form."""
        if not self.token_ok(token):
            return None
        with self._lock:
            return self._open(self._clock())

    def _open(self, now: float) -> Session:
        for sid in [s for s, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[sid]
        session = Session(secrets.token_urlsafe(32), self.operator, secrets.token_urlsafe(24), now + SESSION_SECONDS)
        self._sessions[session.id] = session
        return session

    def session(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            found = self._sessions.get(session_id)
        if found is None or found.expires_at <= self._clock():
            return None
        return found

    def logout(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)
