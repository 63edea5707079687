"""Finding 7 of issue 15: one call on a fresh state dir is one call, whatever the mesh noticed besides.

A real wrapped server (tests/mcpwrap/stdio_server.py, four tools) lists its tools on the first call: each
tool first seen is an `event` record. `traces sessions`, `traces query`, `replay`, /metrics and the page's
Calls table count one call; `traces query --events` and the page show the events as what they are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import Gate, MemoryStore, Outcome, ToolCall, load_config_text
from policy.control.metrics import Metrics
from policy.control.render import traces as render_traces
from policy.trace import MemoryTraceSink
from policy.trace.feed import TraceFeed, TraceFilter
from policy.trace.query import Filters
from policy.trace.replay import replay

SERVER = Path(__file__).parents[2] / "mcpwrap" / "stdio_server.py"
AGENT_MESH = Path(sys.executable).with_name("agent-mesh")
RUN_SECONDS = 60

CONFIG = """
version: 1
state_dir: {state}
policies:
  - name: all
    agent: "*"
    rules:
      - {{tools: ["stdlib.*"], action: allow}}
"""
CANDIDATE = CONFIG.replace("allow}", "deny}")

FRAMES = [
    {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}},
]


def run(*argv: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], input=stdin.decode(), capture_output=True, text=True, timeout=RUN_SECONDS, check=False
    )
    return done


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def one_call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh state dir after one allowed `echo` through mcpwrap: (config, state dir)."""
    root = tmp_path_factory.mktemp("one-call")
    config = root / "agent-mesh.yaml"
    config.write_text(CONFIG.format(state=root / "state"))
    stdin = b"".join(json.dumps(f).encode() + b"\n" for f in FRAMES)
    wrapped = run(sys.executable, "-m", "mcpwrap", "--config", config, "--", sys.executable, SERVER, stdin=stdin)
    assert wrapped.returncode == 0, wrapped.stderr
    answers = {m["id"]: m for m in lines(wrapped.stdout)}
    assert answers[1]["result"]["isError"] is False
    return config, root / "state"


def test_traces_sessions_counts_one_call_and_one_allow(one_call: tuple[Path, Path]) -> None:
    config, _ = one_call
    done = run(AGENT_MESH, "traces", "sessions", "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    [session] = lines(done.stdout)
    assert session["calls"] == 1
    assert session["verdicts"] == {"allow": 1}


def test_traces_query_lists_the_call_and_with_events_the_tools_first_seen(one_call: tuple[Path, Path]) -> None:
    config, _ = one_call
    calls = lines(run(AGENT_MESH, "traces", "query", "--config", config, "--json").stdout)
    assert [(r["tool"], r["verdict"], r["kind"]) for r in calls] == [("stdlib.echo", "allow", "call")]
    everything = lines(run(AGENT_MESH, "traces", "query", "--config", config, "--json", "--events").stdout)
    events = [r for r in everything if r["kind"] == "event"]
    assert sorted(r["tool"] for r in events) == ["stdlib.crash", "stdlib.die_by_signal", "stdlib.echo", "stdlib.shout"]
    assert {r["event"] for r in events} == {"tool_first_seen"}
    assert all("verdict" not in r and r["args"]["pin_event"] == "new" for r in events)
    table = run(AGENT_MESH, "traces", "query", "--config", config, "--events").stdout
    assert table.count("tool first") == 4  # the verdict column of an event row says what it is


def test_the_chain_with_events_in_it_still_verifies(one_call: tuple[Path, Path]) -> None:
    config, _ = one_call
    done = run(AGENT_MESH, "traces", "verify", "--config", config)
    assert done.returncode == 0, done.stdout + done.stderr


def test_replay_judges_the_one_call_again_and_skips_nothing(one_call: tuple[Path, Path]) -> None:
    config, _ = one_call
    candidate = config.with_name("candidate.yaml")
    candidate.write_text(CANDIDATE.format(state=config.parent / "state"))
    done = run(AGENT_MESH, "replay", candidate, "--config", config)
    assert done.returncode == 1  # the call would change: allow -> deny
    assert "replayed 1 recorded call(s)" in done.stdout
    assert "skipped" not in done.stdout


def test_metrics_and_the_page_count_one_call_and_show_events_as_tool_rows(one_call: tuple[Path, Path]) -> None:
    _, state = one_call
    feed = TraceFeed(state)
    try:
        assert feed.totals(feed.last_seq()) == [("anonymous", "stdlib.echo", "allow", 1)]  # /metrics at start
        metrics = Metrics()
        for record in feed.after(0):
            metrics.observe(record)  # the live path sees the events too, and counts none of them
        counted = [line for line in metrics.render().splitlines() if line.startswith("agent_mesh_calls_total{")]
        assert counted == ['agent_mesh_calls_total{agent="anonymous",tool="stdlib.echo",verdict="allow"} 1.0']
        [session] = feed.sessions()
        assert (session["calls"], session["allowed"], session["refused"], session["events"]) == (1, 1, 0, 4)
        assert [r["tool"] for r in feed.query(TraceFilter(kind="call"))] == ["stdlib.echo"]
        page = render_traces(feed.query(TraceFilter()))
        assert page.count("tool first seen") == 4
        assert page.count('class="verdict ok">allow<') == 1
    finally:
        feed.close()


_forms = st.sampled_from(["v1", "v2", "v3"])
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("list"), st.lists(st.tuples(st.sampled_from(["echo", "add", "hide"]), _forms), max_size=3)),
        st.tuples(st.just("call"), st.sampled_from(["echo", "add", "hide", "never_listed"])),
    ),
    max_size=12,
)
MIXED = """
version: 1
state_dir: {state}
mcp: {{pin_changed: {changed}}}
policies:
  - name: all
    agent: claude
    loop_detection: {{enabled: false}}
    rules:
      - {{tools: ["srv.hide"], action: deny}}
      - {{tools: ["srv.*"], action: allow}}
"""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps, changed=st.sampled_from(["warn", "deny", "human_approval"]))
async def test_whatever_is_listed_and_called_every_reader_counts_exactly_the_calls_made(
    tmp_path: Path, steps: list[tuple[str, Any]], changed: str
) -> None:
    loaded = load_config_text(MIXED.format(state=tmp_path / "s", changed=changed), "t.yaml", str(tmp_path))
    sink = MemoryTraceSink()
    gate = Gate.open(loaded, store=MemoryStore(), sink=sink)
    made = 0
    for i, (what, arg) in enumerate(steps):
        if what == "list":
            tools = [{"name": n, "description": f, "inputSchema": {"type": "object"}} for n, f in arg]
            gate.observe_tools("srv", "claude", tools, session_id="s1")
        else:
            call = ToolCall("claude", "mcp_stdio", "srv", arg, {"i": i}, "s1")
            gate.finish(call, await gate.check(call), Outcome(False))
            made += 1
    records = sink.records
    assert len([r for r in records if Filters().matches(r)]) == made  # traces query / sessions / replay
    assert sum(1 for r in records if Filters(events=True).matches(r)) == len(records)
    metrics = Metrics()
    for record in records:
        metrics.observe(record)
    counted = [line for line in metrics.render().splitlines() if line.startswith("agent_mesh_calls_total{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in counted) == made
    assert replay(records, gate.policy_set).replayed == made
    assert all((r.get("kind") == "event") == ("verdict" not in r) for r in records)
    assert render_traces(records).count("<tr data-trace") == len(records)
