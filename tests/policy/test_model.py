"""The shared vocabulary: canonical JSON (what call hashes and the trace chain are computed over)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import ToolCall
from policy.model import call_hash, canonical_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(value=json_values)
def test_canonical_json_is_json_dumps_with_sorted_keys_and_no_whitespace(value: Any) -> None:
    want = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert canonical_json(value) == want


def test_canonical_json_refuses_a_cycle_as_json_dumps_does() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        canonical_json({"a": cycle})


def test_a_tool_call_knows_its_full_name_and_hash() -> None:
    call = ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": "/srv/a"})
    assert call.full_name == "fs.read_file"
    assert call.call_hash == call_hash("claude", "fs.read_file", {"path": "/srv/a"})
    assert ToolCall("claude", "cli", "", "git", {}).full_name == "git"
