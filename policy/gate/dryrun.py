"""A Gate for dry runs (`explain`, `test`, `replay`, `/api/decide`): the config's policy on the mesh's state
read only, or on an empty state when there is none yet. Opening it creates nothing: no state dir, no state.db,
no trace file; its previews (Gate.preview) never write.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from policy.core.config import LoadedConfig
from policy.core.engine import compile_policies
from policy.core.errors import StoreUnavailable
from policy.core.model import Decision, ToolCall
from policy.gate.gate import Gate
from policy.gate.preview import EmptyStore
from policy.store.base import Store
from policy.store.board import SqliteBoard
from policy.store.db import DB_NAME
from policy.store.sqlite import SqliteStore
from policy.trace import MemoryTraceSink


def state_for_preview(state_dir: str | Path) -> Store:
    """The state.db under `state_dir` opened read only, or an EmptyStore when it does not exist yet."""
    if (Path(state_dir) / DB_NAME).is_file():
        return SqliteStore(state_dir, read_only=True)
    return EmptyStore()


def open_dry_run(
    loaded: LoadedConfig,
    *,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    stops: bool = True,
) -> Gate:
    """A gate on `loaded` whose previews read `store` (default: the config's state dir, read only) and obey the
    emergency stops recorded there. Its trace sink is in memory and never written: only previews are asked.

    A state dir other users can reach is refused when first read (StateDirExposed, a StoreUnavailable): its
    previews then give the live gate's fail-closed refusal and say why."""
    state = state_for_preview(loaded.config.state_dir) if store is None else store
    # No Supervisor object: a preview never asks it (it names the configured one), and its URL may be a secret
    # that only the deciding process reads. The sink is never written.
    gate = Gate(loaded, compile_policies(loaded), state, MemoryTraceSink(), clock, None)
    if stops:
        refresh_stops(gate)
    return gate


def refresh_stops(gate: Gate) -> None:
    """Obey the emergency stops recorded in the gate's state dir now (read only; none without a state.db)."""
    if not isinstance(gate.store, SqliteStore) or not gate.store.path.is_file():
        return
    board = SqliteBoard(gate.config.state_dir, read_only=True)
    try:
        with contextlib.suppress(StoreUnavailable):  # unreadable: the previews report the store's failure
            gate.stops.replace(board.active_stops())
    finally:
        board.close()


def state_label(gate: Gate) -> str:
    """Which state a dry-run gate reads, for the operator: the state.db, or none yet."""
    if isinstance(gate.store, EmptyStore):
        return f"no state yet at {gate.config.state_dir} (empty state)"
    if isinstance(gate.store, SqliteStore):
        return f"{gate.store.path} (read only)"
    return "the given store"


def close_dry_run(gate: Gate) -> None:
    """Release what a dry-run gate holds (its read-only connection); nothing is flushed: nothing was written."""
    gate.store.close()


def case_judge(loaded: LoadedConfig) -> Callable[[ToolCall], tuple[Decision, str]]:
    """`agent-mesh test`'s judge (policy.core.casefile.Judge): the gate's preview on an empty state, so a case
    is about the policy (the guard and limits included), never about today's grants or memory. Raises
    ConfigError when the config does not compile."""
    gate = open_dry_run(loaded, store=EmptyStore(), stops=False)

    def judge(call: ToolCall) -> tuple[Decision, str]:
        preview = gate.preview(call)
        return preview.decision, preview.kind.value

    return judge


def replay_judge(loaded: LoadedConfig) -> Callable[[ToolCall, float], Decision]:
    """`agent-mesh replay`'s judge (policy.trace.replay.ReplayJudge): the decision of the gate's preview at the
    recorded time, on an empty state (a decision depends on no grant or memory; the guard is replayed too)."""
    gate = open_dry_run(loaded, store=EmptyStore(), stops=False)
    return lambda call, ts: gate.preview(call, ts).decision
