"""A gate on a small config, with a controllable clock, the in-memory trace sink and either store twin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from policy import Gate, Operator, load_config_text
from policy.store import MemoryStore, SqliteStore, Store
from policy.trace import MemoryTraceSink

CONFIG = """
version: 1
state_dir: {state}
policies:
{more_policies}  - name: dev
    agent: claude
    rules:
      - {{name: reads, tools: ["fs.read*"], action: allow}}
      - name: no-etc
        tools: ["fs.write_file", "fs.delete_file"]
        when: {{args.path: {{startswith: "/etc/"}}}}
        action: deny
      - {{name: writes, tools: ["fs.write_file", "fs.delete_file"], action: human_approval}}
      - {{name: never, tools: ["fs.format_disk"], action: deny}}
approval: {{hold_seconds: 2, expire_after: 1h, deny_cooldown: 5m{approval}}}
{extra}
"""


def config_text(state: Path, extra: str = "", more_policies: str = "", approval: str = "") -> str:
    if "memory:" not in extra:
        extra += "\nmemory: {auto_approve_after: 3, window: 7d}"
    return CONFIG.format(state=state, extra=extra, more_policies=more_policies, approval=approval)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Mesh:
    """One gate plus a operator on the same state, as an adapter and a human would have."""

    def __init__(
        self,
        state: Path,
        store: Store,
        extra: str = "",
        clock: Clock | None = None,
        more_policies: str = "",
        approval: str = "",
    ) -> None:
        text = config_text(state, extra, more_policies, approval)
        self.loaded = load_config_text(text, "test.yaml", str(state))
        self.clock = clock or Clock()
        self.sink = MemoryTraceSink()
        self.gate = Gate.open(self.loaded, store=store, sink=self.sink, clock=self.clock)
        self.operator = Operator(self.loaded.config, store, clock=self.clock)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "state")
    yield s
    s.close()


@pytest.fixture
def mesh(tmp_path: Path, store: Store) -> Mesh:
    return Mesh(tmp_path / "state", store)
