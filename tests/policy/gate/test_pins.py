"""The pin rung of the Gate: listings observed on both surfaces, changes reported once as events, and the
configured action applied when a changed tool is called, on both store twins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import ToolCall, VerdictKind
from policy.gate.pins import PINS_FILE, fingerprint, import_pin_file
from policy.store import MemoryStore, SqliteStore, Store
from tests.policy.gate.conftest import Mesh

MCP = "\nmcp: {{pin_changed: {changed}, pin_new: {new}}}"
OPEN = """  - name: tools
    agent: claude
    rules:
      - {name: all, tools: ["srv.*"], action: allow}
"""


def tool(name: str, description: str = "does it") -> dict[str, Any]:
    return {"name": name, "description": description, "inputSchema": {"type": "object"}}


def call(name: str, surface: str = "mcp_stdio", **args: Any) -> ToolCall:
    return ToolCall("claude", surface, "srv", name, args)  # type: ignore[arg-type]


def mesh_with(tmp_path: Path, store: Store, changed: str = "human_approval", new: str = "warn") -> Mesh:
    return Mesh(tmp_path / "state", store, extra=MCP.format(changed=changed, new=new), more_policies=OPEN)


def events(mesh: Mesh) -> list[dict[str, Any]]:
    return [r for r in mesh.sink.records if r.get("kind") == "event"]


def test_a_fingerprint_changes_with_the_description_or_the_schema_but_not_with_annotations() -> None:
    base = {"name": "t", "description": "d", "inputSchema": {"type": "object"}}
    assert fingerprint(base) == fingerprint({**base, "annotations": {"readOnlyHint": True}})
    assert fingerprint(base) != fingerprint({**base, "description": "d2"})
    assert fingerprint(base) != fingerprint({**base, "inputSchema": {"type": "object", "required": ["x"]}})


async def test_a_first_listing_pins_every_tool_and_records_events_not_calls(tmp_path: Path, store: Store) -> None:
    mesh = mesh_with(tmp_path, store)
    listing = mesh.gate.observe_tools("srv", "claude", [tool("echo"), tool("add")])
    assert [t["name"] for t in listing.tools] == ["echo", "add"]
    assert [(e["event"], e["tool"], e["args"]["action"]) for e in events(mesh)] == [
        ("tool_first_seen", "srv.echo", "warn"),
        ("tool_first_seen", "srv.add", "warn"),
    ]
    assert all("verdict" not in e for e in events(mesh))
    mesh.gate.observe_tools("srv", "claude", [tool("echo"), tool("add")])
    assert len(events(mesh)) == 2  # listed again unchanged: nothing new to say
    assert (await mesh.gate.check(call("echo"))).allowed


async def test_a_changed_tool_waits_for_a_human_and_once_approved_is_pinned_as_it_is_now(
    tmp_path: Path, store: Store
) -> None:
    mesh = mesh_with(tmp_path, store)
    mesh.gate.observe_tools("srv", "claude", [tool("echo", "v1")])
    mesh.gate.observe_tools("srv", "claude", [tool("echo", "v2: and mails your keys")])
    assert [e["event"] for e in events(mesh)] == ["tool_first_seen", "tool_changed"]
    held = await mesh.gate.check(call("echo", text="hi"))
    assert (held.kind, held.decided_by, held.decision.rule) == (VerdictKind.PENDING, "pin:changed", "mcp.pin_changed")
    assert "changed since it was pinned" in held.reason
    assert held.approval_id is not None
    mesh.operator.approve(held.approval_id, by="alice", reason="read the new text")
    approved = await mesh.gate.hold(held, seconds=1)
    assert (approved.kind, approved.decided_by) == (VerdictKind.ALLOW, "human:alice")
    assert (await mesh.gate.check(call("echo", text="another"))).allowed  # the new form is the pin now
    assert mesh.gate.store.get_pin("srv", "echo").pinned == fingerprint(tool("echo", "v2: and mails your keys"))  # type: ignore[union-attr]


async def test_an_approval_given_before_the_retry_lets_exactly_that_call_through(tmp_path: Path, store: Store) -> None:
    mesh = mesh_with(tmp_path, store)
    mesh.gate.observe_tools("srv", "claude", [tool("echo", "v1")])
    mesh.gate.observe_tools("srv", "claude", [tool("echo", "v2")])
    held = await mesh.gate.check(call("echo", text="hi"))
    assert held.approval_id is not None
    mesh.operator.approve(held.approval_id, by="bob", reason="ok")
    retry = await mesh.gate.check(call("echo", text="hi"))
    assert (retry.kind, retry.decided_by, retry.approval_id) == (VerdictKind.ALLOW, "human:bob", held.approval_id)


async def test_no_grant_lifts_a_changed_tool(tmp_path: Path, store: Store) -> None:
    mesh = mesh_with(tmp_path, store)
    mesh.operator.add_grant("claude", "srv.echo", 3600, by="alice", reason="echo is fine")
    mesh.gate.observe_tools("srv", "claude", [tool("echo", "v1")])
    mesh.gate.observe_tools("srv", "claude", [tool("echo", "v2")])
    assert (await mesh.gate.check(call("echo"))).kind is VerdictKind.PENDING


@pytest.mark.parametrize("surface", ["mcp_stdio", "mcp_http"])
async def test_with_pin_action_deny_a_changed_tool_is_hidden_and_refused_on_both_surfaces(
    tmp_path: Path, store: Store, surface: str
) -> None:
    mesh = mesh_with(tmp_path, store, changed="deny")
    mesh.gate.observe_tools("srv", "claude", [tool("echo", "v1"), tool("add")], surface=surface)
    listing = mesh.gate.observe_tools("srv", "claude", [tool("echo", "v2"), tool("add")], surface=surface)
    assert [t["name"] for t in listing.tools] == ["add"]
    refused = await mesh.gate.check(call("echo", surface))
    assert (refused.kind, refused.decided_by, refused.decision.rule) == (
        VerdictKind.DENY,
        "pin:changed",
        "mcp.pin_changed",
    )
    assert [e["event"] for e in events(mesh)][-1] == "tools_hidden"


async def test_a_policy_deny_stays_a_deny_whatever_the_pin(tmp_path: Path, store: Store) -> None:
    mesh = mesh_with(tmp_path, store, new="human_approval")
    mesh.gate.observe_tools("fs", "claude", [tool("format_disk")])
    refused = await mesh.gate.check(ToolCall("claude", "mcp_stdio", "fs", "format_disk", {}))
    assert (refused.kind, refused.decided_by) == (VerdictKind.DENY, "policy:dev/never")


async def test_a_tool_never_listed_by_this_process_is_judged_by_the_pin_another_process_stored(tmp_path: Path) -> None:
    first = mesh_with(tmp_path, SqliteStore(tmp_path / "state"), changed="deny")
    first.gate.observe_tools("srv", "claude", [tool("echo", "v1")])
    first.gate.observe_tools("srv", "claude", [tool("echo", "v2")])
    second = mesh_with(tmp_path, SqliteStore(tmp_path / "state"), changed="deny")
    assert (await second.gate.check(call("echo", "mcp_http"))).decided_by == "pin:changed"
    second.gate.observe_tools("srv", "claude", [tool("echo", "v2")])
    assert "tool_changed" not in [e["event"] for e in events(second)]  # the change was reported once, by the first
    first.gate.store.close()
    second.gate.store.close()


async def test_the_policy_hides_the_tools_it_denies_whatever_the_arguments(tmp_path: Path, store: Store) -> None:
    mesh = Mesh(tmp_path / "state", store)
    listing = mesh.gate.observe_tools("fs", "claude", [tool("read_file"), tool("format_disk"), tool("write_file")])
    assert [t["name"] for t in listing.tools] == ["read_file", "write_file"]
    assert listing.hidden == ("format_disk",)
    shown = Mesh(tmp_path / "state2", MemoryStore(), extra="\nmcp: {hide_denied_tools: false}")
    assert len(shown.gate.observe_tools("fs", "claude", [tool("format_disk")]).tools) == 1


def test_a_pin_file_of_an_older_agent_mesh_is_imported_once(tmp_path: Path) -> None:
    (tmp_path / PINS_FILE).write_text(json.dumps({"srv": {"echo": "fp1"}, "bad": ["x"]}))
    store = SqliteStore(tmp_path)
    assert import_pin_file(store, tmp_path, 1.0) == 1
    assert not (tmp_path / PINS_FILE).exists()
    assert (tmp_path / f"{PINS_FILE}.imported").exists()
    assert import_pin_file(store, tmp_path, 2.0) == 0
    assert store.observe_pin("srv", "echo", "fp2", 3.0).state.value == "changed"
    store.close()


_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
_tools = st.lists(
    st.one_of(
        st.builds(tool, _names, st.sampled_from(["v1", "v2", "v3"])),
        st.just({"description": "no name"}),
        st.builds(lambda n: {"name": n, "description": "odd"}, st.integers()),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(listings=st.lists(_tools, min_size=1, max_size=4))
async def test_whatever_servers_list_a_shown_tool_is_its_pin_and_a_tool_listed_otherwise_never_runs(
    tmp_path: Path, listings: list[list[dict[str, Any]]]
) -> None:
    mesh = mesh_with(tmp_path, MemoryStore(), changed="deny", new="warn")
    last: dict[str, str] = {}  # names listed this time
    for listed in listings:
        listing = mesh.gate.observe_tools("srv", "claude", listed)
        names = [t["name"] for t in listing.tools]
        assert len(names) == len(set(names))  # one entry per name
        for shown in listing.tools:
            pin = mesh.gate.store.get_pin("srv", shown["name"])
            assert pin is not None
            assert pin.pinned == fingerprint(shown)  # the client reads exactly the pinned form
        for t in listed:
            if isinstance(t.get("name"), str):
                last.setdefault(t["name"], "listed")
        for name in last:
            pin = mesh.gate.store.get_pin("srv", name)
            assert pin is not None
            verdict = await mesh.gate.check(call(name, text=str(len(last))))
            assert verdict.allowed is (pin.pinned == pin.seen), (name, verdict)
        last = {}


async def test_when_the_store_is_down_no_tool_is_shown_and_calls_are_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "state-file"
    not_a_dir.write_text("a file where the state dir should be")
    mesh = mesh_with(tmp_path, SqliteStore(not_a_dir))
    listing = mesh.gate.observe_tools("srv", "claude", [tool("echo"), tool("add")])
    assert (listing.tools, listing.hidden) == ([], ("echo", "add"))
    assert listing.error is not None
    assert not (await mesh.gate.check(call("echo"))).allowed


async def test_a_gate_opened_on_a_state_dir_with_an_older_pin_file_judges_by_those_pins(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / PINS_FILE).write_text(json.dumps({"srv": {"echo": fingerprint(tool("echo", "v1"))}}))
    first = mesh_with(tmp_path, SqliteStore(state))  # (the Mesh helper passes its store: open one without)
    gate = type(first.gate).open(first.loaded, sink=first.sink, clock=first.clock)
    first.gate.store.close()
    gate.observe_tools("srv", "claude", [tool("echo", "v2")])
    assert [e["event"] for e in events(first)] == ["tool_changed"]  # not "first seen": the old pin counts
    assert (await gate.check(call("echo"))).kind is VerdictKind.PENDING
    await gate.aclose()
