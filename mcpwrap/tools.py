"""What mcpwrap knows about the server's tools: annotations, visibility for this agent, and pins.

`filter` runs on every `tools/list` result (the client's, or mcpwrap's own when a call comes first);
`pin_verdict` turns a tool's pin state into the configured action (`warn`, `human_approval`, `deny`).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpwrap.spelling import imitated
from policy import Action, Approval, Decision, Gate, Outcome, ToolCall, Verdict, VerdictKind
from policy.gate.pins import PINS_FILE, PinBook, PinState, fingerprint
from policy.store import new_id

log = logging.getLogger("mcpwrap")

_ACTION_KIND = {"warn": VerdictKind.ALLOW, "deny": VerdictKind.DENY, "human_approval": VerdictKind.PENDING}


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


@dataclasses.dataclass(slots=True)
class _Unpinned:
    """A tool whose description or schema differs from its pin, waiting for the configured action."""

    state: PinState
    fingerprint: str
    action: str


class ToolBook:
    """Annotations, visibility and pin state of one server's tools, for one agent."""

    def __init__(self, gate: Gate, *, agent: str, session_id: str) -> None:
        self._gate = gate
        self._agent = agent
        self._session_id = session_id
        self._annotations: dict[str, Mapping[str, Any]] = {}
        self._with_output_schema: set[str] = set()
        self._unpinned: dict[str, _Unpinned] = {}
        self._pins = PinBook(Path(gate.config.state_dir) / PINS_FILE)
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

    def filter(self, server: str, body: dict[str, Any]) -> dict[str, Any]:
        """`body` without the tools this agent may never call (or whose changed pin says deny)."""
        tools = body.get("tools")
        if not isinstance(tools, list):
            return body
        # One entry per name, the first: with two "echo"s the client could read one while the pin and the
        # annotations came from the other. An entry with no string name is never shown (nothing pins it).
        listed: dict[str, dict[str, Any]] = {}
        for t in tools:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                listed.setdefault(t["name"], t)
        for name, tool in listed.items():
            ann = tool.get("annotations")
            self._annotations[name] = _riskier(self._annotations.get(name), ann if isinstance(ann, dict) else {})
            if isinstance(tool.get("outputSchema"), dict):
                self._with_output_schema.add(name)
            else:
                self._with_output_schema.discard(name)
        self._check_pins(server, listed)
        self.listed = True
        hide = self._gate.config.mcp.hide_denied_tools
        kept = [t for name, t in listed.items() if not self._hidden(server, name, hide)]
        if len(kept) != len(tools):
            log.warning("tools/list of %s: %d entries not shown", server, len(tools) - len(kept))
            return {**body, "tools": kept}
        return body

    def _hidden(self, server: str, name: str, hide_denied: bool) -> bool:
        unpinned = self._unpinned.get(name)
        if unpinned is not None and unpinned.action == "deny":
            return True
        if not hide_denied:
            return False
        probe = ToolCall(
            self._agent, "mcp_stdio", server, name, {}, self._session_id, annotations=self.annotations(name)
        )
        return not self._gate.visible(probe)

    def _check_pins(self, server: str, listed: Mapping[str, Mapping[str, Any]]) -> None:
        prints = {name: fingerprint(tool) for name, tool in listed.items()}
        mcp = self._gate.config.mcp
        for name, state in self._pins.compare(server, prints).items():
            if state is PinState.SAME:
                self._unpinned.pop(name, None)
                continue
            action = mcp.pin_changed if state is PinState.CHANGED else mcp.pin_new
            known = self._unpinned.get(name)
            if known is not None and known.fingerprint == prints[name]:
                continue  # already reported; still waiting for its action
            if state is PinState.CHANGED:
                log.warning("tool %s.%s changed since it was pinned: %s", server, name, action)
            else:
                log.info("tool %s.%s is new (no pin yet): %s", server, name, action)
            self._trace_pin(server, name, state, prints[name], action)
            if action == "warn":
                self._pins.accept(server, name, prints[name])
                self._unpinned.pop(name, None)
            else:
                self._unpinned[name] = _Unpinned(state, prints[name], action)

    def _trace_pin(self, server: str, name: str, state: PinState, fp: str, action: str) -> None:
        rule = f"mcp.pin_{state.value}"
        reason = f"tool {server}.{name} is {state.value} (description or input schema): {action}"
        decision = Decision(
            Action.DENY if action == "deny" else Action.ALLOW if action == "warn" else Action.HUMAN_APPROVAL,
            rule,
            reason,
        )
        verdict = Verdict(_ACTION_KIND[action], decision, f"pin:{state.value}", reason, secrets.token_hex(16))
        event = ToolCall(
            self._agent, "mcp_stdio", server, name, {"pin_event": state.value, "fingerprint": fp}, self._session_id
        )
        self._gate.finish(event, verdict, Outcome(forwarded=False))

    async def pin_verdict(self, call: ToolCall, verdict: Verdict) -> Verdict:
        """The Gate's verdict, overridden when the tool changed since pinned and its action says so."""
        unpinned = self._unpinned.get(call.tool)
        if unpinned is None or verdict.kind in (VerdictKind.DENY, VerdictKind.RATE_LIMITED, VerdictKind.LOOP_DETECTED):
            return verdict
        reason = f"tool {call.full_name} changed since it was pinned (its description or input schema)"
        if unpinned.action == "deny":
            return dataclasses.replace(
                verdict, kind=VerdictKind.DENY, decided_by=f"pin:{unpinned.state.value}", reason=reason
            )
        if verdict.kind is VerdictKind.PENDING:
            return verdict  # a human already has to look at this call
        store, now = self._gate.store, time.time()
        used = store.consume_approval(call.call_hash, self._session_id, now)
        if used is not None:
            return dataclasses.replace(verdict, decided_by=f"human:{used.resolved_by}", approval_id=used.id)
        approval = store.open_approval(
            Approval(
                id=new_id(), call_hash=call.call_hash, agent=call.agent, surface=call.surface, server=call.server,
                tool=call.tool, arguments=dict(call.arguments), memory_key="", rule=f"mcp.pin_{unpinned.state.value}",
                reason=reason, created_at=now, expires_at=now + self._gate.config.approval.expire_after,
                trace_id=verdict.trace_id, session_id=self._session_id,
            )
        )  # fmt: skip
        return dataclasses.replace(verdict, kind=VerdictKind.PENDING, decided_by=f"pin:{unpinned.state.value}",
                                   reason=reason, approval_id=approval.id)  # fmt: skip

    def approved(self, call: ToolCall, server: str) -> None:
        """A human let a call to an unpinned tool through: the tool's current form becomes its pin."""
        unpinned = self._unpinned.pop(call.tool, None)
        if unpinned is not None:
            self._pins.accept(server, call.tool, unpinned.fingerprint)
