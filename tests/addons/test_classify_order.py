"""A request is classified by the URL the agent asked for, before any rewrite of the operator's (mitmproxy's
map_remote and friends): in the addon whatever ran before its request hook, and in serve's own mitmproxy,
whose addons run where `agent-mesh proxy` runs them (where mitmdump runs scripts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mitmproxy import options
from mitmproxy.addons import maplocal, mapremote, modifybody, modifyheaders, script
from mitmproxy.test import taddons
from mitmproxy.tools.dump import DumpMaster

from addons.embedded_proxy import ControlAddress, run_where_scripts_run
from addons.governance import Governance
from policy import Gate, LoadedConfig, MemoryStore
from policy.trace import MemoryTraceSink
from tests.addons.harness import Harness, ListingServer, make_flow

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
    addon = Governance(factory, fetch_tools=ListingServer())
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


async def test_serve_runs_the_governance_addon_before_the_operators_rewrites() -> None:
    master = DumpMaster(options.Options(), with_termlog=False, with_dumper=False)
    governance = Governance()
    ours = (governance, ControlAddress(governance, ("127.0.0.1", 8181)))
    master.addons.add(*ours)  # as ProxyRunner.start does, at the end of mitmproxy's own addons ...
    run_where_scripts_run(master, ours)  # ... then moved
    chain = master.addons.chain
    at = {type(a): i for i, a in enumerate(chain)}
    # Where mitmdump puts `-s` scripts (agent-mesh proxy's addon): right after the script loader ...
    assert chain.index(governance) == at[script.ScriptLoader] + 1
    assert chain.index(ours[1]) == at[script.ScriptLoader] + 2  # the control address still follows governance
    # ... so before every addon that rewrites a request in its request or requestheaders hook.
    for rewriter in (mapremote.MapRemote, maplocal.MapLocal, modifybody.ModifyBody, modifyheaders.ModifyHeaders):
        assert chain.index(governance) < at[rewriter], rewriter
    assert len(chain) == len(set(map(id, chain)))  # moved, not copied
