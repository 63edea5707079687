"""Where trace records go: the `TraceSink` port and its in-memory twin.

`emit` and `emit_call` are called on the adapter's hot path: they never block and never touch the disk.
`ahead` is called there too, before an allowed call is forwarded: it makes the decision record durable (one
O_APPEND write for TraceWriter) and raises when it cannot, so the Gate refuses the call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from policy.core.model import Outcome, ToolCall, Verdict
from policy.trace.otel import record_span
from policy.trace.record import GENESIS, build_record, parse_line, seal

log = logging.getLogger("agent_mesh.trace")


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters for /metrics: records accepted, written, waiting, dropped, and write errors."""

    emitted: int = 0
    written: int = 0
    queued: int = 0
    dropped: int = 0
    errors: int = 0


# An outcome worked out later, where the record is built (off the hot path for TraceWriter). It may run on
# another thread, so it must only read what it owns.
LateOutcome = Callable[[], Outcome]


def resolve(outcome: Outcome | LateOutcome) -> Outcome:
    """The outcome itself; a late one that fails still leaves a record, saying so."""
    if isinstance(outcome, Outcome):
        return outcome
    try:
        return outcome()
    except Exception as exc:
        return Outcome(True, error=f"the outcome could not be read: {type(exc).__name__}: {exc}")


@dataclass(slots=True)
class HandedCall:
    """A call handed to a sink by `emit_call`: recorded when the sink gets to it, on whatever thread."""

    call: ToolCall
    verdict: Verdict
    outcome: Outcome | LateOutcome
    policy_hash: str
    redact_keys: Iterable[str]
    ts: float

    def record(self) -> dict[str, Any]:
        """The call's record (a late outcome resolved now), its span emitted."""
        record = build_record(
            self.call,
            self.verdict,
            resolve(self.outcome),
            policy_hash=self.policy_hash,
            redact_keys=self.redact_keys,
            ts=self.ts,
        )
        try:
            record_span(record)
        except Exception:  # a span exporter choking on a value must not cost the call its record
            log.exception("agent-mesh: no span for trace %s", self.verdict.trace_id)
        return record


@runtime_checkable
class TraceSink(Protocol):
    """Takes sealed-on-write trace records: `emit` is non-blocking, `flush`/`close` make them durable."""

    def emit(self, record: Mapping[str, Any]) -> None: ...

    def ahead(
        self, call: ToolCall, verdict: Verdict, *, policy_hash: str, redact_keys: Iterable[str], ts: float
    ) -> None:
        """Make an allowed call's decision record durable before the adapter forwards it; raise when it cannot
        be (the Gate then refuses the call). Its full record still follows through `emit_call`."""
        ...

    def emit_call(
        self,
        call: ToolCall,
        verdict: Verdict,
        outcome: Outcome | LateOutcome,
        *,
        policy_hash: str,
        redact_keys: Iterable[str],
        ts: float,
    ) -> None:
        """What `record_call` does, but the sink may build the record and its span (and resolve a late
        outcome) later, off the caller's thread: `Gate.finish` uses this, so a hot path only hands over."""
        ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self, timeout: float | None = None) -> bool: ...

    def stats(self) -> SinkStats: ...


class MemoryTraceSink:
    """Keeps chained records in a list; the twin of TraceWriter for tests and recipes."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._tip = GENESIS
        self._lock = threading.Lock()
        # Decision records written ahead whose call has no full record yet (trace id -> record).
        self.ahead_records: dict[str, dict[str, Any]] = {}

    def ahead(
        self, call: ToolCall, verdict: Verdict, *, policy_hash: str, redact_keys: Iterable[str], ts: float
    ) -> None:
        record = build_record(call, verdict, Outcome(True), policy_hash=policy_hash, redact_keys=redact_keys, ts=ts)
        with self._lock:
            self.ahead_records[verdict.trace_id] = record

    def emit(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            digest, line = seal(record, self._tip)
            self._tip = digest
            self.lines.append(line)
            self.records.append(parse_line(line))
            self.ahead_records.pop(str(record.get("trace_id")), None)

    def emit_call(
        self,
        call: ToolCall,
        verdict: Verdict,
        outcome: Outcome | LateOutcome,
        *,
        policy_hash: str,
        redact_keys: Iterable[str],
        ts: float,
    ) -> None:
        self.emit(HandedCall(call, verdict, outcome, policy_hash, redact_keys, ts).record())

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> SinkStats:
        n = len(self.records)
        return SinkStats(emitted=n, written=n)


def record_call(
    sink: TraceSink,
    call: ToolCall,
    verdict: Verdict,
    outcome: Outcome,
    *,
    policy_hash: str,
    redact_keys: Iterable[str],
    ts: float,
) -> dict[str, Any]:
    """Build the call's record, emit its span, hand the record to the sink; returns it."""
    record = HandedCall(call, verdict, outcome, policy_hash, redact_keys, ts).record()
    sink.emit(record)
    return record
