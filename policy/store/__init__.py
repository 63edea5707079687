"""Durable governance state behind one small port: `Store`, with `SqliteStore` and its `MemoryStore` twin."""

from policy.store.base import (
    Admission,
    Approval,
    ApprovalState,
    Fact,
    Grant,
    Limits,
    Store,
    StoreConflict,
    StoreUnavailable,
    new_id,
)
from policy.store.memory import MemoryStore
from policy.store.sqlite import DB_NAME, SqliteStore, connect

__all__ = [
    "DB_NAME",
    "Admission",
    "Approval",
    "ApprovalState",
    "Fact",
    "Grant",
    "Limits",
    "MemoryStore",
    "SqliteStore",
    "Store",
    "StoreConflict",
    "StoreUnavailable",
    "connect",
    "new_id",
]
