"""`serve` says when a call is held: the watcher reports each new pending approval once, with its page link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from policy import LoadedConfig
from policy.cli.look import held_line
from policy.control import ControlPlane, OperatorAuth
from policy.store.base import Approval
from tests.policy.control.conftest import TOKEN, Call

PAGE = "http://127.0.0.1:8181"


@pytest.fixture
def served(loaded: LoadedConfig) -> Iterator[ControlPlane]:
    p = ControlPlane(loaded, OperatorAuth(TOKEN, "alice"), public_url=PAGE, allowed_hosts=frozenset({"127.0.0.1"}))
    yield p
    p.close()


async def test_each_held_call_gets_one_line_with_agent_tool_id_and_page_link(served: ControlPlane, call: Call) -> None:
    lines: list[str] = []

    def say(a: Approval, link: str | None) -> None:
        lines.append(held_line(a.agent, a.full_name, a.id, link, a.request_line))

    served.watcher.on_held.append(say)
    served.watcher.step()  # the first step starts from the history
    v = await call("fs.write_file", {"path": "/srv/x"})
    served.watcher.step()
    served.watcher.step()  # still waiting: not announced twice
    assert lines == [f"held: claude -> fs.write_file  approval {v.approval_id}  {PAGE}#approval-{v.approval_id}"]


async def test_calls_waiting_before_the_watcher_started_are_not_announced(served: ControlPlane, call: Call) -> None:
    announced: list[str] = []
    served.watcher.on_held.append(lambda a, link: announced.append(a.id))
    await call("fs.write_file", {"path": "/srv/old"})
    served.watcher.step()
    assert announced == []


async def test_a_failing_reporter_does_not_stop_the_watcher(served: ControlPlane, call: Call) -> None:
    def broken(a: Approval, link: str | None) -> None:
        raise BrokenPipeError("the terminal went away")

    served.watcher.on_held.append(broken)
    served.watcher.step()
    await call("fs.write_file", {"path": "/srv/y"})
    assert [e.kind for e in served.watcher.step()][-1] == "approvals"  # the pending set still published
