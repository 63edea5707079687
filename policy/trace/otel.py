"""OpenTelemetry: one `execute_tool <tool>` span per call through the OTel API; SDK wiring for entry points.

`record_span` costs next to nothing until an entry point calls `configure_otel` (or installs any SDK).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, Tracer, TracerProvider

_TRACER = trace.get_tracer("agent_mesh.policy")

# Record fields copied to `agent_mesh.<field>` span attributes when set.
_MESH_FIELDS = (
    "agent", "surface", "server", "session_id", "decision", "rule", "verdict", "decided_by", "approval_id",
    "call_hash", "trace_id", "outcome", "status", "policy_hash",
)  # fmt: skip


def record_span(record: Mapping[str, Any], tracer: Tracer | None = None) -> None:
    """Emit the span of one traced call, ending at `ts` (when it was recorded) and lasting `latency_ms`."""
    if tracer is None and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # no SDK installed (yet): the span would be dropped unseen
    end = int(float(record["ts"]) * 1e9)
    latency = record.get("latency_ms")
    start = end - int(float(latency) * 1e6) if isinstance(latency, int | float) and latency > 0 else end
    span = (tracer or _TRACER).start_span(f"execute_tool {record['tool']}", start_time=start)
    if not span.is_recording():
        return
    attributes: dict[str, str | int | float] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": str(record["tool"]),
    }
    for name in _MESH_FIELDS:
        value = record.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            attributes[f"agent_mesh.{name}"] = value
    span.set_attributes(attributes)
    if record.get("outcome") in ("error", "upstream_error"):
        span.set_attribute("error.type", str(record["outcome"]))
        span.set_status(Status(StatusCode.ERROR, str(record.get("error") or record["outcome"])))
    span.end(end_time=end)


def otlp_traces_url(endpoint: str) -> str:
    """`http://collector:4318` -> `http://collector:4318/v1/traces`; a URL with a path is kept as is."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{endpoint!r} is not an OTLP/HTTP endpoint (write http://host:4318)")
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def configure_otel(endpoint: str, *, service_name: str = "agent-mesh") -> TracerProvider:
    """Install the OTel SDK with a batching OTLP/HTTP exporter as the global tracer provider.

    Entry points call this once when `traces.otlp_endpoint` is set; the SDK flushes at exit on its own.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = SdkTracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_traces_url(endpoint))))
    trace.set_tracer_provider(provider)
    return provider
