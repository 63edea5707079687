"""The day-1 → day-7 recipe runs offline and checks its own story."""

from __future__ import annotations

import pytest

from tests.support.recipes import load_recipe


def test_three_approvals_teach_memory_and_a_different_argument_still_asks(capsys: pytest.CaptureFixture[str]) -> None:
    module = load_recipe("day1_to_day7")
    assert module.main() == 0
    out = capsys.readouterr().out
    assert "day 4: restart staging-web -> allow by memory:3" in out
    assert "day 7: restart prod-db -> pending" in out
