"""Prometheus metrics of the mesh, computed from the shared trace table (so every process's calls count) and
exposed through `prometheus_client`: `Metrics` is a custom collector on a private `CollectorRegistry`, and
`render` is the library's `generate_latest` (text format 0.0.4).

The counts are not kept in `prometheus_client` metric objects: the watcher seeds them from the table's totals
and adds each new record it reads (`seed` / `observe`), so a call recorded by mcpwrap or another proxy
counts as much as one this process made. Only calls count: event records (a tool changed, a reload, a stop)
are no calls.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from policy.trace.record import is_call

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Decisions take microseconds to milliseconds; upstream calls milliseconds to minutes.
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Plain-HTTP tools carry their path (`GET /items/123`): past this many series, new tools count as "_other".
MAX_SERIES = 5000
OTHER = "_other"
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PREFIX = "agent_mesh_"


@dataclass(slots=True)
class Histogram:
    """Observations in seconds, counted per bucket (not cumulative: the family is built cumulative)."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, seconds: float) -> None:
        i = bisect.bisect_left(self.buckets, seconds)
        if i < len(self.counts):
            self.counts[i] += 1
        self.total += seconds
        self.count += 1

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            running += n
            cumulative.append((repr(bound), running))  # 0.0001, 1.0: what Go prints
        cumulative.append(("+Inf", self.count))
        return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=self.total)


# name (without the prefix) -> (type, help) of the values the control plane sets (`set_gauges`).
_GAUGES: dict[str, tuple[str, str]] = {
    "pending_approvals": ("gauge", "Approvals waiting for a human or supervisor."),
    "active_grants": ("gauge", "Grants currently in force."),
    "trace_queue_depth": ("gauge", "Trace records of this process waiting for the background writer."),
    "trace_records_dropped_total": ("counter", "Trace records this process could not write (see its stderr)."),
    "trace_cursor": ("gauge", "The last trace table row (seq) counted by these metrics."),
}


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Metrics(Collector):
    """Counters fed with trace records (`observe`) and gauges set by the control plane (`set_gauges`); a
    `prometheus_client` collector of its own private registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str, str], int] = {}
        self._decision = Histogram(DECISION_BUCKETS)
        self._upstream = Histogram(CALL_BUCKETS)
        self._gauges: dict[str, float] = {}
        # Private: the process-wide default registry would add Python/process metrics of whichever process
        # serves, and a second plane in one process (tests, embedders) would clash on registration.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def _count(self, key: tuple[str, str, str], n: int) -> None:
        if key not in self._calls and len(self._calls) >= MAX_SERIES:
            key = (key[0], OTHER, key[2])
        self._calls[key] = self._calls.get(key, 0) + n

    def seed(self, totals: Iterable[tuple[str, str, str, int]]) -> None:
        """Start the call counters from the history already in the trace table."""
        with self._lock:
            for agent, tool, verdict, n in totals:
                self._count((agent, tool, verdict), n)

    def observe(self, record: Mapping[str, Any]) -> None:
        if not is_call(record):
            return  # a pin change, a reload, a stop: nothing was called, nothing to count
        key = (str(record.get("agent")), str(record.get("tool")), str(record.get("verdict")))
        decision_ms = record.get("decision_ms")
        latency_ms = record.get("latency_ms")
        with self._lock:
            self._count(key, 1)
            if _is_number(decision_ms):
                self._decision.observe(decision_ms / 1000.0)
            if _is_number(latency_ms):
                self._upstream.observe(latency_ms / 1000.0)

    def set_gauges(self, **values: float) -> None:
        unknown = set(values) - set(_GAUGES)
        if unknown:
            raise ValueError(f"no metric {sorted(unknown)}: known are {sorted(_GAUGES)}")
        with self._lock:
            self._gauges.update(values)

    def collect(self) -> Iterator[Metric]:
        """The families as they are now (called by the registry for each exposition)."""
        with self._lock:
            calls = CounterMetricFamily(
                f"{PREFIX}calls",
                "Tool calls by agent, tool and verdict (all processes on the state dir).",
                labels=("agent", "tool", "verdict"),
            )
            for (agent, tool, verdict), n in sorted(self._calls.items()):
                calls.add_metric((agent, tool, verdict), n)
            families: list[Metric] = [
                calls,
                self._decision.family(f"{PREFIX}decision_latency_seconds", "Time the gate took to decide a call."),
                self._upstream.family(
                    f"{PREFIX}upstream_latency_seconds", "Time the upstream took to answer a forwarded call."
                ),
            ]
            for name, (kind, text) in _GAUGES.items():
                if name in self._gauges:
                    family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                    families.append(family(f"{PREFIX}{name}", text, value=self._gauges[name]))
        yield from families

    def render(self) -> str:
        """The text exposition (format 0.0.4) of every family."""
        return generate_latest(self.registry).decode("utf-8")
