"""Prism mocks of real OpenAPI specs (the petstore and GitHub's api.github.com.json) behind the proxy, each one
config line (`upstream:`) away from the public API it stands in for: the agent calls http://petstore.swagger.io/v2
and https://api.github.com, the proxy judges them as those APIs' operations and sends them to the mocks. Reads
pass, DELETE is refused with problem+json, a POST is held until `agent-mesh approvals approve` lets it through,
and the trace names each call by its operationId."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.proxy_harness import AGENT_MESH, RunningProxy, running_proxy
from tests.support.proc import run
from tests.support.targets import Targets

CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  petstore: {{openapi: "{petstore_spec}", upstream: "{petstore}"}}
  github: {{openapi: "{github_spec}", upstream: "{github}"}}
approval: {{hold_seconds: 60}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: reads, tools: ["petstore.getPetById", "github.repos/get", "github.issues/get"], action: allow}}
      - {{name: no-deletes, tools: ["petstore.deletePet", "github.repos/delete"], action: deny}}
      - {{name: writes-ask, tools: ["petstore.addPet", "github.issues/create"], action: human_approval}}
"""
# The public URLs the specs name: offline here, only `upstream:` takes a request anywhere.
PETSTORE = "http://petstore.swagger.io/v2"
GITHUB = "https://api.github.com"
HEADERS = {"accept": "application/json", "authorization": "Bearer not-a-real-token", "api_key": "not-a-real-key"}


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, targets: Targets, petstore_api: str, github_api: str
) -> Iterator[RunningProxy]:
    folder = tmp_path_factory.mktemp("prism")
    config = folder / "agent-mesh.yaml"
    config.write_text(
        CONFIG.format(
            petstore_spec=targets.spec("petstore"),
            petstore=petstore_api,
            github_spec=targets.spec("github"),
            github=github_api,
        )
    )
    with running_proxy(config) as running:
        yield running


@pytest.fixture(scope="module")
def trusted(proxy: RunningProxy) -> ssl.SSLContext:
    """The agent's TLS trust: the bundle `agent-mesh env` gives (system CAs plus the mesh CA)."""
    return ssl.create_default_context(cafile=proxy.env("claude")["SSL_CERT_FILE"])


def _client(proxy: RunningProxy, trusted: ssl.SSLContext) -> httpx.Client:
    proxy_url = f"http://claude:s3cret@127.0.0.1:{proxy.port}"
    return httpx.Client(proxy=proxy_url, headers=HEADERS, timeout=90, verify=trusted, trust_env=False)


def _cli(proxy: RunningProxy, *args: str) -> Any:
    return json.loads(run([AGENT_MESH, *args, "--config", proxy.config, "--json"]).stdout)


def _held_then_approved(
    proxy: RunningProxy, trusted: ssl.SSLContext, url: str, body: dict[str, Any], tool: str
) -> httpx.Response:
    """POST in a thread, wait (bounded) for its approval to appear, approve it from the CLI, return the answer."""
    result: dict[str, httpx.Response] = {}

    def post() -> None:
        with _client(proxy, trusted) as client:
            result["r"] = client.post(url, json=body)

    thread = threading.Thread(target=post)
    thread.start()
    pending: list[dict[str, Any]] = []
    for _ in range(100):
        pending = [a for a in _cli(proxy, "approvals", "list") if f"{a['server']}.{a['tool']}" == tool]
        if pending:
            break
        thread.join(0.1)
    assert pending, f"no pending approval for {tool}"
    assert thread.is_alive()
    _cli(proxy, "approvals", "approve", pending[0]["id"])
    thread.join(30)
    return result["r"]


def _traced_tools(proxy: RunningProxy, want: set[str]) -> dict[str, str]:
    """Tool -> verdict from `agent-mesh traces query`, once every wanted tool shows (the writer is batched)."""
    seen: dict[str, str] = {}
    for _ in range(100):
        out = run([AGENT_MESH, "traces", "query", "--config", proxy.config, "--json", "--limit", "0"]).stdout
        seen = {r["tool"]: r["verdict"] for r in map(json.loads, out.splitlines())}
        if want <= set(seen):
            break
        threading.Event().wait(0.1)
    return seen


def test_petstore_get_passes_delete_is_refused_and_post_waits_for_the_cli(
    proxy: RunningProxy, trusted: ssl.SSLContext
) -> None:
    with _client(proxy, trusted) as client:
        ok = client.get(f"{PETSTORE}/pet/1")
        assert ok.status_code == 200
        problem_ok = {"Accept": "application/problem+json, application/json"}
        no = client.delete(f"{PETSTORE}/pet/1", headers=problem_ok)
        assert no.status_code == 403
        assert no.headers["content-type"] == "application/problem+json"
        assert no.json()["code"] == "denied"
        # A client that accepts only JSON gets the same body as application/json (many SDKs parse only that).
        plain = client.delete(f"{PETSTORE}/pet/2", headers={"Accept": "application/json"})
        assert plain.status_code == 403
        assert plain.headers["content-type"] == "application/json"
        assert plain.json()["code"] == "denied"
    pet = {"name": "rex", "photoUrls": []}
    created = _held_then_approved(proxy, trusted, f"{PETSTORE}/pet", pet, "petstore.addPet")
    # Forwarded once approved: Prism answers with the only response the spec defines for addPet (405).
    assert created.status_code == 405
    assert "problem+json" not in created.headers.get("content-type", "")
    traced = _traced_tools(proxy, {"petstore.getPetById", "petstore.deletePet", "petstore.addPet"})
    assert traced["petstore.getPetById"] == "allow"
    assert traced["petstore.deletePet"] == "deny"
    assert traced["petstore.addPet"] == "allow"


def test_github_spec_operations_are_governed_by_operation_id(proxy: RunningProxy, trusted: ssl.SSLContext) -> None:
    with _client(proxy, trusted) as client:
        ok = client.get(f"{GITHUB}/repos/octocat/hello-world")
        assert ok.status_code == 200
        no = client.delete(f"{GITHUB}/repos/octocat/hello-world")
        assert no.status_code == 403
        assert no.json()["rule"] == "claude/no-deletes"
    issue = _held_then_approved(
        proxy, trusted, f"{GITHUB}/repos/octocat/hello-world/issues", {"title": "from the mesh"}, "github.issues/create"
    )
    assert issue.status_code == 201
    traced = _traced_tools(proxy, {"github.repos/get", "github.repos/delete", "github.issues/create"})
    assert traced["github.repos/delete"] == "deny"
    assert traced["github.issues/create"] == "allow"


def test_an_undocumented_path_on_a_known_api_is_judged_as_plain_http(
    proxy: RunningProxy, trusted: ssl.SSLContext
) -> None:
    with _client(proxy, trusted) as client:
        answer = client.post(f"{GITHUB}/not/an/endpoint", json={})
    assert answer.status_code == 403
    assert answer.json()["code"] == "denied"
    assert answer.json()["rule"] == "default"
    assert "github.POST /not/an/endpoint" in answer.json()["reason"]


def test_the_control_plane_cannot_be_reached_through_the_proxy(proxy: RunningProxy, trusted: ssl.SSLContext) -> None:
    with _client(proxy, trusted) as client:
        answer = client.get("http://127.0.0.1:8181/api/approvals")
    assert answer.status_code == 403
    assert answer.json()["code"] == "control_plane"
