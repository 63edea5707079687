"""The mcpwrap recipes (wrap a server, wrap a client config, govern a CLI, shims) run offline and pass."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mcp.client.stdio  # noqa: F401  (its errlog default binds sys.stderr at import: do it before any capfd)
import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("name", ["mcpwrap_wrap_server", "mcpwrap_client_config", "mcpwrap_exec", "mcpwrap_shims"])
def test_the_recipe_runs_and_checks_its_own_result(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0, capfd.readouterr().out
    assert "FAILED" not in capfd.readouterr().out
