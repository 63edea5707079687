"""One trace record per tool call (ARCHITECTURE §8), event records, and the hash chain that seals them in order.

`build_record` is pure; `seal` adds `prev_hash` and `hash` = sha256(prev_hash + canonical JSON of the
record without `hash`) and returns the JSONL line; `expected_hash` recomputes it for `verify`.

Serialising one record never fails another: `prepare` turns what UTF-8 cannot carry (lone surrogates, as a
header of bytes \xff\xfe decodes to) into visible escapes in that record only, and a record that still cannot
be serialised is replaced by a placeholder that keeps its call's identity and says why.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policy.core.model import Outcome, ToolCall, Verdict, canonical_json
from policy.core.redact import redact, redact_text, redaction_keys

GENESIS = "0" * 64

# A record is a call (one per tool call; records written before this field existed are calls) or an event
# (a pin change, a filtered list: something the mesh noticed that nobody called). Events never count as calls.
CALL = "call"
EVENT = "event"


def is_call(record: Mapping[str, Any]) -> bool:
    """True for a call's record (and for records older than the `kind` field, which were all calls)."""
    return bool(record.get("kind", CALL) != EVENT)


# The columns of the `traces` table filled from a record, in table order (seq is the table's own).
COLUMNS = (
    "ts", "trace_id", "session_id", "agent", "surface", "server", "tool", "args", "call_hash", "decision",
    "rule", "verdict", "decided_by", "approval_id", "outcome", "status", "latency_ms", "policy_hash",
    "kind", "prev_hash", "hash",
)  # fmt: skip
_ARGS = COLUMNS.index("args")
_CELLS = tuple(c for c in COLUMNS[:-2] if c != "args")
_KIND: dict[str, type] = {"ts": float, "status": int, "latency_ms": float}  # the number columns; others are text


def build_record(
    call: ToolCall,
    verdict: Verdict,
    outcome: Outcome,
    *,
    policy_hash: str,
    redact_keys: Iterable[str],
    ts: float,
) -> dict[str, Any]:
    """The JSON-native record of one call, with secrets redacted from everything taken from the call."""
    keys = redaction_keys(redact_keys)
    record: dict[str, Any] = {
        "kind": CALL,
        "ts": ts,
        "trace_id": verdict.trace_id,
        "session_id": call.session_id,
        "agent": call.agent,
        "surface": call.surface,
        "server": call.server,
        "tool": call.full_name,
        "args": redact(call.arguments, keys),
        "call_hash": call.call_hash,
        "decision": verdict.decision.action.value,
        "rule": verdict.decision.rule,
        "reason": redact_text(verdict.reason, keys),  # a supervisor's reasoning may quote arguments
        "verdict": verdict.kind.value,
        "decided_by": verdict.decided_by,
        "approval_id": verdict.approval_id,
        "outcome": outcome.label,
        "status": outcome.status if outcome.status is not None else outcome.exit_code,
        "latency_ms": outcome.latency_ms,
        "policy_hash": policy_hash,
    }
    if call.http is not None:
        path = redact_text(call.http.path, keys)
        record["http"] = {"method": call.http.method, "host": call.http.host, "path": path}
    if call.annotations:
        # Kept so `replay` can re-evaluate `tool.annotations.*` conditions.
        record["annotations"] = redact(call.annotations, keys)
    if verdict.precedents:
        record["precedents"] = list(verdict.precedents)
    if verdict.decision_ms is not None:
        record["decision_ms"] = round(verdict.decision_ms, 3)
    if verdict.retry_after is not None:
        record["retry_after"] = verdict.retry_after
    if outcome.error is not None:
        record["error"] = redact_text(outcome.error, keys)
    return record


def event_label(record: Mapping[str, Any]) -> str:
    """How an event record reads in a table where a call shows its verdict: "tool changed", "tool first seen"."""
    return str(record.get("event") or "event").replace("_", " ")


def build_event(
    event: str,
    *,
    trace_id: str,
    agent: str,
    surface: str,
    server: str,
    tool: str,
    detail: Mapping[str, Any],
    rule: str,
    reason: str,
    session_id: str | None,
    policy_hash: str,
    ts: float,
) -> dict[str, Any]:
    """The record of something the mesh noticed that is not a call (`kind: event`), chained like calls.

    `tool` is the full name (`server.tool`); `detail` goes where a call has its arguments, so readers that
    look at `args` see what the event is about. No verdict and no outcome: nothing was decided or run."""
    return {
        "kind": EVENT,
        "event": event,
        "ts": ts,
        "trace_id": trace_id,
        "session_id": session_id,
        "agent": agent,
        "surface": surface,
        "server": server,
        "tool": tool,
        "args": dict(detail),
        "rule": rule,
        "reason": reason,
        "policy_hash": policy_hash,
    }


def chain_hash(prev_hash: str, body: str) -> str:
    """The link of the chain: sha256 of the previous hash followed by the record's canonical JSON."""
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record serialised around its future `prev_hash`, so sealing under the chain lock is a concat."""

    head: str
    tail: str
    row: tuple[Any, ...] = ()

    def seal(self, prev_hash: str) -> tuple[str, str]:
        """(hash, JSONL line without newline) of the record chained after `prev_hash`."""
        quoted = f'"{prev_hash}"' if prev_hash.isascii() and prev_hash.isalnum() else _encode(prev_hash)
        body = f"{self.head}{quoted}{self.tail}"
        digest = chain_hash(prev_hash, body)
        # The canonical body plus the hash as last key: readable, and `expected_hash` re-derives the body.
        return digest, f'{body[:-1]},"hash":"{digest}"}}'


_encode = canonical_json
# A per-process random stand-in for the prev_hash value: no record content can contain it by chance.
_MARK_VALUE = secrets.token_hex(16)
_MARK = f'"prev_hash":"{_MARK_VALUE}"'


def prepare(record: Mapping[str, Any], *, row: bool = False) -> Prepared:
    """Serialise a record once, cut where `prev_hash` goes (canonical JSON sorts keys), and build its row.

    Never raises: text UTF-8 cannot carry is escaped, and a record that cannot be serialised at all becomes
    a placeholder (`placeholder`), so one hostile value costs neither its call's record nor its batch."""
    try:
        return _prepare(record, row)
    except (UnicodeError, ValueError, TypeError, RecursionError):
        pass
    try:
        return _prepare(scrub(record), row)
    except (UnicodeError, ValueError, TypeError, RecursionError) as exc:
        return _prepare(placeholder(record, exc), row)


def _prepare(record: Mapping[str, Any], row: bool) -> Prepared:
    body = dict(record)
    for name in _CELLS if row else ():
        value = body.get(name)
        if value is None or (
            isinstance(value, int | float) and _cell(value) is value if name in _KIND else isinstance(value, str)
        ):
            continue
        # A value of another type than its column's would be converted by SQLite's column affinity (0 into
        # '0', '12' into 12) and the row would disagree with its record for `verify`: text columns keep it as
        # JSON text, number columns move it aside to `invalid`.
        if name in _KIND:
            body[name] = None
            body["invalid"] = {**body.get("invalid", {}), name: value}
        else:
            body[name] = _encode(value)
    record = body
    body = dict(record)
    body.pop("hash", None)
    body["prev_hash"] = _MARK_VALUE
    text = _encode(body)
    text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate: then the record is scrubbed
    head, _, tail = text.rpartition(_MARK)
    if not row:
        return Prepared(head + '"prev_hash":', tail)
    values = [_cell(record.get(c)) for c in COLUMNS[:-2]]
    values[_ARGS] = _encode(record.get("args"))
    return Prepared(head + '"prev_hash":', tail, tuple(values))


def _cell(value: Any) -> Any:
    """A column value SQLite takes: anything else (a nested value, an int past 64 bits) as its JSON text."""
    if value is None or isinstance(value, str | float) or (isinstance(value, int) and -(2**63) <= value < 2**63):
        return value
    return _encode(value)


def scrub(value: Any) -> Any:
    """`value` with every string (keys too) made valid UTF-8: a lone surrogate becomes its escape (`\\udcff`)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {scrub(str(k)): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


# The fields a placeholder keeps when they are plain scalars: enough to find and count the call.
_IDENTITY = ("kind", "event", "ts", "trace_id", "session_id", "agent", "surface", "server", "tool", "call_hash",
             "decision", "rule", "verdict", "decided_by", "approval_id", "outcome", "status", "latency_ms",
             "policy_hash")  # fmt: skip


def placeholder(record: Mapping[str, Any], exc: BaseException, failed: str = "serialised") -> dict[str, Any]:
    """The record of a call whose own record cannot be serialised: its identity, and the error in its place."""
    kept: dict[str, Any] = {}
    for key in _IDENTITY:
        value = record.get(key)
        if value is None or isinstance(value, bool | int | str) or (isinstance(value, float) and value == value):
            kept[key] = scrub(value)
    kept["error"] = scrub(f"this call's record could not be {failed}: {type(exc).__name__}: {exc}"[:500])
    return kept


def seal(record: Mapping[str, Any], prev_hash: str) -> tuple[str, str]:
    """(hash, JSONL line without newline) of `record` chained after `prev_hash`."""
    return prepare(record).seal(prev_hash)


def parse_line(line: str) -> dict[str, Any]:
    """A JSONL line -> record. Raises ValueError when it is not a JSON object with string hashes."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key in ("prev_hash", "hash"):
        if not isinstance(record.get(key), str):
            raise ValueError(f"no {key}")
    return record


def expected_hash(record: Mapping[str, Any]) -> str:
    """The hash a record should carry, recomputed from its own content and its prev_hash."""
    body = canonical_json({k: v for k, v in record.items() if k != "hash"})
    return chain_hash(str(record["prev_hash"]), body)
