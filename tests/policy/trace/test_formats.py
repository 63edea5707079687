"""The export formats: whatever an agent puts into a record (tool names, session ids, arguments), the CSV
reads back cell for cell and no cell runs as a spreadsheet formula; JSON and NL carry the record whole."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.trace.formats import CSV_COLUMNS, write
from tests.policy.trace.factories import record

FORMULA = ("=", "+", "-", "@", "\t", "\r")
TEXT_FIELDS = ("tool", "agent", "session_id", "reason", "rule", "server")

hostile_text = st.one_of(
    st.text(),
    st.sampled_from(['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tx", "\r=1", "'=1", '"', "a,b\nc"]),
    st.builds(lambda p, t: p + t, st.sampled_from(FORMULA), st.text()),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def csv_of(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = io.StringIO()
    write(iter(records), out, "csv")
    return list(csv.DictReader(io.StringIO(out.getvalue())))


@settings(max_examples=300, deadline=None)
@given(fields=st.fixed_dictionaries({name: hostile_text for name in TEXT_FIELDS}), args=json_values)
def test_every_csv_cell_reads_back_and_none_starts_a_formula(fields: dict[str, str], args: Any) -> None:
    rec = record(1, args=args, **fields)
    (row,) = csv_of([rec])
    for name, value in fields.items():
        cell = row[name]
        assert not cell.startswith(FORMULA)
        assert cell == ("'" + value if value.startswith(FORMULA) else value)
    assert json.loads(row["args"].removeprefix("'")) == args
    assert float(row["ts"]) == rec["ts"]


@settings(max_examples=100, deadline=None)
@given(records=st.lists(st.builds(lambda i, a, t: record(i, args=a, tool=t), st.integers(0, 99), json_values,
                                  hostile_text), max_size=5))  # fmt: skip
def test_json_and_nl_carry_every_record_whole(records: list[dict[str, Any]]) -> None:
    as_json, as_nl = io.StringIO(), io.StringIO()
    assert write(iter(records), as_json, "json") == len(records)
    assert write(iter(records), as_nl, "nl") == len(records)
    assert json.loads(as_json.getvalue()) == records
    assert [json.loads(line) for line in as_nl.getvalue().split("\n") if line] == records


def test_a_record_older_than_the_kind_field_is_a_call_in_csv() -> None:
    rec = record(1)
    del rec["kind"]
    (row,) = csv_of([rec])
    assert row["kind"] == "call"
    assert tuple(row) == CSV_COLUMNS


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        write(iter([]), io.StringIO(), "xml")


def test_a_csv_for_the_terminal_shows_control_characters_as_escapes_and_a_file_keeps_them() -> None:
    hide = "delete_file\r\x1b[2K2026-01-01  claude  fs.read_file  allow"
    rec = record(1, tool=hide, session_id="s\x1b]52;c;ZXZpbA==\x07\u202e")
    on_terminal, to_file = io.StringIO(), io.StringIO()
    write(iter([rec]), on_terminal, "csv", terminal=True)
    write(iter([rec]), to_file, "csv")
    for raw in ("\x1b", "\r", "\x07", "\u202e"):
        assert raw not in on_terminal.getvalue()
    assert "delete_file\\x0d\\x1b[2K" in on_terminal.getvalue()
    (row,) = list(csv.DictReader(io.StringIO(to_file.getvalue())))
    assert row["tool"] == hide


def test_a_jsonl_trace_is_read_line_by_line_and_only_newlines_end_a_record(tmp_path: Path) -> None:
    from policy.trace.query import FileSource, Filters

    odd = [record(i, args={"text": f"a\u2028b\u0085c\r{i}"}) for i in range(3)]
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in odd), "utf-8")
    read = FileSource([path]).records(Filters())
    assert next(read) == odd[0]  # one record at a time: a generator over the open file
    assert [*read] == odd[1:]
    assert list(FileSource([path]).records(Filters(), newest_first=True)) == odd[::-1]
