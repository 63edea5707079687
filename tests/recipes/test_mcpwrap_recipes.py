"""The mcpwrap recipes (wrap a server, wrap a client config, govern a CLI, shims) run offline and pass."""

from __future__ import annotations

import mcp.client.stdio  # noqa: F401  (its errlog default binds sys.stderr at import: do it before any capfd)
import pytest

from tests.support.recipes import load_recipe


@pytest.mark.parametrize("name", ["mcpwrap_wrap_server", "mcpwrap_client_config", "mcpwrap_exec", "mcpwrap_shims"])
def test_the_recipe_runs_and_checks_its_own_result(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    module = load_recipe(name)
    assert module.main() == 0, capfd.readouterr().out
    assert "FAILED" not in capfd.readouterr().out
