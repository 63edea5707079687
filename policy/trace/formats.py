"""Trace records written out as JSON (one array), newline-delimited JSON, or CSV, one record at a time.

Every writer streams: it takes an iterator and writes each record as it comes, so exporting a large trace
never holds it in memory. JSON and NL carry each record whole, as sealed (a record older than the `kind`
field has none: it is a call); CSV flattens to a fixed set of columns, `kind` always filled,
args and http as JSON text (empty when the record has none), any other non-text value as JSON too.

A CSV is opened in spreadsheets, and much of a record comes from the agent (tool names, session ids,
arguments): a text cell that starts with = + - @ or a tab/CR would run as a formula there, so it gets a
leading ' (OWASP's advice). Numbers are written as numbers. A CSV printed on a terminal shows control
characters as visible escapes (an ESC[2K or a carriage return in a tool name would erase a row there).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from typing import Any, TextIO

from policy.core.invisible import one_line
from policy.trace.record import is_call

FORMATS = ("json", "csv", "nl")

CSV_COLUMNS = (
    "kind", "time", "ts", "trace_id", "session_id", "agent", "surface", "server", "tool", "args", "decision",
    "rule", "reason", "verdict", "decided_by", "approval_id", "outcome", "status", "latency_ms", "event",
    "http", "policy_hash", "call_hash", "prev_hash", "hash",
)  # fmt: skip
_NUMBERS = frozenset({"ts", "status", "latency_ms"})
_JSON = frozenset({"args", "http"})
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def write(records: Iterable[dict[str, Any]], out: TextIO, fmt: str, *, terminal: bool = False) -> int:
    """Write every record in `fmt` (json, csv or nl); returns how many were written. `terminal`: the CSV goes to
    the operator's terminal, so its text is shown one line a cell, control characters as visible escapes (JSON
    escapes them itself)."""
    if fmt == "nl":
        return write_nl(records, out)
    if fmt == "json":
        return write_json(records, out)
    if fmt == "csv":
        return write_csv(records, out, terminal=terminal)
    raise ValueError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")


def write_nl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for record in records:
        out.write(_json(record) + "\n")
        count += 1
    return count


def write_json(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """One JSON array, written element by element (`[]` when nothing matched)."""
    count = 0
    for record in records:
        out.write(("[\n" if count == 0 else ",\n") + _json(record))
        count += 1
    out.write("[]\n" if count == 0 else "\n]\n")
    return count


def write_csv(records: Iterable[dict[str, Any]], out: TextIO, *, terminal: bool = False) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        writer.writerow(csv_row(record, terminal=terminal))
        count += 1
    return count


def csv_row(record: dict[str, Any], *, terminal: bool = False) -> list[Any]:
    """The CSV cells of one record, in CSV_COLUMNS order (for a terminal: escaped as policy.core.invisible does)."""
    cells: list[Any] = []
    for column in CSV_COLUMNS:
        if column == "kind":
            value: Any = "call" if is_call(record) else "event"
        elif column == "time":
            ts = record.get("ts")
            value = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts)) if _number(ts) else None
        elif column in _JSON:
            # Always JSON text when present (a string argument list too), so json.loads reads back what was there.
            value = _json(record[column]) if column in record else None
        else:
            value = record.get(column)
        cell = _cell(column, value)
        cells.append(one_line(cell) if terminal and isinstance(cell, str) else cell)
    return cells


def _cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column in _NUMBERS and _number(value):
        return value
    text = value if isinstance(value, str) else _json(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
