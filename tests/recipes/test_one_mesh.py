"""The one-mesh recipe runs offline: one policy, one answer, on mcpwrap's stdio and through the proxy."""

from __future__ import annotations

import mcp.client.stdio  # noqa: F401  (its errlog default binds sys.stderr at import: do it before any capfd)
import pytest

from tests.support.recipes import load_recipe


def test_the_same_call_gets_the_same_verdict_and_rule_on_both_surfaces(capfd: pytest.CaptureFixture[str]) -> None:
    assert load_recipe("one_mesh").main() == 0, capfd.readouterr().out
    out = capfd.readouterr().out
    assert "FAILED" not in out
    assert "explain  -> deny by guard/state-dir" in out
    assert "one_mesh: OK" in out
