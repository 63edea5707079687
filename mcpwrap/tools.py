"""What mcpwrap knows about the server's tools: annotations and output schemas, for judging and answering.

`filter` runs on every `tools/list` result (the client's, or mcpwrap's own when a call comes first): it
remembers what the listing says and hands the tools to `Gate.observe_tools`, which compares them with their
pins and leaves out what this agent may not see (policy/gate/pins.py). The pin action on a call is the
Gate's too; this module only translates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from policy import Gate
from policy.core.errors import StoreUnavailable
from policy.wire.names import imitated

log = logging.getLogger("mcpwrap")


# Hints whose `true` lets a policy relax (read-only, idempotent) and whose `true` makes it stricter.
_RELAXING = ("readOnlyHint", "idempotentHint")
_TIGHTENING = ("destructiveHint", "openWorldHint")


def _riskier(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> Mapping[str, Any]:
    """A tool's annotations as listed `now`, except that within a session a hint never turns the safe way:
    once a tool was said destructive (or not read-only), a later listing cannot say otherwise (pins cover
    description and schema, not annotations, and rules such as `tool.annotations.destructiveHint` read them)."""
    if not before or before == now:
        return now
    merged = dict(now)
    for key in _RELAXING:
        if before.get(key) is False and merged.get(key) is not False:
            merged[key] = False
    for key in _TIGHTENING:
        if before.get(key) is True and merged.get(key) is not True:
            merged[key] = True
    return merged


class ToolBook:
    """Annotations and output schemas of one server's tools, as listed to one agent."""

    def __init__(self, gate: Gate, *, agent: str, session_id: str) -> None:
        self._gate = gate
        self._agent = agent
        self._session_id = session_id
        self._annotations: dict[str, Mapping[str, Any]] = {}
        self._with_output_schema: set[str] = set()
        self.listed = False

    def forget(self) -> None:
        """The server said its tools changed: list again before the next call."""
        self.listed = False

    def imitated(self, tool: str) -> str | None:
        """The listed tool `tool` imitates without being it ("Forbidden", "forbidden\u200b"), or None."""
        if tool in self._annotations:
            return None
        return imitated(tool, self._annotations)

    def annotations(self, tool: str) -> Mapping[str, Any]:
        return self._annotations.get(tool, {})

    def has_output_schema(self, tool: str) -> bool:
        return tool in self._with_output_schema

    def filter(self, server: str, body: dict[str, Any], *, for_client: bool = False) -> dict[str, Any]:
        """`body` without the tools this agent may not see (the Gate's say: policy, pins).

        When the pins cannot be compared (the store is down), nothing is shown: the client's own listing
        (`for_client`) is answered with no tools, and mcpwrap's listing before a call raises StoreUnavailable
        so that call is refused as not judged."""
        tools = body.get("tools")
        if not isinstance(tools, list):
            return body
        seen: set[str] = set()
        for tool in tools:
            # The first entry of a name is the one the Gate pins and shows: its annotations are the ones believed.
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or tool["name"] in seen:
                continue
            name = tool["name"]
            seen.add(name)
            ann = tool.get("annotations")
            self._annotations[name] = _riskier(self._annotations.get(name), ann if isinstance(ann, dict) else {})
            if isinstance(tool.get("outputSchema"), dict):
                self._with_output_schema.add(name)
            else:
                self._with_output_schema.discard(name)
        listing = self._gate.observe_tools(server, self._agent, tools, surface="mcp_stdio", session_id=self._session_id)
        if listing.error is not None:
            why = f"the tools of {server} could not be compared with their pins: {listing.error}"
            if not for_client:
                raise StoreUnavailable(why)
            log.error("tools/list of %s shown empty: %s", server, why)
            return {**body, "tools": []}
        if not for_client:
            # Only mcpwrap's own listing, which follows every page, counts as knowing the tools: a client may list
            # one page (a `cursor` of its choosing) and then call a tool of another, judged without its annotations.
            self.listed = True
        if len(listing.tools) != len(tools):
            log.warning("tools/list of %s: %d entries not shown", server, len(tools) - len(listing.tools))
            return {**body, "tools": listing.tools}
        return body
