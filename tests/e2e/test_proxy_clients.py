"""Real clients (curl, requests, httpx, Node 22 and Node 20) through `agent-mesh proxy` over real TLS to a
local HTTPS upstream, trusting the mesh CA only through what `agent-mesh env` prints."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.proxy_harness import RunningProxy, client_env, make_private_ca, running_proxy, tls_upstream
from tests.support.proc import run
from tests.support.targets import Targets

CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  echo: {{base_url: "{base}"}}
proxy: {{extra_ca: ["{ca}"]}}
policies:
  - name: claude
    agent: claude
    rules:
      - {{name: reads, tools: ["echo.GET *"], action: allow}}
      - {{name: no-deletes, tools: ["echo.DELETE *"], action: deny}}
"""

PY_REQUESTS = """
import json, sys, requests
ok = requests.get(sys.argv[1] + "/items?x=" + sys.argv[2])
no = requests.delete(sys.argv[1] + "/items/" + sys.argv[2])
print(json.dumps([ok.status_code, ok.json(), no.status_code, no.headers["content-type"], no.json()]))
"""
PY_HTTPX = PY_REQUESTS.replace("requests", "httpx")
NODE = """
const base = process.argv[2];
(async () => {
  const ok = await fetch(base + "/items?x=" + process.argv[3]);
  const no = await fetch(base + "/items/" + process.argv[3], {method: "DELETE"});
  console.log(JSON.stringify([ok.status, await ok.json(), no.status, no.headers.get("content-type"), await no.json()]));
})().catch((e) => { console.error(e); process.exit(1); });
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningProxy, str, list[tuple[str, str]]]]:
    folder = tmp_path_factory.mktemp("clients")
    ca, leaf = make_private_ca(folder)
    with tls_upstream(leaf) as (base, seen):
        config = folder / "agent-mesh.yaml"
        config.write_text(CONFIG.format(base=base, ca=ca))
        with running_proxy(config) as proxy:
            yield proxy, base, seen


def _check(out: str, name: str, seen: list[tuple[str, str]]) -> None:
    status, body, denied, ctype, problem = json.loads(out.strip().splitlines()[-1])
    assert status == 200
    assert body["path"] == f"/items?x={name}"
    assert denied == 403
    assert ctype == "application/problem+json"
    assert problem["code"] == "denied"
    assert problem["rule"] == "claude/no-deletes"
    assert ("DELETE", f"/items/{name}") not in seen


def _env(proxy: RunningProxy) -> dict[str, str]:
    env = client_env(dict(os.environ), proxy.env("claude"))
    assert env["SSL_CERT_FILE"].endswith("ca-bundle.pem")
    return env


def test_curl_goes_through_the_proxy_with_the_mesh_ca(setup: tuple[RunningProxy, str, list[tuple[str, str]]]) -> None:
    proxy, base, seen = setup
    env = _env(proxy)
    ok = run(["curl", "-sS", "--fail-with-body", f"{base}/items?x=curl"], env=env)
    assert json.loads(ok.stdout)["path"] == "/items?x=curl"
    no = run(["curl", "-sS", "-X", "DELETE", "-w", "\n%{http_code} %{content_type}", f"{base}/items/curl"], env=env)
    body, meta = no.stdout.rsplit("\n", 1)
    assert meta == "403 application/problem+json"
    assert json.loads(body)["code"] == "denied"
    assert ("DELETE", "/items/curl") not in seen


@pytest.mark.parametrize(("name", "script"), [("requests", PY_REQUESTS), ("httpx", PY_HTTPX)])
def test_python_clients_go_through_the_proxy(
    name: str, script: str, setup: tuple[RunningProxy, str, list[tuple[str, str]]]
) -> None:
    proxy, base, seen = setup
    out = run([sys.executable, "-c", script, base, name], env=_env(proxy))
    _check(out.stdout, name, seen)


def test_node22_fetch_goes_through_the_proxy(
    setup: tuple[RunningProxy, str, list[tuple[str, str]]], node22: Path, tmp_path: Path
) -> None:
    proxy, base, seen = setup
    script = tmp_path / "client.js"
    script.write_text(NODE)
    out = run([node22, script, base, "node22"], env=_env(proxy))
    _check(out.stdout, "node22", seen)


def test_node20_fetch_goes_through_the_proxy_with_the_undici_preload(
    setup: tuple[RunningProxy, str, list[tuple[str, str]]], node20: Path, targets: Targets, tmp_path: Path
) -> None:
    proxy, base, seen = setup
    script = tmp_path / "client.js"
    script.write_text(NODE)
    env = _env(proxy) | {"NODE_OPTIONS": f"--require={targets.node_proxy_preload}"}
    out = run([node20, script, base, "node20"], env=env)
    _check(out.stdout, "node20", seen)


def test_a_client_without_the_mesh_ca_refuses_the_proxy_certificate(
    setup: tuple[RunningProxy, str, list[tuple[str, str]]],
) -> None:
    proxy, base, _seen = setup
    env = _env(proxy)
    env.pop("CURL_CA_BUNDLE")
    env["CURL_CA_BUNDLE"] = "/etc/ssl/certs/ca-certificates.crt"
    out = run(["curl", "-sS", f"{base}/items?x=untrusted"], env=env, check=False)
    assert out.returncode == 60  # SSL certificate problem: the mesh CA is trusted only through agent-mesh env


def test_wrong_proxy_credentials_get_407(setup: tuple[RunningProxy, str, list[tuple[str, str]]]) -> None:
    proxy, base, _seen = setup
    env = _env(proxy)
    bad = f"http://claude:wrong@127.0.0.1:{proxy.port}"
    env |= {"HTTPS_PROXY": bad, "https_proxy": bad}
    out = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}", f"{base}/x"], env=env, check=False)
    assert out.stdout == "407"
