"""The shared vocabulary: canonical JSON (what call hashes and the trace chain are computed over)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mypy import api as mypy_api

from policy import Action, Decision, HttpInfo, ToolCall
from policy.core.model import call_hash, canonical_json, parse_json

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


def _outcome(parse: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None)
@given(
    value=json_values,
    before=st.sampled_from(["", " ", "\n\t ", "\ufeff", "\ufeff "]),
    after=st.sampled_from(["", " ", "\r\n", " x", "{}", ","]),
)
def test_parse_json_reads_utf8_bodies_exactly_as_json_loads(value: Any, before: str, after: str) -> None:
    data = (before + json.dumps(value, ensure_ascii=False) + after).encode("utf-8")
    assert _outcome(parse_json, data) == _outcome(json.loads, data)


@pytest.mark.parametrize(
    "data", [b"", b"   ", b"nope", b'{"a":', b"[1,]", b'{"a":1} \x00', b"\xff", b'{"a":"\xff"}', b"\xef\xbb\xbf"]
)
def test_parse_json_refuses_what_json_loads_refuses_with_the_same_message(data: bytes) -> None:
    assert _outcome(parse_json, data) == _outcome(json.loads, data)
    assert _outcome(parse_json, data)[0] != "ok"


def test_parse_json_reads_only_utf8() -> None:
    """json.loads would guess UTF-16 or UTF-32; a body in them is refused (MCP and RFC 8259: UTF-8)."""
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        data = '{"jsonrpc": "2.0"}'.encode(encoding)
        assert json.loads(data) == {"jsonrpc": "2.0"}
        assert _outcome(parse_json, data)[0] != "ok"


def test_the_vocabulary_compares_and_hashes_like_frozen_dataclasses() -> None:
    decision = Decision(Action.DENY, "r#1", "no", "p")
    assert decision == Decision(Action.DENY, "r#1", "no", "p")
    assert hash(decision) == hash(Decision(Action.DENY, "r#1", "no", "p"))
    assert len({HttpInfo("GET", "h", "/"), HttpInfo("GET", "h", "/")}) == 1
    call = ToolCall("a", "cli", "s", "t", {"x": 1})
    assert call != ToolCall("a", "cli", "s", "t", {"x": 1})  # eq=False: a call is itself, hashed by identity
    assert {call: 1}[call] == 1


def test_assigning_a_field_of_the_vocabulary_is_a_type_error(tmp_path: Path) -> None:
    """`readonly` types are frozen for mypy (strict on policy/, addons/, mcpwrap/), not at runtime."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from policy.core.model import Action, Decision, ToolCall\n"
        "call = ToolCall('a', 'cli', 's', 't')\n"
        "call.tool = 'other'\n"
        "Decision(Action.ALLOW, 'r', 'why').rule = 'other'\n"
    )
    out, _err, status = mypy_api.run(
        [str(probe), "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache")]
    )
    assert status == 1
    assert 'Property "tool" defined in "ToolCall" is read-only' in out
    assert 'Property "rule" defined in "Decision" is read-only' in out
