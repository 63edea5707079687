"""Request paths map to the right operation: literals beat templates, parameters are decoded."""

from __future__ import annotations

import time

import pytest

from addons.openapi_routes import Router, split_path
from addons.openapi_spec import Operation, load_spec
from tests.addons.conftest import GITHUB_SPEC, OAS_EXAMPLES, require

OPS = [
    Operation("GET", "/pets", "listPets"),
    Operation("POST", "/pets", "addPet"),
    Operation("GET", "/pets/mine", "getMyPets"),
    Operation("GET", "/pets/{petId}", "getPet"),
    Operation("DELETE", "/pets/{petId}", "deletePet"),
    Operation("GET", "/pets/{petId}/photo.{ext}", "getPhoto"),
    Operation("GET", "/files/{path}", "getFile"),
    Operation("GET", "/", "root"),
]


@pytest.mark.parametrize(
    ("method", "path", "tool", "params"),
    [
        ("GET", "/pets", "listPets", {}),
        ("GET", "/pets/", "listPets", {}),
        ("POST", "/pets?x=1", "addPet", {}),
        ("GET", "/pets/mine", "getMyPets", {}),
        ("GET", "/pets/42", "getPet", {"petId": "42"}),
        ("DELETE", "/pets/mine", "deletePet", {"petId": "mine"}),
        ("GET", "/pets/a%20b", "getPet", {"petId": "a b"}),
        ("GET", "/pets/7/photo.png", "getPhoto", {"petId": "7", "ext": "png"}),
        ("HEAD", "/pets/7", "getPet", {"petId": "7"}),
        ("GET", "/files/docs/a.md", "getFile", {"path": "docs/a.md"}),
        ("GET", "/", "root", {}),
    ],
)
def test_request_maps_to_its_operation(method: str, path: str, tool: str, params: dict[str, str]) -> None:
    match = Router(OPS).match(method, path)
    assert match is not None
    assert match.operation.tool == tool
    assert match.path_params == params


@pytest.mark.parametrize(("method", "path"), [("PUT", "/pets/1"), ("GET", "/cats"), ("GET", "/pets/1/2/3")])
def test_unknown_method_or_path_matches_nothing(method: str, path: str) -> None:
    assert Router(OPS).match(method, path) is None


@pytest.mark.parametrize(
    "path", ["/pets/../admin", "/pets/./1", "/pets//1", "pets", "/files/a%2Fb", "/pets/%2e%2e/admin", "/a\\b"]
)
def test_ambiguous_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match=r"segment|must start|character"):
        split_path(path)


@pytest.mark.parametrize(
    ("method", "path", "operation_id"),
    [
        ("GET", "/pet/12", "getPetById"),
        ("GET", "/pet/findByStatus", "findPetsByStatus"),
        ("DELETE", "/pet/12", "deletePet"),
        ("POST", "/pet/12/uploadImage", "uploadFile"),
        ("GET", "/store/inventory", "getInventory"),
        ("GET", "/user/login", "loginUser"),
        ("GET", "/user/someone", "getUserByName"),
    ],
)
@pytest.mark.parametrize("flavour", ["2.0/json/petstore.json", "3.0/yaml/petstore.yaml", "3.1/json/petstore.json"])
def test_real_petstore_specs_route_like_the_api(flavour: str, method: str, path: str, operation_id: str) -> None:
    spec = load_spec(str(require(OAS_EXAMPLES / flavour)))
    match = Router(spec.operations).match(method, path)
    assert match is not None
    assert match.operation.operation_id == operation_id


GITHUB_CASES = [
    ("GET", "/repos/octocat/hello/pulls/12", "pulls/get", {"owner": "octocat", "repo": "hello", "pull_number": "12"}),
    ("PUT", "/repos/o/r/pulls/1/merge", "pulls/merge", {"owner": "o", "repo": "r", "pull_number": "1"}),
    ("DELETE", "/repos/o/r", "repos/delete", {"owner": "o", "repo": "r"}),
    ("GET", "/user", "users/get-authenticated", {}),
    ("GET", "/repos/o/r/contents/a/b.md", "repos/get-content", {"owner": "o", "repo": "r", "path": "a/b.md"}),
    (
        "GET",
        "/repos/o/r/compare/main...dev",
        "repos/compare-commits",
        {"owner": "o", "repo": "r", "base": "main", "head": "dev"},
    ),
    ("POST", "/repos/o/r/issues", "issues/create", {"owner": "o", "repo": "r"}),
]


@pytest.mark.parametrize(("method", "path", "operation_id", "params"), GITHUB_CASES)
def test_github_spec_routes_real_api_paths(method: str, path: str, operation_id: str, params: dict[str, str]) -> None:
    router = _github_router()
    match = router.match(method, path)
    assert match is not None
    assert match.operation.operation_id == operation_id
    assert match.path_params == params


def test_github_router_compiles_every_operation_and_matches_quickly() -> None:
    router = _github_router()
    assert router.size > 1000
    start = time.perf_counter()
    for _ in range(200):
        for method, path, _op, _params in GITHUB_CASES:
            router.match(method, path)
    per_match_us = (time.perf_counter() - start) / (200 * len(GITHUB_CASES)) * 1e6
    print(f"GitHub spec: {router.size} operations, {per_match_us:.1f} µs per match")


_ROUTER: list[Router] = []


def _github_router() -> Router:
    if not _ROUTER:
        _ROUTER.append(Router(load_spec(str(require(GITHUB_SPEC))).operations))
    return _ROUTER[0]
