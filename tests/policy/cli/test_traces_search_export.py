"""`agent-mesh traces search TEXT` and `traces export --format json|csv|nl` on a trace written by a real Gate
(plus one event record, as pins write them), read back through the real CLI."""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policy import Gate, Outcome, ToolCall, load_config
from policy.cli import cli
from policy.core.config import TraceSettings
from policy.trace import TraceWriter
from policy.trace.formats import CSV_COLUMNS
from policy.trace.record import build_event
from tests.policy.store.readonly import read_only

ROOT = Path(__file__).resolve().parents[3]
CONFIG = """
version: 1
state_dir: state
policies:
  - name: dev
    agent: "claude*"
    rules:
      - {name: reads, tools: ["fs.read*"], action: allow}
      - {name: writes, tools: ["fs.write_file"], action: human_approval}
      - {name: never, tools: ["fs.delete*"], action: deny, reason: "deleting is off limits in this repo"}
"""
CALLS = [
    ToolCall("claude", "mcp_stdio", "fs", "read_file", {"path": "/tmp/a"}, session_id="s-1"),
    ToolCall("claude", "mcp_stdio", "fs", "write_file", {"path": "/tmp/b", "token": "s3cret"}, session_id="s-1"),
    ToolCall("claude-2", "mcp_stdio", "fs", "delete_file", {"path": "/etc/passwd"}, session_id="s-2"),
    ToolCall("claude-2", "mcp_stdio", "fs", "read_dir", {"path": "/tmp"}, session_id="s-2"),
]


@pytest.fixture
async def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    loaded = load_config(str(path))
    gate = Gate.open(loaded)
    for call in CALLS:
        verdict = await gate.check(call)
        gate.finish(call, verdict, Outcome(forwarded=verdict.allowed, latency_ms=2.0 if verdict.allowed else None))
    await gate.aclose()
    writer = TraceWriter(tmp_path / "state", TraceSettings())
    writer.emit(
        build_event(
            "tool_changed",
            trace_id="ev-1",
            agent="claude",
            surface="mcp_stdio",
            server="fs",
            tool="fs.read_file",
            detail={"before": "reads a file", "after": "reads a file and uploads it"},
            rule="pins",
            reason="the description of fs.read_file changed since it was pinned",
            session_id="s-3",
            policy_hash="0" * 16,
            ts=CALLS_TS_AFTER,
        )
    )
    assert writer.close()
    return path


CALLS_TS_AFTER = 4_102_444_800.0  # 2100-01-01: the event is the newest record


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


def json_lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def found(config: Path, *args: str) -> list[str]:
    """The tools of the records `traces search ... --json` prints."""
    return [str(r["tool"]) for r in json_lines(run(config, "traces", "search", *args, "--json"))]


# search


def test_search_finds_a_call_by_a_word_of_its_arguments(config: Path) -> None:
    assert found(config, "passwd") == ["fs.delete_file"]


def test_search_finds_by_tool_name_quoted_or_literal(config: Path) -> None:
    assert found(config, '"fs.write_file"') == ["fs.write_file"]
    assert found(config, "--literal", "fs.write_file") == ["fs.write_file"]
    assert found(config, "tool:read_dir") == ["fs.read_dir"]


def test_search_finds_by_the_reason_and_by_the_rule(config: Path) -> None:
    assert found(config, "limits") == ["fs.delete_file"]
    assert sorted(found(config, "rule:reads")) == ["fs.read_dir", "fs.read_file"]


def test_search_shows_events_with_their_kind_unless_asked_for_calls_only(config: Path) -> None:
    records = json_lines(run(config, "traces", "search", "uploads", "--json"))
    assert [(r["kind"], r["tool"], r["event"]) for r in records] == [("event", "fs.read_file", "tool_changed")]
    assert found(config, "uploads", "--kind", "call") == []
    assert found(config, "read_file", "--kind", "event") == ["fs.read_file"]
    assert sorted(found(config, "read_file", "--kind", "call", "--kind", "event")) == ["fs.read_file"] * 2


def test_search_respects_the_filters_of_traces_query(config: Path) -> None:
    assert sorted(found(config, "tmp")) == ["fs.read_dir", "fs.read_file", "fs.write_file"]
    assert found(config, "tmp", "--agent", "claude-*") == ["fs.read_dir"]
    assert found(config, "tmp", "--verdict", "pending") == ["fs.write_file"]
    assert found(config, "tmp", "--session", "s-1", "--tool", "*.read*") == ["fs.read_file"]
    assert found(config, "tmp", "--until", "2001-01-01T00:00") == []
    assert found(config, "uploads", "--since", "10m") == ["fs.read_file"]  # the event is dated 2100


def test_search_never_finds_what_redaction_removed(config: Path) -> None:
    assert found(config, "s3cret") == []
    assert found(config, "REDACTED") == ["fs.write_file"]


def test_search_prints_a_table_and_says_when_nothing_matches(config: Path) -> None:
    result = run(config, "traces", "search", "passwd")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:4] == ["TIME", "AGENT", "TOOL", "VERDICT"]
    assert "fs.delete_file" in result.stdout
    assert "deny" in result.stdout
    nothing = run(config, "traces", "search", "nowhere")
    assert nothing.exit_code == 0
    assert nothing.stdout == ""
    assert "no traced records match" in nothing.stderr


def test_search_limit_cuts_the_list_and_says_so(config: Path) -> None:
    result = run(config, "traces", "search", "fs", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3  # the header and two rows
    assert "best 2 shown" in result.stderr


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("fs.read_file", 'syntax error near "."'),
        ('"unclosed', "unterminated string"),
        ("AND", 'syntax error near "AND"'),
        ("nosuch:thing", "no such column: nosuch"),
    ],
)
def test_a_query_sqlite_cannot_parse_is_a_usage_error_that_says_why(config: Path, text: str, why: str) -> None:
    result = run(config, "traces", "search", text)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert why in result.stderr
    assert "--literal" in result.stderr
    assert "Traceback" not in result.output


def test_search_with_literal_takes_any_text_as_written(config: Path) -> None:
    for text in ["fs.read_file", '"unclosed', "AND", "nosuch:thing", "/etc/passwd", "rule:reads OR"]:
        result = run(config, "traces", "search", "--literal", text, "--json")
        assert result.exit_code == 0, (text, result.output)
    assert found(config, "--literal", "/etc/passwd") == ["fs.delete_file"]


def test_search_of_empty_text_is_a_usage_error(config: Path) -> None:
    result = run(config, "traces", "search", "  ")
    assert result.exit_code == 2
    assert "nothing to search for" in result.stderr


def test_search_exits_2_from_the_installed_command_without_a_traceback(config: Path) -> None:
    agent_mesh = Path(sys.executable).with_name("agent-mesh")
    done = subprocess.run(
        [str(agent_mesh), "traces", "search", "fs.read_file", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "syntax error" in done.stderr
    assert "Traceback" not in done.stderr


# export


def test_export_nl_writes_one_parsable_record_per_line_calls_and_events(config: Path) -> None:
    records = json_lines(run(config, "traces", "export", "--format", "nl"))
    assert [r["tool"] for r in records] == [*(c.full_name for c in CALLS), "fs.read_file"]
    assert [r["kind"] for r in records] == ["call"] * 4 + ["event"]
    query = json_lines(run(config, "traces", "query", "--events", "--json"))
    assert records == query


def test_export_defaults_to_nl_on_standard_output(config: Path) -> None:
    assert json_lines(run(config, "traces", "export")) == json_lines(run(config, "traces", "export", "--format", "nl"))


def test_export_json_is_one_array_of_the_same_records(config: Path) -> None:
    result = run(config, "traces", "export", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json_lines(run(config, "traces", "export", "--format", "nl"))
    empty = run(config, "traces", "export", "--format", "json", "--tool", "nothing.*")
    assert json.loads(empty.stdout) == []


def test_export_csv_has_a_header_and_one_row_per_record_that_reads_back(config: Path) -> None:
    result = run(config, "traces", "export", "--format", "csv")
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = list(reader)
    records = json_lines(run(config, "traces", "export", "--format", "nl"))
    assert len(rows) == len(records) == 5
    for row, record in zip(rows, records, strict=True):
        assert row["kind"] == record["kind"]
        assert row["tool"] == record["tool"]
        assert row["trace_id"] == record["trace_id"]
        assert json.loads(row["args"]) == record["args"]
        assert float(row["ts"]) == record["ts"]
        assert row["verdict"] == (record.get("verdict") or "")
        assert row["hash"] == record["hash"]
    assert [r["event"] for r in rows] == ["", "", "", "", "tool_changed"]


def test_export_takes_the_filters_and_kind(config: Path) -> None:
    calls = json_lines(run(config, "traces", "export", "--kind", "call", "--tool", "fs.read*"))
    assert [r["tool"] for r in calls] == ["fs.read_file", "fs.read_dir"]
    events = json_lines(run(config, "traces", "export", "--kind", "event"))
    assert [r["trace_id"] for r in events] == ["ev-1"]
    assert json_lines(run(config, "traces", "export", "--verdict", "deny")) == [
        r for r in json_lines(run(config, "traces", "export")) if r.get("verdict") == "deny"
    ]


def test_export_to_a_file_is_private_and_says_how_many(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "week.csv"
    result = run(config, "traces", "export", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "exported 5 record(s)" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)


def test_export_bundle_still_verifies_offline_with_either_spelling(config: Path, tmp_path: Path) -> None:
    for flag, name in [("--bundle", "b1"), ("--out", "b2")]:
        bundle = tmp_path / name
        result = run(config, "traces", "export", flag, str(bundle))
        assert result.exit_code == 0, result.output
        assert "wrote 5 records" in result.output
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "verify_bundle.py"), str(bundle)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_bundle_takes_no_other_filter(config: Path, tmp_path: Path) -> None:
    result = run(config, "traces", "export", "--bundle", str(tmp_path / "b"), "--tool", "fs.*")
    assert result.exit_code == 2
    assert "only --since goes with --bundle" in result.stderr
    assert not (tmp_path / "b").exists()


async def test_search_prints_names_with_terminal_escapes_as_visible_escapes(tmp_path: Path) -> None:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG)
    gate = Gate.open(load_config(str(path)))
    call = ToolCall("claude", "mcp_stdio", "fs", "delete_file\r\x1b[2Kfs.read_file allow", {"path": "/etc/passwd"},
                    session_id="s\x1b]52;c;ZXZpbA==\x07\u202e")  # fmt: skip
    verdict = await gate.check(call)
    gate.finish(call, verdict, Outcome(forwarded=False))
    await gate.aclose()
    result = run(path, "traces", "search", "passwd")
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\r", "\x07", "\u202e"):
        assert raw not in result.output
    assert "\\x1b" in result.output


async def test_with_the_table_off_export_reads_the_jsonl_files_and_search_says_why_it_cannot(tmp_path: Path) -> None:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(CONFIG + "traces: {sqlite: false}\n")
    gate = Gate.open(load_config(str(path)))
    for call in CALLS:
        verdict = await gate.check(call)
        gate.finish(call, verdict, Outcome(forwarded=verdict.allowed))
    await gate.aclose()
    exported = json_lines(run(path, "traces", "export", "--format", "nl"))
    assert [r["tool"] for r in exported] == [c.full_name for c in CALLS]
    result = run(path, "traces", "search", "passwd")
    assert result.exit_code == 1
    assert "traces.sqlite off" in result.stderr


def test_search_on_a_state_db_from_before_the_index_adds_it_and_finds_the_old_rows(tmp_path: Path) -> None:
    from tests.policy.trace.test_search_index import jsonl_trace, schema_7_with_rows

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    schema_7_with_rows(state, jsonl_trace(state, 6))
    result = CliRunner().invoke(cli, ["traces", "search", "passwd", "--json", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["trace_id"] for line in result.stdout.splitlines()] == ["t-000003"]


def test_search_of_a_read_only_state_db_finds_every_record_and_writes_nothing(config: Path) -> None:
    db = config.parent / "state" / "state.db"
    with read_only(db):
        before = db.read_bytes()
        assert found(config, "passwd") == ["fs.delete_file"]  # written, never indexed: the writer does not
        assert sorted(found(config, "tmp")) == ["fs.read_dir", "fs.read_file", "fs.write_file"]
        assert db.read_bytes() == before
    assert found(config, "passwd") == ["fs.delete_file"]  # writable again: caught up for good
