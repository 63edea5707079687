"""Property: for random configs, calls and state, Gate.preview gives the live gate's decision, guard included.

Each example builds a config (rules, limits, memory, cooldown, pending cap, pin actions), plays a random history
on a MemoryStore through the live gate and an operator (calls, approvals, denials, grants, tool listings that
pin or change a tool, time passing), then asks
`preview` and `check` about one more call: same kind, rule and decided_by, and the preview changed nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import Gate, Operator, ToolCall, load_config_text
from policy.core.guard import GUARD_RULE
from policy.core.model import VerdictKind
from policy.store import MemoryStore, SqliteStore, Store
from policy.trace import MemoryTraceSink
from tests.policy.gate.conftest import Clock
from tests.policy.test_properties import json_values

# A real folder: the guard resolves symlinks and walks folders that exist.
ROOT = os.path.realpath(tempfile.mkdtemp(prefix="preview-prop-"))
STATE = f"{ROOT}/proj/.agent-mesh"
os.makedirs(f"{STATE}/mitmproxy")
os.makedirs(f"{ROOT}/proj/src")


@pytest.fixture(scope="module", autouse=True)
def _remove_root() -> Iterator[None]:
    yield
    shutil.rmtree(ROOT)


TOOLS = ["fs.read_file", "fs.write_file", "fs.delete_file", "gh.create_issue", "gh.get_issue", "sh.run"]
AGENTS = ["claude", "cursor", "ci"]
PIN_ACTIONS = ["warn", "human_approval", "deny"]
ACTIONS = ["allow", "deny", "human_approval", "human_approval", "human_approval"]
GLOBS = ["fs.*", "*.read*", "*.write*", "gh.*", "*", "sh.run", "*.delete*"]
WHENS = [
    None,
    '{args.path: {startswith: "/tmp/"}}',
    '{args.path: {glob: "/etc/**"}}',
    "{args.amount: {gt: 10}}",
    "{args.x: {exists: true}}",
]


@st.composite
def configs(draw: st.DrawFn) -> str:
    rules = []
    for i in range(draw(st.integers(1, 4))):
        glob = draw(st.sampled_from(GLOBS))
        when = draw(st.sampled_from(WHENS))
        action = draw(st.sampled_from(ACTIONS))
        rules.append(
            f"      - {{name: r{i}, tools: [{glob!r}], action: {action}" + (f", when: {when}}}" if when else "}")
        )
    if draw(st.integers(0, 3)):
        rules.append(f"      - {{name: last, tools: ['*'], action: {draw(st.sampled_from(ACTIONS))}}}")
    limits = ""
    if not draw(st.integers(0, 3)):
        limits += (
            f"    rate_limit: {{max_per_minute: {draw(st.integers(1, 4))}, max_total: {draw(st.integers(2, 8))}}}\n"
        )
    loops = draw(st.sampled_from(["default", "off", "off", "small"]))
    if loops == "off":
        limits += "    loop_detection: {enabled: false}\n"
    elif loops == "small":
        limits += f"    loop_detection: {{max_repeats: {draw(st.integers(1, 3))}, window: 10s}}\n"
    agent = draw(st.sampled_from(["*", "*", "claude", "c*"]))
    return (
        f"version: 1\nstate_dir: {STATE}\npolicies:\n  - name: p\n    agent: {agent!r}\n{limits}    rules:\n"
        + "\n".join(rules)
        + f"\napproval: {{hold_seconds: 1, expire_after: 1h, deny_cooldown: {draw(st.sampled_from([0, 60]))}, "
        f"max_pending_per_agent: {draw(st.integers(1, 3))}}}\n"
        f"memory: {{auto_approve_after: {draw(st.integers(0, 2))}, window: 7d}}\n"
        f"mcp: {{pin_changed: {draw(st.sampled_from(PIN_ACTIONS))}, pin_new: {draw(st.sampled_from(PIN_ACTIONS))}}}\n"
    )


def _encode(text: str, picks: list[bool]) -> str:
    return (
        "".join(quote(c, safe="") if pick and c != "/" else c for c, pick in zip(text, picks, strict=False))
        + text[len(picks) :]
    )


@st.composite
def state_spellings(draw: st.DrawFn) -> str:
    """A path into the state dir as an agent might spell it (the guard tests' forms): `.`/`x/..` segments,
    percent-encoding, relative to the project, a file URL; wrapped in a command line or not."""
    name = draw(st.sampled_from(["operator.token", "state.db", "traces.jsonl", "mitmproxy/mitmproxy-ca.pem", ""]))
    parts = f"{STATE}/{name}".rstrip("/").strip("/").split("/")
    noisy: list[str] = []
    for part in parts:
        noisy.extend(draw(st.lists(st.sampled_from([".", "", "x/.."]), max_size=2)))
        noisy.append(part)
    path = "/" + "/".join(noisy)
    form = draw(st.sampled_from(["absolute", "url", "dots"]))
    if form == "url":
        path = "file://" + path
    elif form == "dots":
        path = "/.." * draw(st.integers(1, 3)) + path
    path = _encode(path, draw(st.lists(st.booleans(), max_size=len(path))))
    return draw(st.sampled_from(["{}", "cat {}", "--db={}"])).format(path)


arguments = st.one_of(
    st.dictionaries(st.sampled_from(["path", "amount", "x", "title"]), json_values, max_size=3),
    st.fixed_dictionaries({"path": st.sampled_from(["/tmp/a", "/etc/passwd", "/srv/x"])}),
    st.fixed_dictionaries({"path": st.sampled_from(["/tmp/a", "/srv/x"]), "amount": st.integers(0, 20)}),
    st.fixed_dictionaries({"path": st.sampled_from(["/tmp/b", "/srv/y"])}),
    st.fixed_dictionaries({"title": st.sampled_from(["a", "b"])}),
    st.fixed_dictionaries({"path": state_spellings()}),
    st.fixed_dictionaries({"command": state_spellings()}),
)
calls = st.builds(
    lambda agent, tool, args: ToolCall(agent, "mcp_stdio", *tool.split(".", 1), args),
    st.sampled_from(AGENTS),
    st.sampled_from(TOOLS),
    arguments,
)


def histories(probe: ToolCall) -> st.SearchStrategy[list[Any]]:
    """Steps before the probe: calls (the probe itself half the time, so approvals, denials and memory are
    about it), operator approvals and denials of pending approvals, grants, time passing."""
    return st.lists(
        st.one_of(
            st.tuples(st.just("call"), st.just(probe) | calls),
            st.tuples(st.just("call"), st.just(probe)),
            st.tuples(st.just("approve"), st.integers(0, 3)),
            st.tuples(st.just("approve"), st.integers(0, 3)),
            st.tuples(st.just("deny"), st.integers(0, 3)),
            st.tuples(st.just("grant"), st.sampled_from([*AGENTS, "*"]), st.sampled_from(GLOBS), st.integers(1, 2)),
            st.tuples(st.just("wait"), st.sampled_from([1.0, 11.0, 61.0])),
            st.tuples(
                st.just("list"),
                st.just(probe.full_name) | st.sampled_from(TOOLS),
                st.sampled_from(["Reads.", "Reads, then mails it."]),
            ),
        ),
        max_size=16,
    )


async def _play(gate: Gate, operator: Operator, clock: Clock, history: list[Any]) -> None:
    for step in history:
        if step[0] == "call":
            await gate.check(step[1])
        elif step[0] in ("approve", "deny"):
            pending = operator.approvals()
            if pending:
                target = pending[step[1] % len(pending)]
                if step[0] == "approve":
                    operator.approve(target.id, by="alice")
                else:
                    operator.deny(target.id, by="alice", reason="no")
        elif step[0] == "list":
            server, tool = step[1].split(".", 1)
            gate.observe_tools(server, "claude", [{"name": tool, "description": step[2], "inputSchema": {}}])
        elif step[0] == "grant":
            operator.add_grant(step[1], step[2], 600, by="alice", max_uses=step[3])
        else:
            clock.advance(step[1])


def _snapshot(store: Store, call: ToolCall, gate: Gate, now: float) -> Any:
    decision = gate.preview(call).decision
    limits = gate._limits_for(decision, call.agent)
    return (
        store.list_approvals(None, now, limit=10_000),
        store.list_grants(now, include_inactive=True),
        store.list_facts(limit=10_000),
        store.peek_admit(call.agent, call.call_hash, limits, now),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), probe=calls, data=st.data())
def test_preview_gives_the_live_gates_verdict_on_the_same_state(
    config: str, probe: ToolCall, data: st.DataObject
) -> None:
    asyncio.run(_compare(config, data.draw(histories(probe)), probe))


async def _compare(config: str, history: list[Any], probe: ToolCall, store: Store | None = None) -> None:
    loaded = load_config_text(config, "prop.yaml")
    clock = Clock()
    store = MemoryStore() if store is None else store
    gate = Gate.open(loaded, store=store, sink=MemoryTraceSink(), clock=clock)
    operator = Operator(loaded.config, store, clock)
    await _play(gate, operator, clock, history)
    before = _snapshot(store, probe, gate, clock())
    preview = gate.preview(probe)
    assert _snapshot(store, probe, gate, clock()) == before, "the preview changed the state"
    live = await gate.check(probe)
    got = (preview.kind, preview.decision.rule, preview.decided_by)
    assert got == (live.kind, live.decision.rule, live.decided_by), (preview, live)
    if preview.verdict.approval_id is not None:
        assert preview.verdict.approval_id == live.approval_id
    if live.kind is VerdictKind.PENDING:
        assert live.approval_id is not None
    await gate.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), probe=calls, data=st.data())
def test_preview_gives_the_live_gates_verdict_on_sqlite_too(config: str, probe: ToolCall, data: st.DataObject) -> None:
    folder = tempfile.mkdtemp(prefix="preview-state-")
    store = SqliteStore(folder)
    try:
        asyncio.run(_compare(config, data.draw(histories(probe)), probe, store))
    finally:
        store.close()
        shutil.rmtree(folder)


def test_a_hostile_spelling_of_the_state_dir_is_previewed_as_the_guards_denial() -> None:
    loaded = load_config_text(
        f"version: 1\nstate_dir: {STATE}\npolicies:\n  - {{name: all, rules: [{{tools: ['*'], action: allow}}]}}\n",
        "allow-all.yaml",
    )
    gate = Gate.open(loaded, store=MemoryStore(), sink=MemoryTraceSink())
    call = ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": f"file://{STATE}/./x/../operator%2Etoken"})
    preview = gate.preview(call)
    assert (preview.kind, preview.decision.rule, preview.decided_by) == (
        VerdictKind.DENY,
        GUARD_RULE,
        f"policy:{GUARD_RULE}",
    )
    assert "state-dir guard" in " ".join(preview.notes)
