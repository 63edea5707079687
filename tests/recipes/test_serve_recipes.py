"""The `agent-mesh serve` recipes run offline on loopback and check their own results."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_a_python_agent_through_https_proxy_is_governed_by_serve(capfd: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("python_agent_via_proxy", RECIPES / "python_agent_via_proxy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert module.main() == 0, capfd.readouterr().out
    out = capfd.readouterr().out
    assert "agent: GET /notes -> 200" in out
    assert "agent: DELETE /notes/1 -> 403" in out
    assert "operator: notes.createNote by notes-bot is waiting" in out
    assert "agent: POST /notes -> 201" in out
