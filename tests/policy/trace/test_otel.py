"""One `execute_tool <tool>` span per call through the OTel API, exported over OTLP/HTTP when configured."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from policy import Outcome
from policy.trace import build_record, otlp_traces_url, record_span
from tests.policy.trace.factories import call, verdict

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    yield exp, provider
    provider.shutdown()


def one_span(exp: InMemorySpanExporter) -> ReadableSpan:
    spans = exp.get_finished_spans()
    assert len(spans) == 1
    return spans[0]


def test_a_call_becomes_an_execute_tool_span_with_genai_and_mesh_attributes(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exp, provider = exporter
    rec = build_record(
        call(), verdict(), Outcome(True, latency_ms=2.5), policy_hash="ph", redact_keys=[], ts=1_700_000_000.0
    )
    record_span(rec, provider.get_tracer("test"))
    span = one_span(exp)
    assert span.name == "execute_tool fs.write_file"
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "fs.write_file"
    for name in ("agent", "verdict", "decided_by", "rule", "call_hash", "trace_id"):
        assert attrs[f"agent_mesh.{name}"] == rec[name]
    assert "agent_mesh.approval_id" not in attrs  # unset fields are left out, not sent as null
    assert span.end_time == 1_700_000_000 * 10**9
    assert span.start_time == span.end_time - 2_500_000
    assert span.status.status_code is StatusCode.UNSET


def test_a_failed_call_marks_its_span_as_an_error(exporter: tuple[InMemorySpanExporter, TracerProvider]) -> None:
    exp, provider = exporter
    rec = build_record(call(), verdict(), Outcome(True, status=502), policy_hash="p", redact_keys=[], ts=5.0)
    record_span(rec, provider.get_tracer("test"))
    span = one_span(exp)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "upstream_error"


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://otel.example/custom/path", "https://otel.example/custom/path"),
    ],
)
def test_an_otlp_endpoint_gets_the_traces_path_when_it_has_none(endpoint: str, url: str) -> None:
    assert otlp_traces_url(endpoint) == url


@pytest.mark.parametrize("endpoint", ["collector:4318", "grpc://c:4317", ""])
def test_a_non_http_endpoint_is_refused_with_a_hint(endpoint: str) -> None:
    with pytest.raises(ValueError, match="not an OTLP/HTTP endpoint"):
        otlp_traces_url(endpoint)


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_configure_otel_exports_spans_to_an_otlp_http_collector() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        proc = subprocess.run(
            [sys.executable, "-m", "tests.policy.trace.otel_worker", f"http://127.0.0.1:{port}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        server.shutdown()
        server.server_close()
    [(path, body)] = _Collector.bodies
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    resource = request.resource_spans[0]
    assert {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"] == "agent-mesh"
    span = resource.scope_spans[0].spans[0]
    assert span.name == "execute_tool fs.write_file"
    assert {a.key: a.value.string_value for a in span.attributes}["agent_mesh.agent"] == "claude"
