"""Where trace records go: the `TraceSink` port and its in-memory twin.

`emit` is called on the adapter's hot path: it never blocks and never touches the disk.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from policy.model import Outcome, ToolCall, Verdict
from policy.trace.otel import record_span
from policy.trace.record import GENESIS, build_record, parse_line, seal


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters for /metrics: records accepted, written, waiting, dropped, and write errors."""

    emitted: int = 0
    written: int = 0
    queued: int = 0
    dropped: int = 0
    errors: int = 0


@runtime_checkable
class TraceSink(Protocol):
    """Takes sealed-on-write trace records: `emit` is non-blocking, `flush`/`close` make them durable."""

    def emit(self, record: Mapping[str, Any]) -> None: ...

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

    def emit(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            digest, line = seal(record, self._tip)
            self._tip = digest
            self.lines.append(line)
            self.records.append(parse_line(line))

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
    """What `Gate.finish` does: build the call's record, hand it to the sink, emit its span; returns it."""
    record = build_record(call, verdict, outcome, policy_hash=policy_hash, redact_keys=redact_keys, ts=ts)
    sink.emit(record)
    record_span(record)
    return record
