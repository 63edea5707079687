"""Gate.open's defaults: the SQLite store and the batched trace writer on the config's state dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from policy import Gate, Outcome, ToolCall, load_config_text
from tests.policy.gate.conftest import config_text


async def test_the_default_gate_records_every_call_in_the_traces_table_and_jsonl(tmp_path: Path) -> None:
    state = tmp_path / "state"
    gate = Gate.open(load_config_text(config_text(state), "test.yaml", str(tmp_path)))
    calls = [
        ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": "/srv/a"}),
        ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/srv/a", "content": "x"}),
        ToolCall("claude", "mcp_stdio", "fs", "format_disk", {}),
    ]
    verdicts = []
    for call in calls:
        v = await gate.check(call)
        gate.finish(call, v, Outcome(forwarded=v.allowed))
        verdicts.append(v)
    await gate.aclose()
    conn = sqlite3.connect(state / "state.db")
    rows = conn.execute("SELECT trace_id, verdict, decided_by, approval_id FROM traces ORDER BY seq").fetchall()
    conn.close()
    assert rows == [(v.trace_id, v.kind.value, v.decided_by, v.approval_id) for v in verdicts]
    assert len((state / "traces.jsonl").read_text().splitlines()) == 3


def test_trace_ids_are_128_bit_hex_unique_and_ordered_by_time() -> None:
    from policy.gate.gate import new_trace_id

    ids = [new_trace_id() for _ in range(1000)]
    assert all(len(i) == 32 and int(i, 16) > 0 for i in ids)
    assert len(set(ids)) == len(ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)  # the millisecond comes first
