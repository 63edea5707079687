"""Filtering MCP list results by policy, for both adapters: what an agent may never use, it does not see.

`tools/list` keeps its own path in each adapter (it also learns annotations and pins); this module covers
`resources/list`, `resources/templates/list` and `prompts/list`. A listed resource is hidden when reading
that exact URI is denied (the rule and its conditions decide, as for the call); a prompt when getting it by
name with no arguments is denied; a resource template when every `resources/read` is denied whatever the
URI (a template is not one URI). Hiding is a courtesy: every call is judged anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from policy.core.engine import decide
from policy.core.model import Action, Surface, ToolCall
from policy.wire.kinds import LISTS

if TYPE_CHECKING:  # the wire layer is pure: it is handed a gate, it never imports one (tests/test_guards.py)
    from policy.gate.gate import Gate

# (method of the list, item) -> True when the item is to be hidden.
type Hidden = Callable[[str, Mapping[str, Any]], bool]

FILTERED = frozenset(m for m in LISTS if m != "tools/list")


def filter_list(method: str, result: Any, hidden: Hidden) -> tuple[Any, int]:
    """`result` of a list method with the items `hidden` names removed -> (new result, number removed).

    An item that is not an object naming what it lists is removed too: nothing unjudged reaches the agent.
    """
    key = LISTS.get(method)
    if key is None or not isinstance(result, dict) or not isinstance(result.get(key), list):
        return result, 0
    items = result[key]
    kept = [item for item in items if isinstance(item, dict) and not hidden(method, item)]
    if len(kept) == len(items):
        return result, 0
    return {**result, key: kept}, len(items) - len(kept)


def policy_hides(gate: Gate, *, agent: str, surface: Surface, server: str, session: str | None) -> Hidden:
    """The `hidden` test of one agent's view of one server, by the Gate's policy (no store, no trace)."""

    hide = gate.config.mcp.hide_denied_tools

    def hidden(method: str, item: Mapping[str, Any]) -> bool:
        if method == "resources/list":
            uri = item.get("uri")
            if not isinstance(uri, str):
                return True
            return hide and _denied(gate, ToolCall(agent, surface, server, "resources/read", {"uri": uri}, session))
        if method == "prompts/list":
            name = item.get("name")
            if not isinstance(name, str):
                return True
            call = ToolCall(agent, surface, server, "prompts/get", {"name": name, "arguments": {}}, session)
            return hide and _denied(gate, call)
        if method == "resources/templates/list":
            if not isinstance(item.get("uriTemplate"), str):
                return True
            return hide and not gate.visible(ToolCall(agent, surface, server, "resources/read", {}, session))
        return False

    return hidden


def _denied(gate: Gate, call: ToolCall) -> bool:
    return decide(call, gate.policy_set).action is Action.DENY
