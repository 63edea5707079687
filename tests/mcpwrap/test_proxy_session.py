"""Tagging the wrapped server's proxy URL with mcpwrap's agent and session."""

from __future__ import annotations

import pytest

from mcpwrap.proxy_session import child_environment, tag_proxy_url

LISTEN = "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080", "http://claude%2Fs1@127.0.0.1:8080"),
        ("http://claude:tok@127.0.0.1:9999", "http://claude%2Fs1:tok@127.0.0.1:9999"),
        ("http://claude%2Fold:tok@127.0.0.1:8080", "http://claude%2Fs1:tok@127.0.0.1:8080"),
        ("http://cursor:tok@127.0.0.1:8080", None),
        ("http://proxy.corp:3128", None),
        ("http://[::1]:8080", None),
        ("not a url", None),
        ("http://127.0.0.1:notaport", None),
    ],
)
def test_only_the_mesh_proxy_for_this_agent_is_tagged(url: str, expected: str | None) -> None:
    assert tag_proxy_url(url, "claude", "s1", LISTEN) == expected


def test_the_environment_is_inherited_untouched_when_no_proxy_is_the_mesh() -> None:
    assert child_environment({"HTTPS_PROXY": "http://proxy.corp:3128", "PATH": "/bin"}, "claude", "s1", LISTEN) is None


def test_every_proxy_variable_pointing_at_the_mesh_is_tagged_and_the_rest_kept() -> None:
    env = {"HTTPS_PROXY": "http://claude:t@127.0.0.1:8080", "http_proxy": "http://127.0.0.1:8080", "HOME": "/root"}
    out = child_environment(env, "claude", "s1", LISTEN)
    assert out == {
        "HTTPS_PROXY": "http://claude%2Fs1:t@127.0.0.1:8080",
        "http_proxy": "http://claude%2Fs1@127.0.0.1:8080",
        "HOME": "/root",
    }
