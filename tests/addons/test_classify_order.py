"""A request is classified by the URL the agent asked for, before any rewrite of the operator's (mitmproxy's
map_remote and friends): in the addon whatever ran before its request hook, and in serve's own mitmproxy,
whose addons run where `agent-mesh proxy` runs them (where mitmdump runs scripts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mitmproxy.addons import maplocal, mapremote, modifybody, modifyheaders, script
from mitmproxy.test import taddons

from addons.embedded_proxy import ProxyRunner
from addons.governance import Governance
from policy import Gate, LoadedConfig, MemoryStore, load_config
from policy.trace import MemoryTraceSink
from tests.addons.harness import Harness, make_flow
from tests.support.net import free_port

CONFIG = """
version: 1
state_dir: state
agents: {claude: {token: s3cret}}
servers:
  api: {base_url: "http://api.mesh-test.invalid/v1"}
policies:
  - name: claude
    agent: claude
    rules:
      - {name: reads, tools: ["api.GET /v1/items*"], action: allow}
      - {name: no-deletes, tools: ["api.DELETE *"], action: deny}
"""


@contextmanager
def governed(tmp_path: Path) -> Iterator[Harness]:
    sink, store = MemoryTraceSink(), MemoryStore()

    def factory(loaded: LoadedConfig) -> Gate:
        return Gate.open(loaded, store=store, sink=sink)

    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    addon = Governance(factory)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mesh_config=str(path))
        yield Harness(addon, tctx, sink, store)


async def test_a_request_rewritten_before_the_request_hook_is_judged_by_the_url_the_agent_asked_for(
    tmp_path: Path,
) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("GET", "http://api.mesh-test.invalid/v1/items?page=2")
        h.addon.requestheaders(flow)
        flow.request.url = "http://127.0.0.1:9100/items?page=2"  # what map_remote does in its request hook
        await h.addon.request(flow)
        assert flow.response is None
        assert flow.request.url == "http://127.0.0.1:9100/items?page=2"  # the rewrite still decides where it goes
        h.respond(flow, 200, {"items": []})
        ((server, tool, verdict, rule),) = [(r["server"], r["tool"], r["verdict"], r["rule"]) for r in h.records]
        assert (server, tool, verdict, rule) == ("api", "api.GET /v1/items", "allow", "claude/reads")


async def test_a_rewrite_cannot_turn_a_denied_call_into_an_unknown_host(tmp_path: Path) -> None:
    with governed(tmp_path) as h:
        flow = make_flow("DELETE", "http://api.mesh-test.invalid/v1/items/7")
        h.addon.requestheaders(flow)
        flow.request.url = "http://127.0.0.1:9100/items/7"
        await h.addon.request(flow)
        assert flow.response is not None
        assert flow.response.status_code == 403
        assert [(r["tool"], r["rule"]) for r in h.records] == [("api.DELETE /v1/items/7", "claude/no-deletes")]


async def test_serve_runs_the_governance_addon_before_the_operators_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    runner = ProxyRunner(load_config(str(path)), ("127.0.0.1", free_port()), control=("127.0.0.1", free_port()))
    await runner.start(30)
    try:
        assert runner.master is not None
        chain = runner.master.addons.chain
        at = {type(a): i for i, a in enumerate(chain)}
        ours = chain.index(runner.governance)
        # Where mitmdump puts `-s` scripts (agent-mesh proxy's addon): right after the script loader ...
        assert ours == at[script.ScriptLoader] + 1
        # ... so before every addon that rewrites a request in its request or requestheaders hook.
        for rewriter in (mapremote.MapRemote, maplocal.MapLocal, modifybody.ModifyBody, modifyheaders.ModifyHeaders):
            assert ours < at[rewriter], rewriter
    finally:
        await runner.stop(30)
