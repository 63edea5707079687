"""Asking the Gate about one flow's calls, holding pending ones inside the hook, and showing all of it on
the flow (comment, marker, metadata) — with mitmweb's Resume and Abort routed to the Operator.

A held flow is shown intercepted at once: its new state is pushed to mitmweb's view (an `update` event) while
the hook still waits, so an open mitmweb tab shows it live. Markers and comment icons are characters common
text fonts have (✔ ✖ ‖), so they read without an emoji font too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from mitmproxy import ctx, hooks
from mitmproxy import flow as mflow

from policy import Gate, StoreConflict, ToolCall, Verdict, VerdictKind

log = logging.getLogger("agent_mesh.proxy")

META = "agent-mesh"
# mitmweb's Abort sets no event to await (only Resume does): each held flow looks twice a second. The approval
# itself is awaited on a notification (Gate.hold); this is only the UI, and cheap even for thousands held.
UI_POLL_SECONDS = 0.5
# Who decided, as the Operator records it (the trace says `human:mitmweb`: the ladder adds `human:`).
UI_ACTOR = "mitmweb"
# mitmweb markers (shortcodes of mitmproxy.utils.emoji) whose characters text fonts have: ✔ and ✖.
ALLOWED_MARK = ":heavy_check_mark:"
REFUSED_MARK = ":heavy_multiplication_x:"
REFUSED_ICON = "✖"
HELD_ICON = "‖"
_ICON = {VerdictKind.ALLOW: "✔", VerdictKind.PENDING: HELD_ICON}


class Judge:
    """The gate of one proxy process, and its human side (Gate.operator) for mitmweb's Resume and Kill."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.held: dict[str, str] = {}

    async def judge(self, flow: mflow.Flow, call: ToolCall, *, continues: bool = False) -> Verdict:
        """The Gate's verdict, held in the hook while a human decides; `continues` for a 2026-07-28 retry
        carrying input, judged bound to its original call (Gate.check_continuation)."""
        verdict = await (self.gate.check_continuation(call) if continues else self.gate.check(call))
        if verdict.kind is VerdictKind.PENDING and verdict.approval_id is not None:
            verdict = await self._hold(flow, call, verdict)
        return verdict

    async def _hold(self, flow: mflow.Flow, call: ToolCall, verdict: Verdict) -> Verdict:
        approval_id = verdict.approval_id
        assert approval_id is not None
        flow.intercept()  # type: ignore[no-untyped-call]
        flow.comment = _append(
            flow.comment,
            f"{HELD_ICON} {call.full_name} held for approval {approval_id}: {verdict.reason}. "
            f"Resume approves, Abort denies; or `agent-mesh approvals approve {approval_id}`.",
        )
        changed(flow)
        self.held[approval_id] = flow.id
        watcher = asyncio.create_task(self._watch_ui(flow, approval_id))
        try:
            return await self.gate.hold(verdict)
        finally:
            watcher.cancel()
            self.held.pop(approval_id, None)
            if flow.id not in self.held.values():
                _restore(flow)
                changed(flow)

    async def _watch_ui(self, flow: mflow.Flow, approval_id: str) -> None:
        """A Resume click approves and an Abort denies, through the Operator: never around the gate."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flow.wait_for_resume(), UI_POLL_SECONDS)  # type: ignore[no-untyped-call]
            if flow.error is not None and flow.error.msg == mflow.Error.KILLED_MESSAGE:
                self.decide(approval_id, approve=False, by=UI_ACTOR, reason="aborted in mitmweb")
                return
            if not flow.intercepted:
                self.decide(approval_id, approve=True, by=UI_ACTOR, reason="resumed in mitmweb")
                return

    def decide(self, approval_id: str, *, approve: bool, by: str, reason: str) -> str:
        """Resolve a pending approval (mesh.approve / mesh.deny / mitmweb); returns what happened."""
        operator = self.gate.operator()  # the current config's (a reload swaps it in the gate)
        try:
            if approve:
                done, _grant = operator.approve(approval_id, by=by, reason=reason)
            else:
                done = operator.deny(approval_id, by=by, reason=reason)
        except (StoreConflict, ValueError) as exc:
            log.warning("agent-mesh: %s", exc)
            return str(exc)
        return f"approval {done.id} {done.state.value} by {by}"


def changed(flow: mflow.Flow) -> None:
    """Tell the UI now that the flow changed inside a hook (mitmweb's view broadcasts an `update` to open tabs;
    without it the change shows at the flow's next event, or after a reload)."""
    master = getattr(ctx, "master", None)
    if master is not None:
        master.addons.trigger(hooks.UpdateHook([flow]))


def _restore(flow: mflow.Flow) -> None:
    """The hold is over: a killed flow gets its readable answer instead of a dropped connection."""
    if flow.error is not None and flow.error.msg == mflow.Error.KILLED_MESSAGE:
        flow.error = None
        flow.live = True
    if flow.intercepted:
        flow.resume()  # type: ignore[no-untyped-call]


def annotate(flow: mflow.Flow, calls: Iterable[tuple[ToolCall, Verdict]]) -> None:
    """Comment with verdict and rule, ✔ when every call passed and ✖ otherwise, trace ids in metadata."""
    entries = flow.metadata.setdefault(META, [])
    all_allowed = True
    for call, verdict in calls:
        all_allowed &= verdict.allowed
        icon = _ICON.get(verdict.kind, REFUSED_ICON)
        by = "" if verdict.decided_by == f"policy:{verdict.decision.rule}" else f", by {verdict.decided_by}"
        flow.comment = _append(
            flow.comment, f"{icon} {verdict.kind.value}: {call.full_name} (rule {verdict.decision.rule}{by})"
        )
        entries.append(
            {
                "trace_id": verdict.trace_id,
                "tool": call.full_name,
                "agent": call.agent,
                "verdict": verdict.kind.value,
                "rule": verdict.decision.rule,
                "approval_id": verdict.approval_id,
            }
        )
    flow.marked = ALLOWED_MARK if all_allowed else REFUSED_MARK


def _append(comment: str, line: str) -> str:
    return f"{comment}\n{line}" if comment else line
