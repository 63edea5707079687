"""/metrics through prometheus_client: the exposition parses back to the same families, names and labels stay
stable, hostile label values survive the round trip, events never count, and the series cap holds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from policy.control.metrics import MAX_SERIES, Metrics


def parsed(m: Metrics) -> dict[str, Any]:
    """The exposition read back by prometheus_client's own parser: {family name: family}."""
    return {f.name: f for f in text_string_to_metric_families(m.render())}


def calls(m: Metrics) -> dict[tuple[str, str, str], float]:
    family = parsed(m)["agent_mesh_calls"]
    assert family.type == "counter"
    return {(s.labels["agent"], s.labels["tool"], s.labels["verdict"]): s.value for s in family.samples}


def test_the_exposition_has_the_stable_names_and_types() -> None:
    m = Metrics()
    m.observe({"agent": "a", "tool": "t", "verdict": "allow", "decision_ms": 0.2, "latency_ms": 7})
    m.set_gauges(pending_approvals=2, active_grants=1, trace_queue_depth=0, trace_records_dropped_total=3)
    families = parsed(m)
    assert {name: f.type for name, f in families.items()} == {
        "agent_mesh_calls": "counter",
        "agent_mesh_decision_latency_seconds": "histogram",
        "agent_mesh_upstream_latency_seconds": "histogram",
        "agent_mesh_pending_approvals": "gauge",
        "agent_mesh_active_grants": "gauge",
        "agent_mesh_trace_queue_depth": "gauge",
        "agent_mesh_trace_records_dropped": "counter",
    }
    text = m.render()
    assert 'agent_mesh_calls_total{agent="a",tool="t",verdict="allow"} 1.0' in text
    assert "agent_mesh_trace_records_dropped_total 3.0" in text
    assert "agent_mesh_pending_approvals 2.0" in text


def test_a_gauge_the_metrics_do_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="no metric"):
        Metrics().set_gauges(pending=1)


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    m = Metrics()
    for ms in (0.05, 0.3, 2.0, 5000.0):
        m.observe({"agent": "a", "tool": "t", "verdict": "allow", "decision_ms": ms})
    samples = parsed(m)["agent_mesh_decision_latency_seconds"].samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert (buckets["0.0001"], buckets["0.0005"], buckets["1.0"], buckets["+Inf"]) == (1, 2, 3, 4)
    assert [s.value for s in samples if s.name.endswith("_count")] == [4]
    assert [s.value for s in samples if s.name.endswith("_sum")] == [pytest.approx(5.00235)]


def test_events_and_non_numeric_latencies_count_no_call_and_no_time() -> None:
    m = Metrics()
    m.observe({"kind": "event", "event": "tool_changed", "agent": "a", "tool": "t"})
    m.observe({"agent": "a", "tool": "t", "verdict": "deny", "decision_ms": True, "latency_ms": "9"})
    assert calls(m) == {("a", "t", "deny"): 1}
    assert "agent_mesh_decision_latency_seconds_count 0.0" in m.render()


def test_tools_past_the_series_cap_are_counted_as_other() -> None:
    m = Metrics()
    m.seed(("a", f"http.GET /items/{i}", "allow", 1) for i in range(MAX_SERIES))
    m.observe({"agent": "a", "tool": "http.GET /items/new", "verdict": "allow"})
    m.observe({"agent": "a", "tool": "http.GET /items/0", "verdict": "allow"})
    counted = calls(m)
    assert counted[("a", "_other", "allow")] == 1
    assert counted[("a", "http.GET /items/0", "allow")] == 2
    assert len(counted) == MAX_SERIES + 1


def test_two_metrics_in_one_process_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe({"agent": "a", "tool": "t", "verdict": "allow"})
    assert calls(first) == {("a", "t", "allow"): 1}
    assert calls(second) == {}


label_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(label_text, label_text, st.sampled_from(["allow", "deny", "pending"])), max_size=8))
def test_whatever_an_agent_names_itself_or_its_tool_the_exposition_parses_back_to_the_same_counts(
    names: list[tuple[str, str, str]],
) -> None:
    m = Metrics()
    expected: dict[tuple[str, str, str], int] = {}
    for agent, tool, verdict in names:
        m.observe({"agent": agent, "tool": tool, "verdict": verdict})
        expected[(agent, tool, verdict)] = expected.get((agent, tool, verdict), 0) + 1
    assert calls(m) == expected
