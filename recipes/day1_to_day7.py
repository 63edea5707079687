"""Day 1 to day 7: decision memory learns a routine call from three human approvals.

Days 1-3 a human approves the agent's restart of the staging web service; on day 4 the identical call is
approved from memory (`memory:3`, naming the precedents); on day 7 a restart of the production database
still asks a human. Runs offline on the in-process gate (MemoryStore, MemoryTraceSink) and checks itself:

    .venv/bin/python recipes/day1_to_day7.py
"""

from __future__ import annotations

import asyncio
import sys

from policy import Gate, MemoryStore, Operator, Outcome, ToolCall, Verdict, VerdictKind, load_config_text
from policy.trace import MemoryTraceSink

CONFIG = """
version: 1
state_dir: .agent-mesh
policies:
  - name: ops
    agent: claude
    rules:
      - {name: status, tools: ["deploy.status", "deploy.list_*"], action: allow}
      - {name: restarts, tools: ["deploy.restart_service"], action: human_approval}
memory: {auto_approve_after: 3, key: [args], window: 30d}
"""
DAY = 86400.0


class Clock:
    """A week in a few milliseconds."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0  # a Monday morning

    def __call__(self) -> float:
        return self.now


def restart(service: str) -> ToolCall:
    return ToolCall("claude", "mcp_stdio", "deploy", "restart_service", {"service": service, "mode": "rolling"})


async def story(out: list[str]) -> list[str]:
    """Play the week; return the problems found (empty: the story held)."""
    clock = Clock()
    sink = MemoryTraceSink()
    loaded = load_config_text(CONFIG, "day1_to_day7.yaml")
    store = MemoryStore()
    gate = Gate.open(loaded, store=store, sink=sink, clock=clock)
    human = Operator(loaded.config, store, clock=clock)
    problems: list[str] = []

    async def call(c: ToolCall) -> Verdict:
        verdict = await gate.check(c)
        gate.finish(c, verdict, Outcome(forwarded=verdict.allowed, status=200 if verdict.allowed else None))
        return verdict

    def expect(what: str, ok: bool) -> None:
        if not ok:
            problems.append(what)

    for day in (1, 2, 3):
        asked = await call(restart("staging-web"))
        expect(f"day {day}: the restart waits for a human", asked.kind is VerdictKind.PENDING)
        assert asked.approval_id is not None
        human.approve(asked.approval_id, by="alice", reason="routine staging restart")
        retried = await call(restart("staging-web"))
        expect(f"day {day}: the approved retry passes", retried.decided_by == "human:alice")
        out.append(f"day {day}: restart staging-web -> waits ({asked.approval_id}), alice approves, retry passes")
        clock.now += DAY

    fourth = await call(restart("staging-web"))
    expect("day 4: memory approves the routine restart", fourth.decided_by == "memory:3")
    expect("day 4: the three precedents are named", len(fourth.precedents) == 3)
    out.append(f"day 4: restart staging-web -> {fourth.kind.value} by {fourth.decided_by}: {fourth.reason}")
    out.append(f"       precedents: {', '.join(fourth.precedents)}")
    expect("day 4: an auto-approval is not a new precedent", len(human.facts()) == 3)

    clock.now += 3 * DAY
    other = await call(restart("prod-db"))
    expect("day 7: a different argument still asks", other.kind is VerdictKind.PENDING)
    out.append(f"day 7: restart prod-db -> {other.kind.value} (approval {other.approval_id}): a human decides")

    verdicts = [r["decided_by"] for r in sink.records]
    expect("one trace record per call", len(verdicts) == 8)
    out.append(f"trace: {len(verdicts)} records, decided by {', '.join(verdicts)}")
    await gate.aclose()
    return problems


def main() -> int:
    lines: list[str] = []
    problems = asyncio.run(story(lines))
    print("\n".join(lines))
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("OK: three approvals taught memory the routine call; a different argument still asks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
