"""The operator token file, login codes and sessions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policy.control import OperatorAuth, load_or_create_token
from policy.control.auth import TOKEN_FILE, parse_bearer


def test_the_token_is_generated_once_with_mode_0600_and_kept(tmp_path: Path) -> None:
    token, created = load_or_create_token(tmp_path / "state")
    assert created
    assert len(token) >= 32
    path = tmp_path / "state" / TOKEN_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_token(tmp_path / "state") == (token, False)


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create_token(tmp_path)
    os.chmod(tmp_path / TOKEN_FILE, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_or_create_token(tmp_path)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None), ("", None)],
)
def test_only_a_bearer_header_carries_a_token(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


def test_a_login_code_works_once_and_expires() -> None:
    now = [1000.0]
    auth = OperatorAuth("t" * 32, "alice", clock=lambda: now[0])
    code = auth.login_code()
    session = auth.redeem(code)
    assert session is not None
    assert session.operator == "alice"
    assert auth.redeem(code) is None
    stale = auth.login_code()
    now[0] += 16 * 60
    assert auth.redeem(stale) is None
    assert auth.redeem("made-up") is None


def test_sessions_expire_and_end_on_logout() -> None:
    now = [1000.0]
    auth = OperatorAuth("t" * 32, "alice", clock=lambda: now[0])
    session = auth.login_with_token("t" * 32)
    assert session is not None
    assert auth.login_with_token("wrong") is None
    assert auth.session(session.id) == session
    auth.logout(session.id)
    assert auth.session(session.id) is None
    later = auth.login_with_token("t" * 32)
    assert later is not None
    now[0] += 13 * 3600
    assert auth.session(later.id) is None
