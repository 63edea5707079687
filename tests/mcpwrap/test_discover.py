"""The starter policy of `agent-mesh discover`: grouped by annotations, and a config that loads."""

from __future__ import annotations

import pytest

from mcpwrap.discover import policy_name, starter_policy
from policy import ToolCall, compile_policies, decide, load_config_text

TOOLS = [
    {"name": "read_file", "annotations": {"readOnlyHint": True}},
    {"name": "delete_file", "annotations": {"destructiveHint": True}},
    {"name": "mkdir"},
]


def test_the_starter_policy_allows_reads_and_holds_everything_else() -> None:
    text = starter_policy("fs", TOOLS)
    policies = compile_policies(load_config_text(text, "starter.yaml"))
    decided = {
        tool["name"]: decide(ToolCall("anyone", "mcp_stdio", "fs", tool["name"]), policies).action.value
        for tool in TOOLS
    }
    assert decided == {"read_file": "allow", "delete_file": "human_approval", "mkdir": "human_approval"}


def test_a_server_without_tools_gives_a_policy_that_still_loads() -> None:
    load_config_text(starter_policy("empty", []), "starter.yaml")


@pytest.mark.parametrize(("raw", "clean"), [("mcp-server time", "mcp-server-time"), ("fs", "fs"), ("a.b", "a-b")])
def test_server_names_are_made_usable_in_tool_names(raw: str, clean: str) -> None:
    assert policy_name(raw) == clean


def test_a_server_name_without_letters_is_refused() -> None:
    with pytest.raises(ValueError, match="pass --server NAME"):
        policy_name("...")
