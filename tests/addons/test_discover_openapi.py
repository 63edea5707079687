"""`agent-mesh discover --openapi SPEC --server NAME` prints the HTTP adapter's starter policy."""

from __future__ import annotations

from click.testing import CliRunner

from mcpwrap.discover import discover
from policy import load_config_text
from tests.addons.conftest import OAS_EXAMPLES, require


def test_discover_prints_a_starter_policy_for_an_openapi_spec() -> None:
    spec = require(OAS_EXAMPLES / "2.0/yaml/petstore.yaml")
    result = CliRunner().invoke(discover, ["--openapi", str(spec), "--server", "pets"])
    assert result.exit_code == 0, result.output
    loaded = load_config_text(result.output, "starter.yaml")
    rules = {r.name: r for r in loaded.config.policies[0].rules}
    assert "pets.getPetById" in rules["pets-reads"].tools
    assert "pets.deletePet" in rules["pets-writes"].tools


def test_discover_with_openapi_needs_a_server_name_and_no_command() -> None:
    assert "needs --server" in CliRunner().invoke(discover, ["--openapi", "x.json"]).output
    assert "takes no server command" in CliRunner().invoke(discover, ["--openapi", "x", "--server", "s", "cmd"]).output


def test_discover_reports_an_unreadable_spec_without_a_traceback() -> None:
    result = CliRunner().invoke(discover, ["--openapi", "/nonexistent.json", "--server", "s"])
    assert result.exit_code == 1
    assert "no such file" in result.output
