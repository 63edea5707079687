"""The operator-tools recipe runs offline: check, use, traces search and export, JSON errors."""

from __future__ import annotations

import pytest

from tests.support.recipes import load_recipe


def test_the_operator_s_day_with_the_cli_checks_itself(capfd: pytest.CaptureFixture[str]) -> None:
    assert load_recipe("operator_tools").main() == 0, capfd.readouterr().out
    out = capfd.readouterr().out
    assert "FAILED" not in out
    assert "(did you mean 'notes'?)" in out
    assert "operator_tools: OK" in out
