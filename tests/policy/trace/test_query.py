"""Reading traces back: time expressions, filters, and following a file through rotation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from policy.core.config import TraceSettings
from policy.trace import TraceWriter
from policy.trace.query import FileSource, Filters, TableSource, open_source, parse_when
from tests.policy.trace.factories import record

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", NOW - 600),
        ("2h", NOW - 7200),
        ("7d", NOW - 7 * 86400),
        ("30s", NOW - 30),
        ("2026-05-01T12:00:00+00:00", datetime.fromisoformat("2026-05-01T12:00:00+00:00").timestamp()),
        ("2026-05-01", datetime(2026, 5, 1).timestamp()),
    ],
)
def test_times_are_durations_ago_or_iso_times(text: str, expected: float) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10 minutes", "-5m", ""])
def test_other_times_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"neither a duration \(10m, 2h, 7d\) nor an ISO time"):
        parse_when(text, NOW)


def test_filters_match_globs_verdicts_time_and_session() -> None:
    rec = {"agent": "claude-2", "tool": "github.create_issue", "verdict": "pending", "ts": 100.0, "session_id": "s"}
    assert Filters(agent="claude*", tool="github.*", verdicts=("pending",), since=99, until=100, session="s").matches(
        rec
    )
    assert not Filters(agent="claude").matches(rec)
    assert not Filters(tool="*.delete*").matches(rec)
    assert not Filters(verdicts=("deny",)).matches(rec)
    assert not Filters(since=101).matches(rec)
    assert not Filters(session="other").matches(rec)


def test_exact_filters_become_sql_and_globs_stay_in_python() -> None:
    where, params = Filters(agent="claude", tool="fs.*", verdicts=("deny", "pending")).where()
    assert where == "agent = ? AND verdict IN (?, ?)"
    assert params == ["claude", "deny", "pending"]
    assert Filters().where() == ("1", [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tool": ""}, "bad glob"), ({"verdicts": ("denied",)}, "unknown verdict 'denied'")],
)
def test_bad_filters_are_refused_when_built(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Filters(**kwargs)  # type: ignore[arg-type]


def write(state: Path, ids: range, **settings: object) -> None:
    writer = TraceWriter(state, TraceSettings(**settings), max_batch=8)  # type: ignore[arg-type]
    for i in ids:
        writer.emit(record(i))
    writer.close()


def test_the_table_is_read_when_it_has_rows_and_the_files_otherwise(tmp_path: Path) -> None:
    write(tmp_path / "both", range(3))
    write(tmp_path / "files", range(3), sqlite=False)
    assert isinstance(open_source(tmp_path / "both"), TableSource)
    assert isinstance(open_source(tmp_path / "both", table=False), FileSource)
    assert isinstance(open_source(tmp_path / "files"), FileSource)
    for folder in ("both", "files"):
        source = open_source(tmp_path / folder)
        assert [r["trace_id"] for r in source.records(Filters(), newest_first=True)] == [
            "t-000002",
            "t-000001",
            "t-000000",
        ]


@pytest.mark.parametrize("table", [True, False])
def test_following_picks_up_new_records_across_rotations(tmp_path: Path, table: bool) -> None:
    write(tmp_path, range(5), max_bytes=4096)
    source = open_source(tmp_path, table=table)
    position = source.position()
    write(tmp_path, range(5, 40), max_bytes=4096)  # rotates several times meanwhile
    fresh, position = source.after(position, Filters())
    assert [r["trace_id"] for r in fresh] == [f"t-{i:06d}" for i in range(5, 40)]
    write(tmp_path, range(40, 42), max_bytes=4096)
    fresh, _ = source.after(position, Filters(verdicts=("allow",)))
    assert [r["trace_id"] for r in fresh] == ["t-000040", "t-000041"]
