"""`agent-mesh env --session NAME`: every call the agent makes through the proxy is traced under session NAME."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from addons.agent_env import SESSION_MAX, parse_session, proxy_url
from addons.proxy_auth import AgentAuth, Identity
from policy import load_config_text
from policy.cli import cli
from tests.addons.harness import harness, make_flow, write_config


def proxy_authorization(url: str) -> str:
    """The header an HTTP client sends for a proxy URL with credentials (user and password URL-decoded)."""
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def env_for(config: Path, *extra: str) -> dict[str, str]:
    out = CliRunner().invoke(cli, ["env", "--agent", "claude", "--shell", "json", "--config", str(config), *extra])
    assert out.exit_code == 0, out.output
    return dict(json.loads(out.stdout))


async def test_calls_made_with_the_session_environment_are_traced_under_that_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = env_for(write_config(tmp_path), "--session", "nightly-42")
    assert env["AGENT_MESH_SESSION"] == "nightly-42"
    assert urlsplit(env["HTTPS_PROXY"]).username == "claude%2Fnightly-42"
    with harness(tmp_path) as h:
        flow = make_flow("GET", "https://petstore.test/v2/pet/7", agent=None)
        flow.request.headers["proxy-authorization"] = proxy_authorization(env["HTTPS_PROXY"])
        await h.addon.request(flow)
        assert flow.response is None
        h.respond(flow, 200, {"id": 7})
        (rec,) = h.records
        assert (rec["agent"], rec["session_id"]) == ("claude", "nightly-42")


def test_without_a_session_the_environment_is_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = env_for(write_config(tmp_path))
    assert "AGENT_MESH_SESSION" not in env
    assert urlsplit(env["HTTPS_PROXY"]).username == "claude"


HOSTILE_NAMES = ["", "a/b", "a b", "é", "a\nb", "%2F", "x" * (SESSION_MAX + 1), ":", "a:b", "a@b", "..\\x"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_session_name_that_a_url_or_trace_reader_could_misread_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path)
    out = CliRunner().invoke(cli, ["env", "--agent", "claude", "--session", name, "--config", str(config)])
    assert out.exit_code == 2
    assert "--session" in out.output
    assert "HTTPS_PROXY" not in out.stdout


OPEN = load_config_text("version: 1\n", "open.yaml").config  # no agents: the user name is the identity


@given(st.text(max_size=80))
def test_any_accepted_session_name_comes_back_from_the_proxy_exactly(name: str) -> None:
    try:
        parse_session(name)
    except ValueError:
        return
    url = proxy_url(OPEN, "claude", "127.0.0.1:8080", name)
    assert AgentAuth({}).identify(proxy_authorization(url)) == Identity("claude", name)
