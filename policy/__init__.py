"""agent-mesh's governance core: config, decision engine, gate, stores and trace.

Adapters import from here, never from inner modules.
"""

from policy.config import Config, LoadedConfig, find_config, load_config, load_config_text, parse_duration
from policy.engine import PolicySet, compile_policies, decide
from policy.errors import ConfigError, StoreUnavailable
from policy.gate import Gate
from policy.governor import Governor
from policy.model import (
    Action,
    Decision,
    HttpInfo,
    Outcome,
    Surface,
    ToolCall,
    Verdict,
    VerdictKind,
    call_hash,
    canonical_json,
)
from policy.refusal import refusal_payload, refusal_text
from policy.store import Approval, ApprovalState, Fact, Grant, MemoryStore, SqliteStore, Store, StoreConflict
from policy.trace import (
    MemoryTraceSink,
    SinkStats,
    TraceSink,
    TraceWriter,
    build_record,
    configure_otel,
    exit_on_sigterm,
    record_call,
    verify_state,
)

__all__ = [
    "Action",
    "Approval",
    "ApprovalState",
    "Config",
    "ConfigError",
    "Decision",
    "Fact",
    "Gate",
    "Governor",
    "Grant",
    "HttpInfo",
    "LoadedConfig",
    "MemoryStore",
    "MemoryTraceSink",
    "Outcome",
    "PolicySet",
    "SinkStats",
    "SqliteStore",
    "Store",
    "StoreConflict",
    "StoreUnavailable",
    "Surface",
    "ToolCall",
    "TraceSink",
    "TraceWriter",
    "Verdict",
    "VerdictKind",
    "build_record",
    "call_hash",
    "canonical_json",
    "compile_policies",
    "configure_otel",
    "decide",
    "exit_on_sigterm",
    "find_config",
    "load_config",
    "load_config_text",
    "parse_duration",
    "record_call",
    "refusal_payload",
    "refusal_text",
    "verify_state",
]
