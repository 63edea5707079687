"""An in-memory harness for the governance addon: real mitmproxy flows and hooks, a Gate on MemoryStore and
MemoryTraceSink, and helpers that build proxied requests."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mitmproxy import http
from mitmproxy.test import taddons, tflow

from addons.governance import Governance
from addons.mcp_learn import PageRequest
from policy import Gate, LoadedConfig, MemoryStore
from policy.trace import MemoryTraceSink

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "pets", "version": "1"},
    "servers": [{"url": "https://petstore.test/v2"}],
    "paths": {
        "/pet/{petId}": {"get": {"operationId": "getPetById"}, "delete": {"operationId": "deletePet"}},
        "/pet": {"post": {"operationId": "addPet"}},
    },
}

CONFIG = """
version: 1
state_dir: state
agents:
  claude: {token: s3cret}
  bot: {token: other}
servers:
  petstore: {openapi: spec.json}
  notes: {mcp_url: "https://notes.test/mcp"}
approval: {hold_seconds: HOLD}
control: {listen: "127.0.0.1:8181"}
policies:
  - name: claude
    agent: claude
    rules:
      - {name: reads, tools: ["petstore.getPetById", "notes.read*"], action: allow}
      - {name: no-deletes, tools: ["petstore.deletePet", "notes.delete*"], action: deny}
      - {name: writes-ask, tools: ["petstore.addPet", "notes.write*"], action: human_approval}
      - {name: web-reads, tools: ["*"], when: {http.method: {in: [GET]}}, action: allow}
"""


def write_config(tmp_path: Path, hold_seconds: float = 5) -> Path:
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG.replace("HOLD", str(hold_seconds)))
    return path


def creds(agent: str = "claude", token: str = "s3cret") -> str:
    return "Basic " + base64.b64encode(f"{agent}:{token}".encode()).decode()


def make_flow(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, agent: str | None = "claude"
) -> http.HTTPFlow:
    hdrs = dict(headers or {})
    content = b""
    if body is not None:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    if agent is not None:
        hdrs["proxy-authorization"] = creds(agent, "s3cret" if agent == "claude" else "other")
    return tflow.tflow(req=http.Request.make(method, url, content, hdrs))


def rpc(method: str, params: dict[str, Any] | None = None, rid: Any = 1) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if rid is not None:
        msg["id"] = rid
    return msg


class ListingServer:
    """The upstream's side of the proxy's own tools/list (addons/mcp_learn): answers each page from `pages`
    (by default one page with no tools, so a call is judged as before) and keeps the requests it got."""

    def __init__(self) -> None:
        self.pages: list[dict[str, Any]] = [{"tools": []}]
        self.requests: list[PageRequest] = []

    async def __call__(self, page: PageRequest) -> dict[str, Any]:
        self.requests.append(page)
        params = json.loads(page.body).get("params") or {}
        index = int(params["cursor"]) if "cursor" in params else 0
        return {"jsonrpc": "2.0", "id": page.request_id, "result": self.pages[index]}


class Harness:
    def __init__(self, addon: Governance, tctx: taddons.context, sink: MemoryTraceSink, store: MemoryStore):
        self.addon = addon
        self.listing = ListingServer()
        self.tctx = tctx
        self.sink = sink
        self.store = store

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.sink.records

    def respond(self, flow: http.HTTPFlow, status: int, body: Any, ctype: str = "application/json") -> None:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        flow.response = http.Response.make(status, content, {"content-type": ctype})
        self.addon.responseheaders(flow)
        self.addon.response(flow)


@contextmanager
def harness(tmp_path: Path, hold_seconds: float = 5) -> Iterator[Harness]:
    sink = MemoryTraceSink()
    store = MemoryStore()

    def factory(loaded: LoadedConfig) -> Gate:
        return Gate.open(loaded, store=store, sink=sink)

    listing = ListingServer()
    addon = Governance(factory, fetch_tools=listing)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mesh_config=str(write_config(tmp_path, hold_seconds)))
        h = Harness(addon, tctx, sink, store)
        h.listing = listing
        yield h


async def wait_until(cond: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll a condition with a bounded wait (the gate itself is polled by the code under test)."""
    async with asyncio.timeout(seconds):
        while not cond():  # noqa: ASYNC110 - mitmproxy flows and the store signal no events to wait on
            await asyncio.sleep(0.01)
