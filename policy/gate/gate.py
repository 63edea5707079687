"""The Gate: the one decision ladder (ARCHITECTURE §4) every adapter calls — check, hold, finish.

Store work runs inline on the event loop: it is a few indexed statements on a WAL database (tens of µs),
and a thread hop per call would cost more than the work itself. Admission never waits inside the loop: while
another writer (a trace batch, another process) holds the store, the call awaits and retries.

Write-ahead: before `check` (or `hold`) returns a verdict that lets a call through, the call's decision
record is durable (`TraceSink.ahead`, one O_APPEND write); when it cannot be, the call is refused
(`decided_by: error`) unless `traces.on_failure: allow`. `finish` then hands over the full record.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from policy.core.config import Config, LoadedConfig
from policy.core.engine import PolicySet, compile_policies, decide
from policy.core.errors import StoreUnavailable
from policy.core.guard_mesh import mesh_guard
from policy.core.model import Action, Decision, Outcome, ToolCall, Verdict, VerdictKind
from policy.gate.continuation import Continuations, continued, unbound
from policy.gate.ladder import Ladder
from policy.gate.ladder import by_policy as _by_policy
from policy.gate.ladder import failed as _failed
from policy.gate.ladder import store_failed as _store_failed
from policy.gate.operator import Operator
from policy.gate.pins import Listing, PinRung, import_pin_file, observe_tools
from policy.gate.preview import EmptyStore, Preview, preview_ladder, stopped_preview
from policy.gate.ratelimit import limits_for, refusal
from policy.gate.stop import Stops, stopped_verdict
from policy.gate.supervisor import Supervisor
from policy.store.base import Admission, Limits, Store
from policy.store.board import SqliteBoard, Stop
from policy.store.sqlite import SqliteStore
from policy.store.statedir import require_private
from policy.store.wakeup import ApprovalWakeup
from policy.trace import TraceSink, TraceWriter
from policy.trace.sink import LateOutcome

log = logging.getLogger("agent_mesh.gate")

ADMIT_WAIT_SECONDS = 5.0  # as long as a store waits for its write lock before it gives up
_ADMIT_FIRST_PAUSE = 0.0002
_ADMIT_MAX_PAUSE = 0.005
_CACHE_LIMIT = 8192
_HELD_LIMIT = 10_000  # calls waiting in `hold` whose decision record is written if a human approves them


def new_trace_id() -> str:
    """128 bits in hex, unique across processes and usable as an OpenTelemetry trace id: the time in ms, then
    80 random bits (like a UUIDv7). Time-ordered ids land next to each other in the traces table's trace_id
    index instead of dirtying a random page each; `random` is seeded from os.urandom and reseeded in forked
    children (as the OpenTelemetry SDK's own ids), and skips a getrandom syscall per call."""
    return f"{time.time_ns() // 1_000_000:012x}{random.getrandbits(80):020x}"


class Gate:
    """Judges calls for adapters. Resolving approvals is not here: that is the Operator's (CLI, control)."""

    def __init__(
        self,
        loaded: LoadedConfig,
        policy_set: PolicySet,
        store: Store,
        sink: TraceSink,
        clock: Callable[[], float],
        supervisor: Supervisor | None,
    ) -> None:
        self.loaded = loaded
        self.config: Config = loaded.config
        self.policy_set = policy_set
        self.store = store
        self.sink = sink
        self._clock = clock
        self._ladder = Ladder(self.config, store, clock, supervisor)
        self._limits: dict[tuple[str | None, str], Limits] = {}
        self._decisions: dict[tuple[str, str], Decision] = {}
        self._guard = mesh_guard(loaded)  # the state dir, and the files that choose the policy
        self._wakeup = ApprovalWakeup(store, clock)
        self._held: dict[str, ToolCall] = {}  # trace id -> call, for verdicts check returned PENDING
        self._continuations = Continuations(clock)  # calls answered `input_required`, waiting for their retry
        self.pins = PinRung(store, clock)  # the pin rung: tools/list observed, calls to unpinned tools judged
        # The emergency stops this process obeys (kept current by policy.mesh.reload); a change wakes held calls.
        self.stops = Stops()
        self.stops.on_change(self._wakeup.wake_all)
        self._swaps: list[tuple[str, str]] = []  # (first trace id judged after a swap, the hash before it)

    @classmethod
    def open(
        cls,
        loaded: LoadedConfig,
        *,
        store: Store | None = None,
        sink: TraceSink | None = None,
        clock: Callable[[], float] = time.time,
        supervisor: Supervisor | None = None,
        trace_process: bool = False,
    ) -> Gate:
        """A gate on the config's state dir (SQLite store, batched trace writer) unless others are given.

        `trace_process`: the trace writer builds and writes records in a worker process (policy.trace.worker),
        for a busy adapter whose event loop should not share the GIL with that work (the proxy)."""
        config = loaded.config
        state_dir = Path(config.state_dir)
        if store is None or sink is None:
            require_private(state_dir)  # StateDirExposed: never start on a state dir other users can reach
        if supervisor is None and config.supervisor.url:
            supervisor = Supervisor(
                config.supervisor.url,
                timeout=config.supervisor.timeout_seconds,
                expose_content=config.supervisor.expose_content,
                redact_keys=config.traces.redact,
            )
        stops: list[Stop] = []
        if store is None:
            store = SqliteStore(state_dir)
            import_pin_file(store, state_dir, clock())  # pins an older agent-mesh kept in a JSON file, once
            # The emergency stops in force now: a one-shot process (`mcpwrap exec`, a shim) has no watcher to
            # read them later. A store that cannot be read refuses every call anyway.
            stops = _stops_in_force(state_dir)
        gate = cls(
            loaded,
            compile_policies(loaded),
            store,
            TraceWriter(state_dir, config.traces, process=trace_process) if sink is None else sink,
            clock,
            supervisor,
        )
        gate.stops.replace(stops)
        return gate

    async def check(self, call: ToolCall) -> Verdict:
        """The whole ladder: limits, policy, then approval / grant / memory / supervisor / pending.

        The verdict carries `decision_ms`, how long deciding took; the trace records it for /metrics. An allow
        is returned only once the call's decision record is durable (`_write_ahead`); else the call is refused.
        """
        started = time.perf_counter()
        trace_id = new_trace_id()
        if self.stops.active:  # the emergency stop: first, and only an attribute read while nothing is stopped
            stop = self.stops.stopping(call.agent)
            if stop is not None:
                return stopped_verdict(stop, trace_id).timed(_ms_since(started))
        now = self._clock()
        decision = self._guard(call) or self._decide(call, now)
        try:
            limits = self._limits_for(decision, call.agent)
            admission = self.store.try_admit(call.agent, call.call_hash, limits, now)
            if admission is None:
                admission = await self._admit_when_free(call, limits, now)
            if not admission.admitted:
                verdict = refusal(admission, limits, call.agent, decision, trace_id)
            elif (pinned := self._pinned(call, decision, trace_id, now)) is not None:
                verdict = pinned
            elif decision.action is Action.HUMAN_APPROVAL:
                verdict = await self._ladder.climb(call, decision, trace_id, now)
            else:
                kind = VerdictKind.ALLOW if decision.action is Action.ALLOW else VerdictKind.DENY
                by = _by_policy(decision)
                verdict = Verdict(kind, decision, by, decision.reason, trace_id, decision_ms=_ms_since(started))
                return self._write_ahead(call, verdict, now) if kind is VerdictKind.ALLOW else verdict
        except StoreUnavailable as exc:
            verdict = _store_failed(decision, trace_id, exc)
        except Exception as exc:  # a bug must never become an allow, nor crash the adapter
            log.exception("agent-mesh: the gate failed on %s", call.full_name)
            verdict = _failed(decision, trace_id, exc)
        verdict = verdict.timed(_ms_since(started))
        if verdict.kind is VerdictKind.ALLOW:
            return self._write_ahead(call, verdict, now)
        if verdict.kind is VerdictKind.PENDING:
            if len(self._held) >= _HELD_LIMIT:
                del self._held[next(iter(self._held))]  # the oldest: long given up by its adapter
            self._held[trace_id] = call
        return verdict

    def _write_ahead(self, call: ToolCall, verdict: Verdict, now: float) -> Verdict:
        """The allowing verdict once the call's decision record is durable; else a refusal (fail closed)."""
        try:
            self.sink.ahead(
                call, verdict, policy_hash=self._hash_for(verdict.trace_id), redact_keys=self.config.traces.redact,
                ts=now,
            )  # fmt: skip
        except Exception as exc:
            if self.config.traces.on_failure == "allow":
                log.error("agent-mesh: %s runs unrecorded (traces.on_failure: allow): %s", call.full_name, exc)
                return verdict
            reason = f"fail closed: the call's decision record could not be written, so it may not run: {exc}"
            return Verdict(
                VerdictKind.DENY, verdict.decision, "error", reason, verdict.trace_id, verdict.approval_id,
                decision_ms=verdict.decision_ms,
            )  # fmt: skip
        return verdict

    def commit(self, call: ToolCall, verdict: Verdict) -> Verdict:
        """For an allowing verdict an adapter made itself (mcpwrap's retry of a call the server answered
        `input_required`, already judged): its decision record is written ahead as `check` does, so it too is
        durable before the call is forwarded. Returns the verdict, or a refusal when it cannot be written."""
        if verdict.kind is not VerdictKind.ALLOW:
            return verdict
        stop = self.stops.stopping(call.agent)
        if stop is not None:
            return stopped_verdict(stop, verdict.trace_id, verdict.approval_id)
        return self._write_ahead(call, verdict, self._clock())

    def swap(self, loaded: LoadedConfig, policy_set: PolicySet | None = None) -> None:
        """Judge the next calls under `loaded` (hot reload, policy.mesh.reload); call on the gate's event loop.

        Calls already judged finish under the policy that judged them, and their records say so: a trace id
        made before the swap is recorded with the previous policy hash (ids begin with the time in ms). The
        state dir, store, trace writer and supervisor stay those the gate opened with (a restart changes them).
        """
        policy_set = compile_policies(loaded) if policy_set is None else policy_set
        self._guard = mesh_guard(loaded)  # the files that choose the policy may move while the policy does not
        if policy_set.policy_hash == self.policy_set.policy_hash:
            return
        # Trace ids begin with the time in ms: let this ms end, so every id made from now on sorts after the
        # first id of the next ms and every id made before sorts before it (a wait under 1 ms, once a reload).
        ms = time.time_ns() // 1_000_000
        while time.time_ns() // 1_000_000 <= ms:
            time.sleep(0.0002)
        self._swaps = [*self._swaps[-7:], (f"{ms + 1:012x}{0:020x}", self.policy_set.policy_hash)]
        self._ladder = Ladder(loaded.config, self.store, self._clock, self._ladder.supervisor)
        self._decisions = {}
        self._limits = {}
        self.loaded, self.config, self.policy_set = loaded, loaded.config, policy_set

    def _hash_for(self, trace_id: str) -> str:
        """The hash of the policy that judged the call with this trace id (see `swap`)."""
        if self._swaps and trace_id < self._swaps[-1][0]:
            judged_by = self._swaps[-1][1]
            for first, before in reversed(self._swaps):
                if trace_id >= first:
                    break
                judged_by = before
            return judged_by
        return self.policy_set.policy_hash

    def _approved(self, verdict: Verdict) -> Verdict:
        """A held call's verdict from `hold`: an approval is written ahead like any allow."""
        call = self._held.pop(verdict.trace_id, None)
        if call is not None:
            self.pins.approved(call, verdict)  # a changed tool a human let through: its form is the pin now
        if verdict.kind is not VerdictKind.ALLOW or call is None:
            # No call known here: the allow was written ahead when it was first decided (an adapter's own
            # approval on top of an allowed verdict, as mcpwrap's tool pins), or the call is not this gate's.
            return verdict
        return self._write_ahead(call, verdict, self._clock())

    async def _admit_when_free(self, call: ToolCall, limits: Limits, now: float) -> Admission:
        """The store is busy: wait on the event loop, serving other calls, instead of sleeping inside it."""
        deadline = time.monotonic() + ADMIT_WAIT_SECONDS
        pause = _ADMIT_FIRST_PAUSE
        while True:
            await asyncio.sleep(pause)
            admission = self.store.try_admit(call.agent, call.call_hash, limits, now)
            if admission is not None:
                return admission
            if time.monotonic() >= deadline:
                raise StoreUnavailable(f"the state store stayed locked by another writer for {ADMIT_WAIT_SECONDS:g} s")
            pause = min(pause * 2, _ADMIT_MAX_PAUSE)

    def _decide(self, call: ToolCall, now: float) -> Decision:
        """`decide`, remembered per agent and tool when the first rule it reaches has no condition: then the
        arguments cannot change the answer (the guard, which reads them, has run already)."""
        key = (call.agent, call.full_name)
        hit = self._decisions.get(key)
        if hit is not None:
            return hit
        decision = decide(call, self.policy_set, now)
        # names an agent made megabytes long are decided each time, never kept (8192 of them would be gigabytes)
        if len(key[0]) + len(key[1]) <= 1024 and self._unconditional(call.agent, call.full_name):
            if len(self._decisions) >= _CACHE_LIMIT:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _unconditional(self, agent: str, full_name: str) -> bool:
        for policy in self.policy_set.for_agent(agent):
            for rule in policy.candidates(full_name):
                return rule.predicate is None  # `decide` stops at this rule when it has no condition
        return True  # no rule at all: the default deny

    def _limits_for(self, decision: Decision, agent: str) -> Limits:
        # Default denies belong to no policy: they count under the agent's most specific one.
        key = (decision.policy, "" if decision.policy is not None else agent)
        hit = self._limits.get(key)
        if hit is None:
            policy = self.policy_set.policy(decision.policy) if decision.policy is not None else None
            if policy is None:
                for_agent = self.policy_set.for_agent(agent)
                policy = for_agent[0] if for_agent else None
            if len(self._limits) >= _CACHE_LIMIT:
                self._limits.clear()
            hit = self._limits[key] = limits_for(policy)
        return hit

    async def hold(
        self,
        verdict: Verdict,
        *,
        seconds: float | None = None,
        on_tick: Callable[[float], Awaitable[None]] | None = None,
        tick_seconds: float = 5.0,
    ) -> Verdict:
        """Wait for a PENDING verdict's approval to be decided by any process; other verdicts pass through."""
        if verdict.kind is not VerdictKind.PENDING or verdict.approval_id is None:
            return verdict
        budget = self.config.approval.hold_seconds if seconds is None else seconds
        start = time.monotonic()
        next_tick = tick_seconds
        while True:
            epoch = self._wakeup.epoch
            stopped = self._stopped_while_held(verdict)
            if stopped is not None:
                return stopped.timed(verdict.decision_ms)
            decided = self._decided(verdict)
            if decided is not None:
                # The decision latency of a held call is its check's, not the human's time.
                return self._approved(decided.timed(verdict.decision_ms))
            elapsed = time.monotonic() - start
            if elapsed >= budget:
                return verdict
            if on_tick is not None and elapsed >= next_tick:
                await on_tick(elapsed)
                next_tick += tick_seconds
            wait = budget - elapsed
            if on_tick is not None:
                wait = min(wait, max(0.0, next_tick - elapsed))
            # One waiter thread reads the store for every held call and wakes this one when it is decided:
            # thousands of held calls cost the event loop nothing while they wait.
            await self._wakeup.wait(verdict.approval_id, wait, epoch)

    def _stopped_while_held(self, verdict: Verdict) -> Verdict | None:
        """The stop refusal of a held call whose agent was stopped while it waited (the stop wakes it)."""
        if not self.stops.active:
            return None
        call = self._held.get(verdict.trace_id)
        if call is not None:
            agent = call.agent
        else:  # an adapter holding a verdict this gate no longer keeps the call of: ask the store whose it is
            try:
                approval = self.store.get_approval(verdict.approval_id or "")
            except Exception:
                approval = None
            agent = approval.agent if approval is not None else ""
        stop = self.stops.stopping(agent) if agent else self.stops.stopping_all()
        return None if stop is None else stopped_verdict(stop, verdict.trace_id, verdict.approval_id)

    def _decided(self, verdict: Verdict) -> Verdict | None:
        try:
            return self._ladder.settle(verdict)
        except StoreUnavailable as exc:
            return _store_failed(verdict.decision, verdict.trace_id, exc, verdict.approval_id)
        except Exception as exc:
            log.exception("agent-mesh: the gate failed while holding approval %s", verdict.approval_id)
            return _failed(verdict.decision, verdict.trace_id, exc, verdict.approval_id)

    def preview(self, call: ToolCall, now: float | None = None) -> Preview:
        """The verdict `check` would give `call` now on the same state, and the state behind it; changes
        nothing: no rate counted, no approval opened or used, no trace (policy/gate/preview.py)."""
        stop = self.stops.stopping(call.agent)  # the emergency stop, first as in `check`
        if stop is not None:
            return stopped_preview(stop)
        now = self._clock() if now is None else now
        decision = self._guard(call) or self._decide(call, now)
        limits = self._limits_for(decision, call.agent)
        empty = isinstance(self.store, EmptyStore)
        mcp = self.config.mcp
        return preview_ladder(call, decision, limits, self._ladder, now, pins=self.pins, mcp=mcp, empty_state=empty)

    def _pinned(self, call: ToolCall, decision: Decision, now_trace: str, now: float) -> Verdict | None:
        """The pin rung (after policy, before approvals): a call to a tool whose listed form is not its pin."""
        pin = self.pins.open_pin(call)
        if pin is None or decision.action is Action.DENY:
            return None
        config = self.config
        return self.pins.judge(
            config.mcp, call, decision, pin, now_trace, now,
            expire_after=config.approval.expire_after, redact_keys=config.traces.redact,
        )  # fmt: skip

    def observe_tools(
        self, server: str, agent: str, tools: list[Any], *, surface: str = "mcp_stdio", session_id: str | None = None
    ) -> Listing:
        """Every adapter's `tools/list` result goes through here: each tool's form is compared with its pin
        (changes recorded once, as event records), and the tools this agent may not see are left out
        (`mcp.hide_denied_tools`, a pin action `deny`). See policy/gate/pins.py."""
        return observe_tools(self, server, agent, tools, surface=surface, session_id=session_id)

    # -- continuations and refusals made before policy (policy/gate/continuation.py) -----------------

    def input_required(self, call: ToolCall, verdict: Verdict) -> None:
        """A call this gate let through was answered `input_required` (2026-07-28): its retry may continue it."""
        self._continuations.opened(call, verdict)

    def inputs_refused(self, call: ToolCall) -> None:
        """The server's input requests for `call` were refused: a retry of it is refused, never continued."""
        self._continuations.refused(call)

    async def check_continuation(self, call: ToolCall) -> Verdict:
        """The verdict for a retry carrying input (policy.wire.era.is_continuation), bound to its original:
        refused when it continues no open call; else the ladder as for any call, except that a
        `human_approval` the original passed is not asked again (decided_by `continues:<original trace>`)."""
        original = self._continuations.take(call)
        if original is None:
            return unbound(call, new_trace_id())
        decision = self._guard(call) or self._decide(call, self._clock())
        if decision.action is not Action.HUMAN_APPROVAL:
            return await self.check(call)
        return self.commit(call, continued(original, decision, new_trace_id()))

    def policy_refusal(self, call: ToolCall) -> Verdict | None:
        """For a call that cannot wait for the ladder (a server's request inside a response the proxy streams):
        the refusal when an emergency stop, the state-dir guard or the policy alone refuses it, else None (the
        whole ladder judges it later, when it can wait). Reads no store and records nothing: the adapter
        records a refusal it acts on with `finish`."""
        trace_id = new_trace_id()
        if self.stops.active:
            stop = self.stops.stopping(call.agent)
            if stop is not None:
                return stopped_verdict(stop, trace_id)
        decision = self._guard(call) or self._decide(call, self._clock())
        if decision.action is not Action.DENY:
            return None
        return Verdict(VerdictKind.DENY, decision, _by_policy(decision), decision.reason, trace_id)

    def operator(self) -> Operator:
        """The human side (approve, deny) on this gate's state and current config, for an operator surface in
        an adapter's process (mitmweb's Resume and Kill): adapters never reach the store themselves."""
        return Operator(self.config, self.store, clock=self._clock)

    def refuse(self, rule: str, reason: str) -> Verdict:
        """A refusal made before policy could judge a call (an unknown host, a routing header that disagrees
        with the body, a request that cannot be judged): a deny by `rule` with a trace id of the gate's own.
        The adapter records it with `finish`, as any refused call."""
        return Verdict(VerdictKind.DENY, Decision(Action.DENY, rule, reason), "default", reason, new_trace_id())

    def visible(self, call: ToolCall) -> bool:
        """False iff this agent's policy denies the tool whatever the arguments (for tools/list filtering)."""
        for policy in self.policy_set.for_agent(call.agent):
            for rule in policy.candidates(call.full_name):
                if rule.predicate is None:
                    return rule.action is not Action.DENY
                if rule.action is not Action.DENY:
                    return True  # a conditional rule that lets some arguments through
        return False

    def finish(self, call: ToolCall, verdict: Verdict, outcome: Outcome | LateOutcome) -> None:
        """Queue exactly one trace record for the call; never blocks, never raises into the adapter.

        `outcome` may be a function the sink calls later, off the hot path (see TraceSink.emit_call).
        """
        if self._held:
            self._held.pop(verdict.trace_id, None)
        try:
            self.sink.emit_call(
                call,
                verdict,
                outcome,
                policy_hash=self._hash_for(verdict.trace_id),
                redact_keys=self.config.traces.redact,
                ts=self._clock(),
            )
        except Exception:
            log.exception("agent-mesh: could not record trace %s", verdict.trace_id)

    async def aclose(self) -> None:
        """Flush the trace and close the store."""
        self._wakeup.close()
        await asyncio.to_thread(self.sink.close)
        self.store.close()


def _stops_in_force(state_dir: Path) -> list[Stop]:
    board = SqliteBoard(state_dir)
    try:
        return board.active_stops()
    except StoreUnavailable as exc:
        log.error("agent-mesh: cannot read emergency stops: %s", exc)
        return []
    finally:
        board.close()


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
