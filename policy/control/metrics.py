"""Prometheus metrics of the mesh, computed from trace records (so every process's calls count) and
rendered in the Prometheus text exposition format (version 0.0.4).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policy.trace.record import is_call

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Decisions take microseconds to milliseconds; upstream calls milliseconds to minutes.
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Plain-HTTP tools carry their path (`GET /items/123`): past this many series, new tools count as "_other".
MAX_SERIES = 5000
OTHER = "_other"
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


@dataclass(slots=True)
class Histogram:
    """A cumulative-bucket histogram in seconds."""

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

    def render(self, name: str) -> list[str]:
        lines, running = [], 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            running += n
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {_number(self.total)}")
        lines.append(f"{name}_count {self.count}")
        return lines


class Metrics:
    """Counters fed with trace records (`observe`) and gauges set by the control plane (`set_gauges`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str, str], int] = {}
        self._decision = Histogram(DECISION_BUCKETS)
        self._upstream = Histogram(CALL_BUCKETS)
        self._gauges: dict[str, float] = {}

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
            return  # a pin change or a hidden list: nothing was called, nothing to count
        key = (str(record.get("agent")), str(record.get("tool")), str(record.get("verdict")))
        decision_ms = record.get("decision_ms")
        latency_ms = record.get("latency_ms")
        with self._lock:
            self._count(key, 1)
            if isinstance(decision_ms, int | float) and not isinstance(decision_ms, bool):
                self._decision.observe(decision_ms / 1000.0)
            if isinstance(latency_ms, int | float) and not isinstance(latency_ms, bool):
                self._upstream.observe(latency_ms / 1000.0)

    def set_gauges(self, **values: float) -> None:
        with self._lock:
            self._gauges.update(values)

    def render(self) -> str:
        with self._lock:
            out = [
                "# HELP agent_mesh_calls_total Tool calls by agent, tool and verdict (all processes on the state dir).",
                "# TYPE agent_mesh_calls_total counter",
            ]
            for (agent, tool, verdict), n in sorted(self._calls.items()):
                labels = _labels((("agent", agent), ("tool", tool), ("verdict", verdict)))
                out.append(f"agent_mesh_calls_total{labels} {n}")
            out += [
                "# HELP agent_mesh_decision_latency_seconds Time the gate took to decide a call.",
                "# TYPE agent_mesh_decision_latency_seconds histogram",
                *self._decision.render("agent_mesh_decision_latency_seconds"),
                "# HELP agent_mesh_upstream_latency_seconds Time the upstream took to answer a forwarded call.",
                "# TYPE agent_mesh_upstream_latency_seconds histogram",
                *self._upstream.render("agent_mesh_upstream_latency_seconds"),
            ]
            for name, (kind, text) in _GAUGES.items():
                if name in self._gauges:
                    out += [f"# HELP agent_mesh_{name} {text}", f"# TYPE agent_mesh_{name} {kind}"]
                    out.append(f"agent_mesh_{name} {_number(self._gauges[name])}")
        return "\n".join(out) + "\n"


_GAUGES: dict[str, tuple[str, str]] = {
    "pending_approvals": ("gauge", "Approvals waiting for a human or supervisor."),
    "active_grants": ("gauge", "Grants currently in force."),
    "trace_queue_depth": ("gauge", "Trace records of this process waiting for the background writer."),
    "trace_records_dropped_total": ("counter", "Trace records this process could not write (see its stderr)."),
    "trace_cursor": ("gauge", "The last trace table row (seq) counted by these metrics."),
}
