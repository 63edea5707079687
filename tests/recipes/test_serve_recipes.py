"""The `agent-mesh serve` recipes run offline on loopback and check their own results."""

from __future__ import annotations

import pytest

from tests.support.recipes import load_recipe


def test_a_python_agent_through_https_proxy_is_governed_by_serve(capfd: pytest.CaptureFixture[str]) -> None:
    module = load_recipe("python_agent_via_proxy")
    assert module.main() == 0, capfd.readouterr().out
    out = capfd.readouterr().out
    assert "agent: GET /notes -> 200" in out
    assert "agent: DELETE /notes/1 -> 403" in out
    assert "operator: notes.createNote by notes-bot is waiting" in out
    assert "agent: POST /notes -> 201" in out
