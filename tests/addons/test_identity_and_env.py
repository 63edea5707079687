"""Proxy credentials, the agent environment, the CA and its bundle, and problem+json answers."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from addons.agent_env import agent_env, proxy_url, render
from addons.http_answers import refusal_answer
from addons.mesh_ca import ensure_ca, upstream_bundle
from addons.proxy_auth import ANONYMOUS, AgentAuth, AuthRequired, Identity, parse_basic
from policy import Action, Decision, Verdict, VerdictKind, load_config_text


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_known_agents_are_identified_by_their_token() -> None:
    auth = AgentAuth({"claude": "s3cret", "tokenless": None})
    assert auth.identify(basic("claude", "s3cret")) == Identity("claude")
    assert auth.identify(basic("tokenless", "anything")) == Identity("tokenless")


def test_a_user_name_can_tag_calls_with_a_session() -> None:
    assert AgentAuth({"claude": "s3cret"}).identify(basic("claude/mcpwrap-42", "s3cret")) == Identity(
        "claude", "mcpwrap-42"
    )
    with pytest.raises(AuthRequired):
        AgentAuth({"claude": "s3cret"}).identify(basic("/s", "s3cret"))


@pytest.mark.parametrize(
    "header", [None, basic("claude", "nope"), basic("mallory", "s3cret"), "Bearer x", "Basic !!!", basic("", "x")]
)
def test_missing_or_wrong_credentials_are_refused(header: str | None) -> None:
    with pytest.raises(AuthRequired):
        AgentAuth({"claude": "s3cret"}).identify(header)


def test_without_agents_the_user_name_or_anonymous_is_the_identity() -> None:
    auth = AgentAuth({})
    assert auth.identify(None) == Identity(ANONYMOUS)
    assert auth.identify(basic("bot", "")) == Identity("bot")
    assert parse_basic(basic("a", "b:c")) == ("a", "b:c")


CONFIG = load_config_text("version: 1\nagents: {claude: {token: 's/3 cret'}, open: {}}\n", "c.yaml").config


def test_the_agent_environment_carries_credentials_and_the_bundle(tmp_path: Path) -> None:
    env = agent_env(CONFIG, "claude", "0.0.0.0:8080", tmp_path / "ca.pem")
    assert env["HTTPS_PROXY"] == "http://claude:s%2F3%20cret@127.0.0.1:8080"
    assert env["http_proxy"] == env["HTTPS_PROXY"]
    assert env["NO_PROXY"] == ""
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert env[name] == str(tmp_path / "ca.pem")
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert proxy_url(CONFIG, "open", "127.0.0.1:9") == "http://open@127.0.0.1:9"
    with pytest.raises(ValueError, match="not in agents"):
        proxy_url(CONFIG, "mallory", "127.0.0.1:9")


def test_the_environment_renders_for_each_shell() -> None:
    env = {"A": "x y", "B": ""}
    assert render(env, "bash") == "export A='x y'\nexport B=''"
    assert render(env, "fish") == "set -gx A 'x y'\nset -gx B ''"
    assert json.loads(render(env, "json")) == env
    with pytest.raises(ValueError, match="shell"):
        render(env, "csh")


def test_the_ca_is_created_once_and_the_bundle_holds_it(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    again = ensure_ca(tmp_path)
    assert first.fingerprint == again.fingerprint
    bundle = first.bundle.read_bytes()
    assert first.cert.read_bytes().strip() in bundle
    assert bundle.count(b"-----BEGIN CERTIFICATE-----") > 1  # the system CAs come first


def test_extra_upstream_cas_are_checked_and_bundled(tmp_path: Path) -> None:
    assert upstream_bundle(tmp_path, []) is None
    ca = ensure_ca(tmp_path / "other")
    out = upstream_bundle(tmp_path, [str(ca.cert)])
    assert out is not None
    assert ca.cert.read_bytes().strip() in out.read_bytes()
    (tmp_path / "junk.pem").write_text("nope")
    with pytest.raises(ValueError, match="holds no PEM certificate"):
        upstream_bundle(tmp_path, ["junk.pem"], tmp_path)
    with pytest.raises(ValueError, match="cannot read"):
        upstream_bundle(tmp_path, ["missing.pem"], tmp_path)


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (VerdictKind.DENY, 403, "denied"),
        (VerdictKind.PENDING, 403, "approval_pending"),
        (VerdictKind.RATE_LIMITED, 429, "rate_limited"),
        (VerdictKind.LOOP_DETECTED, 429, "loop_detected"),
    ],
)
def test_refusals_are_problem_json_with_the_refusal_payload(kind: VerdictKind, status: int, code: str) -> None:
    decision = Decision(Action.DENY, "p/r", "because")
    approval = "ab12cd34ef56" if kind is VerdictKind.PENDING else None
    retry = 2.2 if kind is not VerdictKind.DENY else None
    answer = refusal_answer(Verdict(kind, decision, "policy:p/r", "because", "t1", approval, retry))
    body = json.loads(answer.body)
    assert answer.status == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert (body["status"], body["code"], body["rule"], body["trace_id"]) == (status, code, "p/r", "t1")
    assert body["type"].endswith(code)
    assert answer.headers.get("retry-after") == ("3" if retry else None)
    assert body.get("approval_id") == approval
