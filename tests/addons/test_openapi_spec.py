"""OpenAPI documents of every flavour reduce to operations with the right tool names and base URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from addons.openapi_spec import base_path_of, load_spec, parse_document, parse_spec, starter_policy
from policy import HttpInfo, ToolCall, compile_policies, decide, load_config_text
from tests.addons.conftest import GITHUB_SPEC, OAS_EXAMPLES, require

PETSTORES = [
    ("2.0/json/petstore.json", "2.0", "http://petstore.swagger.io/v2"),
    ("2.0/yaml/petstore.yaml", "2.0", "http://petstore.swagger.io/v2"),
    ("3.0/json/petstore.json", "3.0.0", "http://petstore.swagger.io/v2"),
    ("3.0/yaml/petstore.yaml", "3.0.0", "http://petstore.swagger.io/v2"),
    ("3.1/json/petstore.json", "3.1.0", "http://petstore.swagger.io/v2"),
    ("3.1/yaml/petstore.yaml", "3.1.0", "http://petstore.swagger.io/v2"),
]


@pytest.mark.parametrize(("rel", "version", "base"), PETSTORES)
def test_every_petstore_flavour_yields_its_twenty_operations(rel: str, version: str, base: str) -> None:
    spec = load_spec(str(require(OAS_EXAMPLES / rel)))
    assert spec.spec_version == version
    assert spec.base_urls[0] == base
    tools = {op.tool for op in spec.operations}
    assert len(spec.operations) == 20
    assert {"getPetById", "deletePet", "addPet", "findPetsByStatus"} <= tools


def test_server_variables_take_their_defaults() -> None:
    spec = load_spec(str(require(OAS_EXAMPLES / "3.0/json/server-variables.json")))
    assert spec.base_urls[0] == "https://demo.example.com:443/v2"


def test_operation_without_an_id_is_named_by_method_and_template() -> None:
    doc = {"openapi": "3.0.3", "paths": {"/things/{id}": {"delete": {}, "get": {"operationId": "getThing"}}}}
    spec = parse_spec(doc, "inline")
    assert sorted(op.tool for op in spec.operations) == ["DELETE /things/{id}", "getThing"]


def test_relative_server_url_is_kept_as_a_base_path() -> None:
    spec = parse_spec({"openapi": "3.0.0", "servers": [{"url": "/api/v3/"}], "paths": {}}, "inline")
    assert spec.base_urls == ("/api/v3",)
    assert base_path_of(spec.base_urls[0]) == "/api/v3"
    assert base_path_of("https://h.example/v1/") == "/v1"


def test_swagger_without_a_host_keeps_only_its_base_path() -> None:
    spec = parse_spec({"swagger": "2.0", "basePath": "/v1", "paths": {}}, "inline")
    assert spec.base_urls == ("/v1",)


def test_github_spec_has_over_a_thousand_operations() -> None:
    spec = load_spec(str(require(GITHUB_SPEC)))
    assert len(spec.operations) > 1000
    assert spec.base_urls == ("https://api.github.com",)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"info": {}}, "neither `openapi: 3.x` nor `swagger: '2.0'`"),
        ({"openapi": "3.0.0", "paths": []}, "`paths` must be a mapping"),
        ({"openapi": "3.0.0", "paths": {"pets": {}}}, "must start with '/'"),
        ({"openapi": "3.0.0", "servers": {}, "paths": {}}, "`servers` must be a list"),
    ],
)
def test_malformed_documents_are_refused_with_a_precise_message(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="inline") as err:
        parse_spec(doc, "inline")
    assert message in str(err.value)


def test_text_that_is_neither_json_nor_yaml_is_refused() -> None:
    with pytest.raises(ValueError, match="not JSON or YAML"):
        parse_document("{not json", "x.json")
    with pytest.raises(ValueError, match="must be a mapping"):
        parse_document("- a\n- b\n", "x.yaml")


def test_a_missing_spec_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        load_spec("nope.json", tmp_path)


def test_starter_policy_allows_reads_and_holds_writes() -> None:
    spec_path = str(require(OAS_EXAMPLES / "3.0/json/petstore.json"))
    text = starter_policy(spec_path, "petstore")
    loaded = load_config_text(text, "starter.yaml")
    ps = compile_policies(loaded)
    assert loaded.config.servers["petstore"].base_url == "http://petstore.swagger.io/v2"

    def verdict(tool: str, method: str) -> str:
        call = ToolCall("any", "openapi", "petstore", tool, http=HttpInfo(method, "petstore.swagger.io", "/"))
        return decide(call, ps, 0.0).action.value

    assert verdict("getPetById", "GET") == "allow"
    assert verdict("deletePet", "DELETE") == "human_approval"
    assert verdict("addPet", "POST") == "human_approval"


def test_starter_policy_refuses_a_server_name_that_is_not_a_word() -> None:
    with pytest.raises(ValueError, match="server name"):
        starter_policy("x.json", "my api")
