"""Prometheus text rendering and the series cap."""

from __future__ import annotations

from policy.control.metrics import MAX_SERIES, Metrics, escape_label


def test_labels_are_escaped_for_the_text_format() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    m = Metrics()
    m.observe({"agent": 'x"y', "tool": "t", "verdict": "allow"})
    assert 'agent_mesh_calls_total{agent="x\\"y",tool="t",verdict="allow"} 1' in m.render()


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    m = Metrics()
    for ms in (0.05, 0.3, 2.0, 5000.0):
        m.observe({"agent": "a", "tool": "t", "verdict": "allow", "decision_ms": ms})
    text = m.render()
    assert 'agent_mesh_decision_latency_seconds_bucket{le="0.0001"} 1' in text
    assert 'agent_mesh_decision_latency_seconds_bucket{le="0.0005"} 2' in text
    assert 'agent_mesh_decision_latency_seconds_bucket{le="1.0"} 3' in text
    assert 'agent_mesh_decision_latency_seconds_bucket{le="+Inf"} 4' in text
    assert "agent_mesh_decision_latency_seconds_count 4" in text


def test_tools_past_the_series_cap_are_counted_as_other() -> None:
    m = Metrics()
    m.seed(("a", f"http.GET /items/{i}", "allow", 1) for i in range(MAX_SERIES))
    m.observe({"agent": "a", "tool": "http.GET /items/new", "verdict": "allow"})
    m.observe({"agent": "a", "tool": "http.GET /items/0", "verdict": "allow"})
    text = m.render()
    assert 'agent_mesh_calls_total{agent="a",tool="_other",verdict="allow"} 1' in text
    assert 'agent_mesh_calls_total{agent="a",tool="http.GET /items/0",verdict="allow"} 2' in text
