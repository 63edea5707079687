"""The trace: one hash-chained record per tool call, written off the hot path to JSONL and SQLite, with an
allowed call's decision record made durable before it is forwarded (the write-ahead log, policy.trace.ahead)."""

from policy.trace.ahead import TraceUnavailable, recover
from policy.trace.append import ChainAppender, trace_files
from policy.trace.otel import configure_otel, otlp_traces_url, record_span
from policy.trace.record import GENESIS, build_record, expected_hash, parse_line, seal
from policy.trace.sink import MemoryTraceSink, SinkStats, TraceSink, record_call
from policy.trace.verify import VerifyReport, verify_state
from policy.trace.writer import TraceWriter, exit_on_sigterm

__all__ = [
    "GENESIS",
    "ChainAppender",
    "MemoryTraceSink",
    "SinkStats",
    "TraceSink",
    "TraceUnavailable",
    "TraceWriter",
    "VerifyReport",
    "build_record",
    "configure_otel",
    "exit_on_sigterm",
    "expected_hash",
    "otlp_traces_url",
    "parse_line",
    "record_call",
    "record_span",
    "recover",
    "seal",
    "trace_files",
    "verify_state",
]
