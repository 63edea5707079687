"""The built-in guard: calls that name the mesh's own state are denied whatever the policy says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policy import Gate, MemoryStore, ToolCall, VerdictKind, load_config_text
from policy.core.guard import GUARD_RULE, state_guard
from policy.trace import MemoryTraceSink

ALLOW_ALL = "version: 1\nstate_dir: {state}\npolicies:\n  - {{name: all, rules: [{{tools: ['*'], action: allow}}]}}\n"


def fill(value: Any, state: str) -> Any:
    """The table's values with the real state dir in place of `{state}`."""
    if isinstance(value, str):
        return value.replace("{state}", state)
    if isinstance(value, dict):
        return {fill(k, state): fill(v, state) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, state) for v in value]
    return value


def call(**arguments: object) -> ToolCall:
    return ToolCall("claude", "mcp_stdio", "fs", "read_text_file", arguments)


@pytest.mark.parametrize(
    "arguments",
    [
        {"path": "{state}/state.db"},
        {"path": "{state}"},
        {"argv": ["cat", "{state}/operator.token"]},
        {"nested": {"deep": [{"p": "{state}/traces.jsonl"}]}},
        {"command": "cat operator.token"},
        {"{state}/x": "as a key"},
    ],
)
async def test_an_allow_all_policy_still_cannot_reach_the_state_dir(
    tmp_path: Path, arguments: dict[str, object]
) -> None:
    state = tmp_path / "state"
    loaded = load_config_text(ALLOW_ALL.format(state=state), "t.yaml")
    gate = Gate.open(loaded, store=MemoryStore(), sink=MemoryTraceSink())
    verdict = await gate.check(call(**fill(arguments, str(state))))
    assert verdict.kind is VerdictKind.DENY
    assert verdict.decision.rule == GUARD_RULE
    assert "own state" in verdict.reason
    await gate.aclose()


@pytest.mark.parametrize(
    "path", ["/srv/statement.txt", "/srv/state-old/x", "/home/me/notes.agent-mesh.bak", "/tmp/operator.tokens"]
)
def test_neighbouring_names_are_not_mistaken_for_the_state_dir(path: str) -> None:
    assert state_guard("/srv/state")(call(path=path)) is None


def test_the_default_state_dir_name_is_recognised_in_relative_paths() -> None:
    guard = state_guard("/work/.agent-mesh")
    assert guard(call(path="../.agent-mesh/state.db")) is not None
    assert guard(call(path="other/.agent-mesh")) is not None


def test_arguments_nested_too_deep_to_inspect_are_refused_not_skipped() -> None:
    nested: dict[str, object] = {"path": "/srv/state/state.db"}
    for _ in range(40):
        nested = {"x": nested}
    decision = state_guard("/srv/state")(call(**nested))
    assert decision is not None
    assert "fail closed" in decision.reason
