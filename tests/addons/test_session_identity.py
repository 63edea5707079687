"""`agent-mesh env --session NAME` puts the session in the proxy user (`AGENT/SESSION`); the agent knows its own
token and can write any user name. The proxy reads the session by the grammar `env` writes (1-64 letters,
digits, `.`, `_`, `-`): a control character, a second `/`, a colon-free smuggled name or a kilobyte of text is
refused (407), never written into every trace record; whatever `env --session` accepts round-trips."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.agent_env import SESSION_MAX, SESSION_PUNCTUATION, parse_session, proxy_url
from addons.proxy_auth import AgentAuth, AuthRequired, Identity
from policy import load_config_text

AUTH = AgentAuth({"claude": "s3cret", "open": None})
CONFIG = load_config_text("version: 1\nagents: {claude: {token: s3cret}}\n", "c.yaml").config


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "session",
    [
        "x\x1b[2J",  # terminal escapes
        "x\r\nagent: root",
        "a/b",  # a second separator
        "claude-2/x",
        "x" * (SESSION_MAX + 1),
        "x y",
        "s\u202e",
        "\u0455ession",  # a Cyrillic letter
    ],
)
def test_a_session_outside_the_grammar_env_writes_is_refused(session: str) -> None:
    with pytest.raises(AuthRequired, match="session"):
        AUTH.identify(basic(f"claude/{session}", "s3cret"))
    with pytest.raises(AuthRequired, match="session"):
        AUTH.identify(basic(f"open/{session}", ""))


def test_an_agent_without_a_session_is_unchanged() -> None:
    assert AUTH.identify(basic("claude", "s3cret")) == Identity("claude")


name = st.text(
    st.characters(codec="ascii", categories=("Lu", "Ll", "Nd"), include_characters=SESSION_PUNCTUATION),
    min_size=1,
    max_size=SESSION_MAX,
)


@given(name)
def test_every_session_env_accepts_round_trips_through_the_proxy_url(session: str) -> None:
    url = urlsplit(proxy_url(CONFIG, "claude", "127.0.0.1:8080", session))
    user, password = unquote(url.username or ""), unquote(url.password or "")
    assert AUTH.identify(basic(user, password)) == Identity("claude", parse_session(session))


@given(st.text(max_size=80))
def test_the_proxy_accepts_exactly_the_sessions_env_accepts(session: str) -> None:
    try:
        parse_session(session)
        accepted = True
    except ValueError:
        accepted = False
    header = basic(f"claude/{session}", "s3cret")
    if session == "":
        assert AUTH.identify(header) == Identity("claude")  # `claude/` names no session
    elif accepted:
        assert AUTH.identify(header) == Identity("claude", session)
    else:
        with pytest.raises(AuthRequired):
            AUTH.identify(header)
