"""The GitHub story recipe: server-github under mcpwrap, its REST calls through serve's proxy to a Prism mock
of GitHub's real spec; one policy governs both views."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "github_story.py"


def test_one_policy_governs_the_mcp_tool_and_the_rest_operation(capfd: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("github_story", RECIPE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert module.main() == 0, capfd.readouterr().out
    out = capfd.readouterr().out
    assert "trace: openapi   github.issues/create         deny  policy:claude/rest-no-urgent-issues" in out
    assert "trace: mcp_stdio github.create_issue          allow policy:claude/mcp-issues" in out
