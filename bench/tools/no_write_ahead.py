"""For bench/proxy.py only: mitmdump with the agent-mesh addon as it was before write-ahead.

Loaded with `-s` next to addons/mesh_addon.py, it makes `TraceWriter.ahead` do nothing in that mitmdump
process, so the bench can measure what the write-ahead step costs the proxy against the same addon without it,
in the same run. Never load it in a deployment: allowed calls would then run before their record is durable.
"""

from __future__ import annotations

from collections.abc import Iterable

from policy.core.model import ToolCall, Verdict
from policy.trace.writer import TraceWriter


def _no_write_ahead(
    self: TraceWriter, call: ToolCall, verdict: Verdict, *, policy_hash: str, redact_keys: Iterable[str], ts: float
) -> None:
    return None


TraceWriter.ahead = _no_write_ahead  # type: ignore[method-assign]
