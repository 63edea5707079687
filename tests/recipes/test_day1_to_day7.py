"""The day-1 → day-7 recipe runs offline and checks its own story."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "day1_to_day7.py"


def test_three_approvals_teach_memory_and_a_different_argument_still_asks(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("day1_to_day7", RECIPE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0
    out = capsys.readouterr().out
    assert "day 4: restart staging-web -> allow by memory:3" in out
    assert "day 7: restart prod-db -> pending" in out
