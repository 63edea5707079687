"""The GitHub story recipe: server-github under mcpwrap, its REST calls through serve's proxy to a Prism mock
of GitHub's real spec; one policy governs both views."""

from __future__ import annotations

import pytest

from tests.support.recipes import load_recipe


def test_one_policy_governs_the_mcp_tool_and_the_rest_operation(capfd: pytest.CaptureFixture[str]) -> None:
    module = load_recipe("github_story")
    assert module.main() == 0, capfd.readouterr().out
    out = capfd.readouterr().out
    assert "trace: openapi   github.issues/create         deny  policy:claude/rest-no-urgent-issues" in out
    assert "trace: mcp_stdio github.create_issue          allow policy:claude/mcp-issues" in out
