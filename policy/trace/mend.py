"""Mends the `traces` table after a writer was killed between its file write and its table insert.

A batch goes to `traces.jsonl` first, then to the table; a SIGKILL between the two (the fault-injection soak
does that hundreds of times) leaves the file a batch ahead. The next append by any process would chain past
that gap: the table's chain would break there for good, and a record written ahead and adopted later would
be chained a second time (the table's unique trace ids are what adoption checks). So, under the chain lock,
before a batch is chained, the file's lines past the table's last row are inserted first, unchanged. Only a
short gap is mended (a killed batch, not an emptied table: that is for `verify` to report, not to paper over).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

from policy.trace.record import COLUMNS, GENESIS, prepare

MAX_GAP = 8192  # lines: a killed writer leaves at most one batch (the writer's largest is 2,048 records)
_CHUNK = 65536
_INSERT = f"INSERT INTO traces ({', '.join(COLUMNS)}, record) VALUES ({','.join('?' * (len(COLUMNS) + 1))})"


def mend_table(conn: sqlite3.Connection, files: list[Path], file_tip: str) -> str:
    """Insert the lines of `files` (newest first) that follow the table's last row; returns the chain's tip
    afterwards (`file_tip`, unless a half-written batch was cut off).

    The caller holds the chain lock. Never raises: a table that cannot be mended is for `verify` to name.
    """
    try:
        row = conn.execute("SELECT hash FROM traces ORDER BY seq DESC LIMIT 1").fetchone()
        table_tip = str(row[0]) if row is not None else GENESIS
        if table_tip == file_tip:
            return file_tip
        lines = lines_after(files, table_tip, MAX_GAP)
        if not lines:
            return file_tip
        rows = []
        for line in lines:
            record = json.loads(line)
            rows.append((*prepare(record, row=True).row, record["prev_hash"], record["hash"], line))
        try:
            with conn:
                conn.executemany(_INSERT, rows)
        except sqlite3.IntegrityError:
            # A call already in the table: the stopped writer's batch was one the table refused (it was cutting
            # it off to retry without the duplicates when it died). Finish that: the records not yet in the
            # table are still in their write-ahead logs, and the next adoption chains them.
            return table_tip if _cut(files[0], table_tip, len(rows)) else file_tip
    except (sqlite3.Error, ValueError, KeyError, OSError) as exc:
        _report(f"could not add the trace file's last records to the table: {type(exc).__name__}: {exc}")
        return file_tip
    _report(f"added {len(rows)} record(s) to the traces table that a stopped writer had put in the file only")
    return file_tip


def lines_after(files: list[Path], anchor: str, limit: int) -> list[str] | None:
    """The complete lines after the record whose hash is `anchor` (GENESIS: every line) in `files` (newest
    first), oldest first; None when there are more than `limit` or the anchor is not among them."""
    suffix = f'"hash":"{anchor}"}}'.encode()
    newer: list[list[bytes]] = []  # the complete lines of each file newer than the one being read
    for path in files:
        lines, whole = _tail(path, limit)
        if anchor != GENESIS:
            for i in range(len(lines) - 1, -1, -1):
                if lines[i].endswith(suffix):
                    found = lines[i + 1 :] + [line for group in reversed(newer) for line in group]
                    return [raw.decode("utf-8") for raw in found] if len(found) <= limit else None
        if not whole:
            return None
        newer.append(lines)
        if sum(len(group) for group in newer) > limit:
            return None
    if anchor != GENESIS:
        return None
    return [raw.decode("utf-8") for group in reversed(newer) for raw in group]


def _tail(path: Path, limit: int) -> tuple[list[bytes], bool]:
    """The file's last complete lines, at least `limit` + 1 of them when it has that many, and whether they
    are all of its lines."""
    with path.open("rb") as f:
        pos = f.seek(0, 2)
        data = b""
        while pos > 0 and data.count(b"\n") <= limit + 1:
            step = min(_CHUNK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    pieces = data.split(b"\n")[:-1]  # what follows the last newline is a torn line, never a record
    if pos > 0:
        pieces = pieces[1:]  # the first piece may start mid-line
    return pieces, pos == 0


def _cut(current: Path, anchor: str, count: int) -> int:
    """Cut `current` just after the record whose hash is `anchor`; returns how many lines went (0: not cut)."""
    if anchor == GENESIS:
        return 0
    marker = f'"hash":"{anchor}"}}\n'.encode()
    with current.open("rb") as f:
        size = f.seek(0, 2)
        start = max(0, size - _CHUNK * (1 + count // 64))
        f.seek(start)
        data = f.read()
    i = data.rfind(marker)
    if i < 0:
        _report(f"a stopped writer's half-written batch spans a rotation of {current.name}: left for verify")
        return 0
    os.truncate(current, start + i + len(marker))
    _report(f"removed {count} record(s) that a stopped writer left in {current.name} but the table refused")
    return count


def _report(message: str) -> None:
    print(f"agent-mesh trace: {message}", file=sys.stderr, flush=True)
