"""The pin rung of the Gate: every `tools/list` result is observed here, and a call to a tool whose listed
form is not its pin gets the configured action (`mcp.pin_changed`, `mcp.pin_new`: warn, human_approval, deny).

Both adapters call `Gate.observe_tools` with the tools a server listed, so a changed description is caught
over stdio (mcpwrap) and over MCP HTTP (the proxy) alike. Pins live in `state.db` (Store.observe_pin), shared
by every process; each change is reported once, as an `event` trace record (never counted as a call). A
`<state_dir>/mcp-pins.json` left by an older agent-mesh is imported once.

Hot path: a call costs a dict lookup; the store is read once per tool this process has not listed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policy.core.config import McpSettings
from policy.core.model import Action, Decision, ToolCall, Verdict, VerdictKind
from policy.core.pins import Pin, PinState, fingerprint
from policy.core.redact import redact, redaction_keys
from policy.store.base import Approval, Store, new_id
from policy.trace.record import build_event

if TYPE_CHECKING:
    from policy.gate.gate import Gate

__all__ = ["PINS_FILE", "Listing", "PinRung", "PinState", "fingerprint", "import_pin_file", "observe_tools"]

log = logging.getLogger("agent_mesh.pins")

PINS_FILE = "mcp-pins.json"  # where pins lived before state.db: imported once, then renamed
MCP_SURFACES = frozenset({"mcp_stdio", "mcp_http"})
_CACHE_LIMIT = 8192  # tool names come from servers and agents: the per-process cache stays bounded
type Hides = Callable[[str], bool]  # whether the policy hides a tool (by name) from the agent
_EVENTS = {PinState.NEW: "tool_first_seen", PinState.CHANGED: "tool_changed"}


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a listing showed that is not a call: a tool first seen or changed, or tools hidden."""

    event: str
    server: str
    tool: str
    detail: Mapping[str, Any]
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Listing:
    """A `tools/list` result's tools as the agent may see them, and what the Gate noticed (as event records)."""

    tools: list[dict[str, Any]]
    hidden: tuple[str, ...]
    notices: tuple[Notice, ...]
    error: str | None = None  # the pins could not be compared: nothing is shown, and this says why


def action_for(mcp: McpSettings, state: PinState) -> str:
    """What the config says happens to a tool in `state` (SAME: nothing)."""
    if state is PinState.SAME:
        return "warn"
    return mcp.pin_changed if state is PinState.CHANGED else mcp.pin_new


class PinRung:
    """Observes listings (stores pins, reports changes) and judges calls to tools whose form is not pinned."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self.clock = clock
        self._pins: dict[tuple[str, str], Pin | None] = {}  # what this process knows; None: never listed
        # (agent, surface, server, session) -> last reported: once per session, as an mcpwrap process reports it
        self._hidden: dict[tuple[str, str, str, str], tuple[str, ...]] = {}

    # -- listings ----------------------------------------------------------------------------------------

    def observe(
        self,
        mcp: McpSettings,
        server: str,
        tools: Sequence[Any],
        *,
        agent: str,
        surface: str,
        hides: Hides,
        session: str | None = None,
    ) -> Listing:
        """The listed tools without those this agent may not see; records each tool's form as seen.

        One entry per name, the first: with two "echo"s the client could read one while the pin came from the
        other. An entry with no string name is never shown (nothing pins it). `hides(name)` is the policy's
        say (`mcp.hide_denied_tools`)."""
        listed: dict[str, dict[str, Any]] = {}
        for t in tools:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                listed.setdefault(t["name"], t)
        notices: list[Notice] = []
        kept: list[dict[str, Any]] = []
        hidden: list[str] = []
        for name, tool in listed.items():
            pin = self._observe_one(mcp, server, name, fingerprint(tool), notices)
            if (pin.open and action_for(mcp, pin.state) == "deny") or hides(name):
                hidden.append(name)
            else:
                kept.append(tool)
        key = (agent, surface, server, session or "")
        if hidden and self._hidden.get(key) != tuple(hidden):
            if len(self._hidden) >= _CACHE_LIMIT:
                self._hidden.clear()
            self._hidden[key] = tuple(hidden)
            why = f"{len(hidden)} tool(s) of {server} not shown to {agent}: denied by the policy or by their pin"
            notices.append(Notice("tools_hidden", server, "tools/list", {"hidden": hidden}, "mcp.hide", why))
        return Listing(kept, tuple(hidden), tuple(notices))

    def _observe_one(self, mcp: McpSettings, server: str, name: str, fp: str, notices: list[Notice]) -> Pin:
        known = self._pins.get((server, name))
        if known is not None and known.seen == fp and not known.open:
            return known  # the steady state: listed as pinned, no store write per listing
        seen = self._store.observe_pin(server, name, fp, self.clock())
        pin = seen.pin
        action = action_for(mcp, pin.state)
        if pin.open and action == "warn":
            pin = self._store.accept_pin(server, name, fp, self.clock())
        if seen.fresh:
            before = seen.pin.pinned
            state = seen.state.value
            why = f"tool {server}.{name} is {state} (description or input schema): {action}"
            (log.warning if seen.state is PinState.CHANGED else log.info)("%s", why)
            detail = {"pin_event": state, "fingerprint": fp, "pinned": before, "action": action}
            notices.append(Notice(_EVENTS[seen.state], server, name, detail, f"mcp.pin_{state}", why))
        self._remember(pin)
        return pin

    def _remember(self, pin: Pin) -> None:
        if len(self._pins) >= _CACHE_LIMIT:
            self._pins.clear()
        self._pins[(pin.server, pin.tool)] = pin

    # -- calls -------------------------------------------------------------------------------------------

    def open_pin(self, call: ToolCall) -> Pin | None:
        """The pin of the called tool when its listed form is not pinned; None otherwise (or not MCP)."""
        if call.surface not in MCP_SURFACES:
            return None
        key = (call.server, call.tool)
        if key in self._pins:
            pin = self._pins[key]
            if pin is not None and pin.open:
                # Rare (a tool waiting for its action): has a human (`agent-mesh pins accept`, an approved call in
                # another process) accepted the form listed here since? Then it is this process's pin too.
                stored = self._store.get_pin(call.server, call.tool)
                if stored is not None and stored.pinned == pin.seen:
                    pin = Pin(pin.server, pin.tool, pin.seen, pin.seen, PinState.SAME, stored.first_seen,
                              stored.changed_at, stored.accepted_at)  # fmt: skip
                    self._remember(pin)
        else:
            # Not listed through this process (another one listed it, or the agent never listed): the store.
            pin = self._store.get_pin(call.server, call.tool)
            if len(self._pins) >= _CACHE_LIMIT:
                self._pins.clear()
            self._pins[key] = pin
        return pin if pin is not None and pin.open else None

    def judge(
        self, mcp: McpSettings, call: ToolCall, decision: Decision, pin: Pin, trace_id: str, now: float, *,
        expire_after: float, redact_keys: Sequence[str],
    ) -> Verdict | None:  # fmt: skip
        """The verdict for a call to an unpinned tool the policy does not deny; None when its action is warn.

        `deny` refuses; `human_approval` needs an approval of this exact call (no grant, decision memory or
        supervisor lifts it: they vouched for the tool as it was). Approved, the tool's form becomes its pin."""
        action = action_for(mcp, pin.state)
        if action == "warn":
            return None
        if action == "deny":
            return pin_verdict(action, call, decision, pin, trace_id)
        asked = asked_for(call, decision, pin)
        rule, reason = asked.rule, asked.reason
        used = self._store.consume_approval(call.call_hash, trace_id, now)
        if used is not None:
            self.accept(call, pin)
            return pin_verdict(action, call, decision, pin, trace_id, used=used)
        keys = redaction_keys(redact_keys)
        approval = self._store.open_approval(
            Approval(
                id=new_id(), call_hash=call.call_hash, agent=call.agent, surface=call.surface, server=call.server,
                tool=call.tool, arguments=redact(call.arguments, keys), memory_key="", rule=rule, reason=reason,
                created_at=now, expires_at=now + expire_after, trace_id=trace_id, session_id=call.session_id,
            )
        )  # fmt: skip
        return pin_verdict(action, call, decision, pin, trace_id, approval_id=approval.id)

    def approved(self, call: ToolCall, verdict: Verdict) -> None:
        """A held call went through with a human's approval: an unpinned tool's form becomes its pin."""
        if verdict.kind is VerdictKind.ALLOW and verdict.approval_id is not None:
            pin = self.open_pin(call)
            if pin is not None:
                self.accept(call, pin)

    def accept(self, call: ToolCall, pin: Pin) -> None:
        self._remember(self._store.accept_pin(call.server, call.tool, pin.seen, self.clock()))


def asked_for(call: ToolCall, decision: Decision, pin: Pin) -> Decision:
    """The decision of a call to an unpinned tool: its rule (`mcp.pin_new`, `mcp.pin_changed`) and why."""
    what = "changed since it was pinned" if pin.state is PinState.CHANGED else "new (never pinned)"
    reason = f"tool {call.full_name} {what} (its description or input schema)"
    return Decision(Action.HUMAN_APPROVAL, f"mcp.pin_{pin.state.value}", reason, decision.policy)


def pin_verdict(
    action: str, call: ToolCall, decision: Decision, pin: Pin, trace_id: str, *,
    used: Approval | None = None, approval_id: str | None = None,
) -> Verdict:  # fmt: skip
    """The pin rung's verdict for `action` (deny or human_approval), given the approval of this exact call it
    uses (`used`), else the one it waits on: shared by `PinRung.judge` and Gate.preview (which uses nothing)."""
    asked = asked_for(call, decision, pin)
    by = f"pin:{pin.state.value}"
    if action == "deny":
        return Verdict(VerdictKind.DENY, Decision(Action.DENY, asked.rule, asked.reason, decision.policy), by,
                       asked.reason, trace_id)  # fmt: skip
    if used is not None:
        who = f"human:{used.resolved_by}"
        return Verdict(VerdictKind.ALLOW, asked, who, f"approved by {used.resolved_by}", trace_id, used.id)
    return Verdict(VerdictKind.PENDING, asked, by, asked.reason, trace_id, approval_id)


def observe_tools(
    gate: Gate, server: str, agent: str, tools: list[Any], *, surface: str, session_id: str | None
) -> Listing:
    """`Gate.observe_tools`: the listing as this agent may see it; what it showed is recorded as events.

    Fails closed: when the store cannot be read or written, no tool is shown (calls are refused by the Gate
    for the same reason) rather than tools whose pins were never compared."""
    hide = gate.config.mcp.hide_denied_tools

    def hides(name: str) -> bool:
        return hide and not gate.visible(ToolCall(agent, surface, server, name, session_id=session_id))  # type: ignore[arg-type]

    try:
        listing = gate.pins.observe(
            gate.config.mcp, server, tools, agent=agent, surface=surface, hides=hides, session=session_id
        )
    except Exception as exc:
        log.error("agent-mesh: tools/list of %s not shown: the pins could not be compared: %s", server, exc)
        names = tuple(t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str))
        return Listing([], names, (), f"{type(exc).__name__}: {exc}")
    for n in listing.notices:
        record = build_event(
            n.event, trace_id=new_trace_id(), agent=agent, surface=surface, server=n.server,
            tool=f"{n.server}.{n.tool}" if n.server else n.tool, detail=n.detail, rule=n.rule, reason=n.reason,
            session_id=session_id, policy_hash=gate.policy_set.policy_hash, ts=gate.pins.clock(),
        )  # fmt: skip
        try:
            gate.sink.emit(record)
        except Exception:
            log.exception("agent-mesh: could not record the %s event of %s", n.event, record["tool"])
    return listing


def new_trace_id() -> str:
    from policy.gate.gate import new_trace_id as make  # one id generator for calls and events

    return make()


def import_pin_file(store: Store, state_dir: Path, now: float) -> int:
    """Pins of an older agent-mesh (`mcp-pins.json`, `{server: {tool: fingerprint}}`) into the store, once:
    tools the store knows already keep their pin; the file is renamed so it is not read again. Returns how
    many were imported. An unreadable file is left where it is and reported (pins start afresh)."""
    path = state_dir / PINS_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable pin file (%s): not imported; fix or remove it", path, exc)
        return 0
    n = 0
    try:
        for server, tools in data.items() if isinstance(data, dict) else ():
            for tool, fp in tools.items() if isinstance(tools, dict) else ():
                fits = isinstance(server, str) and isinstance(tool, str) and isinstance(fp, str)
                if fits and store.get_pin(server, tool) is None:
                    store.accept_pin(server, tool, fp, now)
                    n += 1
        path.rename(path.with_name(PINS_FILE + ".imported"))
    except Exception as exc:  # the store is down: the next start tries again (importing twice changes nothing)
        log.warning("%s: pins not imported yet: %s", path, exc)
    return n
