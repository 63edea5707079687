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
    "Outcome",
    "PolicySet",
    "SqliteStore",
    "Store",
    "StoreConflict",
    "StoreUnavailable",
    "Surface",
    "ToolCall",
    "Verdict",
    "VerdictKind",
    "call_hash",
    "canonical_json",
    "compile_policies",
    "decide",
    "find_config",
    "load_config",
    "load_config_text",
    "parse_duration",
    "refusal_payload",
    "refusal_text",
]
