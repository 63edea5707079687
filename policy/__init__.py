"""agent-mesh's governance core: config, decision engine, gate, stores and trace.

Adapters import from here, never from inner modules. Names load on first use (PEP 562), so a process
that only checks a config does not pay for the store, the trace writer or asyncio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policy.core.config import Config, LoadedConfig, load_config_text, parse_duration
    from policy.core.engine import PolicySet, compile_policies, decide
    from policy.core.errors import ConfigError, StoreUnavailable
    from policy.core.model import (
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
    from policy.core.refusal import refusal_payload, refusal_text
    from policy.gate.gate import Gate
    from policy.gate.listing import filter_list, policy_hides
    from policy.gate.operator import Operator
    from policy.mesh.load import find_config, load_config
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
    from policy.wire.kinds import Direction, RequestKind, RequestRole, classify_request, input_requests

_MODULES: dict[str, str] = {
    "Action": "policy.core.model",
    "Approval": "policy.store",
    "ApprovalState": "policy.store",
    "Config": "policy.core.config",
    "ConfigError": "policy.core.errors",
    "Decision": "policy.core.model",
    "Direction": "policy.wire.kinds",
    "Fact": "policy.store",
    "Gate": "policy.gate.gate",
    "Grant": "policy.store",
    "HttpInfo": "policy.core.model",
    "LoadedConfig": "policy.core.config",
    "MemoryStore": "policy.store",
    "MemoryTraceSink": "policy.trace",
    "Operator": "policy.gate.operator",
    "Outcome": "policy.core.model",
    "PolicySet": "policy.core.engine",
    "RequestKind": "policy.wire.kinds",
    "RequestRole": "policy.wire.kinds",
    "SinkStats": "policy.trace",
    "SqliteStore": "policy.store",
    "Store": "policy.store",
    "StoreConflict": "policy.store",
    "StoreUnavailable": "policy.core.errors",
    "Surface": "policy.core.model",
    "ToolCall": "policy.core.model",
    "TraceSink": "policy.trace",
    "TraceWriter": "policy.trace",
    "Verdict": "policy.core.model",
    "VerdictKind": "policy.core.model",
    "build_record": "policy.trace",
    "call_hash": "policy.core.model",
    "canonical_json": "policy.core.model",
    "classify_request": "policy.wire.kinds",
    "compile_policies": "policy.core.engine",
    "configure_otel": "policy.trace",
    "decide": "policy.core.engine",
    "exit_on_sigterm": "policy.trace",
    "filter_list": "policy.gate.listing",
    "find_config": "policy.mesh.load",
    "input_requests": "policy.wire.kinds",
    "load_config": "policy.mesh.load",
    "load_config_text": "policy.core.config",
    "parse_duration": "policy.core.config",
    "policy_hides": "policy.gate.listing",
    "record_call": "policy.trace",
    "refusal_payload": "policy.core.refusal",
    "refusal_text": "policy.core.refusal",
    "verify_state": "policy.trace",
}

__all__ = [
    "Action",
    "Approval",
    "ApprovalState",
    "Config",
    "ConfigError",
    "Decision",
    "Direction",
    "Fact",
    "Gate",
    "Grant",
    "HttpInfo",
    "LoadedConfig",
    "MemoryStore",
    "MemoryTraceSink",
    "Operator",
    "Outcome",
    "PolicySet",
    "RequestKind",
    "RequestRole",
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
    "classify_request",
    "compile_policies",
    "configure_otel",
    "decide",
    "exit_on_sigterm",
    "filter_list",
    "find_config",
    "input_requests",
    "load_config",
    "load_config_text",
    "parse_duration",
    "policy_hides",
    "record_call",
    "refusal_payload",
    "refusal_text",
    "verify_state",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'policy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
