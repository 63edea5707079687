"""Through the real proxy, every request is judged on what the upstream runs, or refused (issue 13):
a real MCP SDK server gets no denied call in any body spelling its SDK accepts (class 1); a REST upstream
never runs a route the proxy did not judge (classes 2, 3); an approval for staging is not spent on
production, nor on another body (class 6)."""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.proxy_harness import AGENT_MESH, RunningProxy, make_private_ca, running_proxy, tls_upstream
from tests.support.net import free_port
from tests.support.proc import Proc, run

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).with_name("mcp_notes_server.py")
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
}
CONFIG = """
version: 1
state_dir: state
agents: {{claude: {{token: s3cret}}}}
servers:
  notes: {{mcp_url: "{mcp}"}}
  api: {{openapi: spec.json}}
proxy: {{extra_ca: ["{ca}"]}}
approval: {{hold_seconds: 0}}
memory: {{auto_approve_after: 1}}
policies:
  - name: claude
    agent: claude
    loop_detection: {{enabled: false}}
    rules:
      - {{name: reads, tools: ["notes.read_note", "api.notes_get"], action: allow}}
      - {{name: no-deletes, tools: ["notes.delete_note", "api.notes_purge"], action: deny, reason: kept}}
      - {{name: no-wipe, tools: ["api.notes_update"], when: {{args.text: {{eq: wipe}}}}, action: deny}}
      - {{name: updates-ask, tools: ["api.notes_update"], action: human_approval}}
"""


def spec(staging: str, production: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.0",
        "info": {"title": "notes", "version": "1"},
        "servers": [{"url": f"{staging}/v1", "description": "staging"}, {"url": f"{production}/v1"}],
        "paths": {
            "/notes/{id}": {"get": {"operationId": "notes_get"}, "post": {"operationId": "notes_update"}},
            "/notes/{id}/purge": {"post": {"operationId": "notes_purge"}},
        },
    }


class Setup:
    def __init__(self, proxy: RunningProxy, mcp: str, staging: str, production: str, seen: list[Any]) -> None:
        self.proxy, self.mcp, self.staging, self.production, self.seen = proxy, mcp, staging, production, seen

    def client(self) -> httpx.Client:
        trust = ssl.create_default_context(cafile=self.proxy.env("claude")["SSL_CERT_FILE"])
        return httpx.Client(proxy=f"http://claude:s3cret@127.0.0.1:{self.proxy.port}", verify=trust, timeout=30)

    def cli(self, *args: str) -> str:
        return run([AGENT_MESH, *args, "--config", str(self.proxy.config)]).stdout

    def calls(self, server: str, count: int) -> list[tuple[str, str, str]]:
        """(tool, verdict, outcome) of the server's traced calls, oldest first, once `count` are written
        (the trace writer is batched: bounded retries of the query, no sleeps)."""
        found: list[tuple[str, str, str]] = []
        for _ in range(50):
            out = self.cli("traces", "query", "--json", "--limit", "0")
            records = [json.loads(line) for line in out.splitlines()]
            found = sorted((r["tool"], r["verdict"], r["outcome"]) for r in records if r["server"] == server)
            if len(found) >= count and all(o not in (None, "pending") for _t, _v, o in found):
                break
        return found


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("canonical")
    ca, leaf = make_private_ca(folder)
    port = free_port()
    with (
        Proc([sys.executable, SERVER, str(port), "streamable-http", "--json", "--stateless"], name="notes") as notes,
        tls_upstream(leaf) as (staging, seen_staging),
        tls_upstream(leaf) as (production, seen_production),
    ):
        notes.wait_for_port(port, timeout=20)
        mcp = f"http://127.0.0.1:{port}/mcp"
        (folder / "spec.json").write_text(json.dumps(spec(staging, production)))
        config = folder / "agent-mesh.yaml"
        config.write_text(CONFIG.format(mcp=mcp, ca=ca))
        with running_proxy(config) as proxy:
            yield Setup(proxy, mcp, staging, production, [seen_staging, seen_production])


def tool_call(name: str, rid: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "tools/call",
        "params": {"name": name, "arguments": {"name": "hello"}, "_meta": META},
    }


def spellings(name: str) -> list[tuple[str, bytes, list[tuple[str, str]]]]:
    """(label, body, content-type headers): each a spelling the MCP Python SDK accepts and runs."""
    plain = json.dumps(tool_call(name, 7))
    return [
        ("listed type", plain.encode(), [("content-type", "application/json, text/plain")]),
        ("two headers", plain.encode(), [("content-type", "application/json"), ("content-type", "text/plain")]),
        ("json-x", plain.encode(), [("content-type", "application/json-x")]),
        ("bom", b"\xef\xbb\xbf" + plain.encode(), [("content-type", "application/json")]),
        ("utf-16", plain.encode("utf-16"), [("content-type", "application/json")]),
        ("utf-32", plain.encode("utf-32"), [("content-type", "application/json")]),
        ("escaped key", plain.replace('"jsonrpc"', '"\\u006asonrpc"').encode(), [("content-type", "application/json")]),
    ]


def post_mcp(c: httpx.Client, url: str, body: bytes, ctypes: list[tuple[str, str]], name: str) -> httpx.Response:
    headers = [("accept", "application/json, text/event-stream"), ("mcp-protocol-version", "2026-07-28"), *ctypes]
    headers += [("mcp-method", "tools/call"), ("mcp-name", name)]
    return c.post(url, content=body, headers=httpx.Headers(headers))


def refused_or_denied(resp: httpx.Response) -> bool:
    if resp.status_code == 400:
        return True
    result = resp.json().get("result") or {}
    return bool(result.get("isError")) and result["_meta"]["agent-mesh/refusal"]["code"] == "denied"


def test_a_denied_mcp_call_is_never_run_in_any_spelling_the_sdk_accepts(setup: Setup) -> None:
    with setup.client() as c:
        for label, body, ctypes in spellings("delete_note"):
            resp = post_mcp(c, setup.mcp, body, ctypes, "delete_note")
            assert refused_or_denied(resp), (label, resp.status_code, resp.text)
        for label, body, ctypes in spellings("read_note"):
            resp = post_mcp(c, setup.mcp, body, ctypes, "read_note")
            # Read as the SDK reads it, so judged (allowed) rather than refused; and the note survived.
            assert resp.status_code == 200, (label, resp.text)
            assert resp.json()["result"]["content"][0]["text"] == "world", label
    # Exactly one record per call: every spelling was judged as the tool call it is.
    want = [("notes.delete_note", "deny", "refused")] * 7 + [("notes.read_note", "allow", "ok")] * 7
    assert setup.calls("notes", len(want)) == want


def test_a_post_to_the_mcp_server_that_is_not_json_rpc_is_refused(setup: Setup) -> None:
    with setup.client() as c:
        resp = c.post(setup.mcp, content=b"name=hello", headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 400


def test_an_encoded_slash_never_reaches_the_purge_route(setup: Setup) -> None:
    with setup.client() as c:
        resp = c.post(f"{setup.staging}/v1/notes/1%2Fpurge", json={"text": "x"})
        dotted = c.post(f"{setup.staging}/v1/notes/1/%2e%2e/2/purge", json={})
        purge = c.post(f"{setup.staging}/v1/notes/1/purge", json={})
    assert resp.status_code == 400
    assert dotted.status_code == 400
    assert purge.status_code == 403
    assert purge.json()["code"] == "denied"
    assert not [p for _m, p in setup.seen[0] if "purge" in p]


def test_ambiguous_arguments_and_method_overrides_are_refused(setup: Setup) -> None:
    with setup.client() as c:
        collide = c.post(f"{setup.staging}/v1/notes/1?text=a", json={"text": "b"})
        repeated = c.get(f"{setup.staging}/v1/notes/1?x=a&x=b")
        override = c.post(f"{setup.staging}/v1/notes/1", json={}, headers={"x-http-method-override": "DELETE"})
    assert [collide.status_code, repeated.status_code, override.status_code] == [400, 400, 400]
    assert "both the query and the body" in collide.json()["detail"]
    assert "method_override" in override.json()["detail"]


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("text/plain", b'{"text": "wipe"}'),
        (None, b'{"text": "wipe"}'),
        ("application/json; charset=utf-16", '{"text": "wipe"}'.encode("utf-16")),
        ("text/plain; charset=utf-8", '{"text": "wipe"}'.encode("utf-32")),
        ("application/x-www-form-urlencoded", b"text=wipe"),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="text"\r\n\r\nwipe\r\n--XyZ--\r\n',
        ),
    ],
)
def test_a_body_rule_fires_whatever_the_body_s_type_or_encoding(setup: Setup, ctype: str | None, body: bytes) -> None:
    with setup.client() as c:
        headers = {"content-type": ctype} if ctype else {}
        resp = c.post(f"{setup.staging}/v1/notes/5", content=body, headers=headers)
    assert resp.status_code == 403, resp.text
    assert (resp.json()["code"], resp.json()["rule"]) == ("denied", "claude/no-wipe")
    assert ("POST", "/v1/notes/5") not in setup.seen[0]


def pending_id(resp: httpx.Response) -> str:
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["code"] == "approval_pending", body
    return str(body["approval_id"])


def test_an_approval_for_staging_is_not_spent_on_production_nor_on_another_body(setup: Setup) -> None:
    body_a = b"\x00first body"
    body_b = b"\x00other body"
    with setup.client() as c:

        def update(base: str, body: bytes) -> httpx.Response:
            return c.post(f"{base}/v1/notes/9", content=body, headers={"content-type": "application/octet-stream"})

        asked = pending_id(update(setup.staging, body_a))
        shown = setup.cli("approvals", "show", asked)
        assert f"POST {setup.staging}/v1/notes/9" in shown
        assert "body_sha256" in shown
        setup.cli("approvals", "approve", asked)
        on_production = pending_id(update(setup.production, body_a))
        other_body = pending_id(update(setup.staging, body_b))
        used = update(setup.staging, body_a)
    assert len({asked, on_production, other_body}) == 3
    assert used.status_code == 200
    assert ("POST", "/v1/notes/9") in setup.seen[0]
    assert ("POST", "/v1/notes/9") not in setup.seen[1]
    listed = json.loads(setup.cli("approvals", "list", "--json"))
    requests = {a["id"]: a["request"] for a in listed}
    assert requests[on_production] == f"POST {setup.production}/v1/notes/9"
