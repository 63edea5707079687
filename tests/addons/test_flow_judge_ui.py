"""mitmweb's side of a held call: the flow is shown intercepted while its hook still waits (an `update` event
reaches mitmweb's view then, not at the flow's next event), Resume approves and Abort denies through the
Operator, and the decider is recorded once: `mitmweb` on the approval, `human:mitmweb` in the trace."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from mitmproxy import flow as mflow

from addons.flow_judge import HELD_ICON
from tests.addons.harness import harness, make_flow, wait_until


class SeenUpdates:
    """What mitmweb's view hears: the `update` events, with the flow's state at that moment."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, str]] = []

    def update(self, flows: Sequence[mflow.Flow]) -> None:
        self.seen.extend((f.id, f.intercepted, f.comment) for f in flows)


async def test_a_held_flow_is_shown_intercepted_while_it_waits(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        ui = SeenUpdates()
        h.tctx.master.addons.add(ui)
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(flow))
        await wait_until(lambda: flow.intercepted)
        # Pushed while the request hook still holds the flow: an open mitmweb tab shows it now.
        assert not task.done()
        ((flow_id, intercepted, comment),) = ui.seen
        assert (flow_id, intercepted) == (flow.id, True)
        assert f"{HELD_ICON} petstore.addPet held for approval" in comment
        assert "Resume approves, Abort denies" in comment
        flow.resume()
        await asyncio.wait_for(task, 5)
        # The end of the hold is pushed too: no longer intercepted, the verdict in the comment.
        assert ui.seen[-1][:2] == (flow.id, False)


async def test_resume_is_recorded_once_as_mitmweb(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(flow))
        await wait_until(lambda: flow.intercepted)
        flow.resume()
        await asyncio.wait_for(task, 5)
        h.respond(flow, 200, {"id": 1})
        (approval,) = h.store.list_approvals(None, 0.0)
        assert approval.resolved_by == "mitmweb"
        assert [r["decided_by"] for r in h.records] == ["human:mitmweb"]


async def test_abort_denies_through_the_operator(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        flow = make_flow("POST", "https://petstore.test/v2/pet", {"name": "rex"})
        task = asyncio.create_task(h.addon.request(flow))
        await wait_until(lambda: flow.intercepted)
        flow.kill()  # what mitmweb 12's Abort button asks for
        await asyncio.wait_for(task, 5)
        (approval,) = h.store.list_approvals(None, 0.0)
        assert (approval.state.value, approval.resolved_by) == ("denied", "mitmweb")
        assert [r["decided_by"] for r in h.records] == ["human:mitmweb"]
        assert flow.marked == ":heavy_multiplication_x:"
