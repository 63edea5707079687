"""`agent-mesh traces tail|query|sessions|verify` and `agent-mesh replay` on a trace written by a real Gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policy import Gate, Outcome, ToolCall, load_config
from policy.cli import cli
from policy.core.config import TraceSettings
from policy.trace import TraceWriter, trace_files
from tests.policy.trace.factories import record

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
      - {name: never, tools: ["fs.delete*"], action: deny}
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
    gate = Gate.open(load_config(str(path)))
    for call in CALLS:
        verdict = await gate.check(call)
        gate.finish(call, verdict, Outcome(forwarded=verdict.allowed, latency_ms=2.0 if verdict.allowed else None))
    await gate.aclose()
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


def json_lines(result: Result) -> list[dict[str, object]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_tail_shows_the_latest_calls_oldest_first_with_redacted_arguments(config: Path) -> None:
    result = run(config, "traces", "tail", "-n", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["TIME", "AGENT", "TOOL", "VERDICT"]
    assert [line.split()[3] for line in lines[1:]] == ["fs.write_file", "fs.delete_file", "fs.read_dir"]
    assert '"token":"[REDACTED]"' in result.output
    assert "s3cret" not in result.output


def test_query_filters_by_agent_glob_tool_glob_verdict_and_session(config: Path) -> None:
    assert [r["tool"] for r in json_lines(run(config, "traces", "query", "--tool", "fs.read*", "--json"))] == [
        "fs.read_file",
        "fs.read_dir",
    ]
    assert [r["agent"] for r in json_lines(run(config, "traces", "query", "--agent", "claude-*", "--json"))] == [
        "claude-2",
        "claude-2",
    ]
    denied = json_lines(run(config, "traces", "query", "--verdict", "deny", "--verdict", "pending", "--json"))
    assert [r["verdict"] for r in denied] == ["pending", "deny"]
    assert len(json_lines(run(config, "traces", "query", "--session", "s-2", "--json"))) == 2


def test_query_by_time_takes_durations_and_iso_times(config: Path) -> None:
    assert len(json_lines(run(config, "traces", "query", "--since", "10m", "--json"))) == 4
    assert json_lines(run(config, "traces", "query", "--until", "1h", "--json")) == []
    assert json_lines(run(config, "traces", "query", "--until", "2001-01-01T00:00", "--json")) == []


def test_a_bad_time_or_glob_is_a_clean_usage_error(config: Path) -> None:
    bad = run(config, "traces", "query", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "neither a duration" in bad.output
    assert "Traceback" not in bad.output
    assert run(config, "traces", "query", "--tool", "fs.[").exit_code == 2


def test_query_says_when_the_limit_cut_the_list(config: Path) -> None:
    result = run(config, "traces", "query", "--limit", "2")
    assert len(result.stdout.splitlines()) == 3  # header + 2
    assert "first 2 shown" in result.stderr


def test_sessions_count_calls_and_verdicts_per_session(config: Path) -> None:
    rows = {r["session_id"]: r for r in json_lines(run(config, "traces", "sessions", "--json"))}
    assert rows["s-1"]["calls"] == 2
    assert rows["s-1"]["verdicts"] == {"allow": 1, "pending": 1}
    assert rows["s-2"]["agents"] == ["claude-2"]
    text = run(config, "traces", "sessions").output
    assert text.splitlines()[0].split()[:3] == ["SESSION", "AGENTS", "CALLS"]


def test_verify_passes_and_then_names_a_tampered_line(config: Path) -> None:
    ok = run(config, "traces", "verify")
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("OK: 4 records in 1 file(s) (traces.jsonl) and 4 rows in state.db")
    current = config.parent / "state" / "traces.jsonl"
    lines = current.read_text().splitlines()
    lines[2] = lines[2].replace('"/etc/passwd"', '"/tmp/x"')
    current.write_text("\n".join(lines) + "\n")
    broken = run(config, "traces", "verify")
    assert broken.exit_code == 1
    assert "BROKEN: traces.jsonl:3: hash does not match the record's content (expected " in broken.output
    report = json.loads(run(config, "traces", "verify", "--json").output)
    assert report["ok"] is False
    assert report["jsonl"]["files"] == ["traces.jsonl"]
    assert report["problems"][0].startswith("traces.jsonl:3: hash does not match")
    assert report["table"]["records"] == 4


def test_verify_on_a_state_dir_that_does_not_exist_says_so_and_creates_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["traces", "verify", "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert f"no state yet at {tmp_path / 'none'}" in result.output
    assert not (tmp_path / "none").exists()


def test_verify_on_an_empty_state_dir_has_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir(mode=0o700)
    result = CliRunner().invoke(cli, ["traces", "verify", "--state-dir", str(tmp_path / "empty")])
    assert result.exit_code == 0
    assert "nothing to verify" in result.output


def test_replay_lists_the_calls_a_candidate_would_decide_differently_and_exits_1(config: Path) -> None:
    candidate = config.parent / "candidate.yaml"
    candidate.write_text(CONFIG.replace("action: human_approval", "action: allow").replace('"claude*"', "claude"))
    result = run(config, "replay", str(candidate))
    assert result.exit_code == 1, result.output
    assert "replayed 4 recorded call(s)" in result.output
    assert "human_approval → allow 1" in result.output
    assert "allow → deny 1" in result.output  # claude-2 is no longer covered by any policy
    changes = [json.loads(line) for line in run(config, "replay", str(candidate), "--json").stdout.splitlines()]
    assert {(c["tool"], c["before"]["decision"], c["after"]["decision"]) for c in changes} == {
        ("fs.write_file", "human_approval", "allow"),
        ("fs.read_dir", "allow", "deny"),
    }


def test_replay_of_the_same_config_changes_nothing_and_exits_0(config: Path) -> None:
    result = run(config, "replay", str(config))
    assert result.exit_code == 0, result.output
    assert "no decision would change" in result.output


def test_replay_reads_a_jsonl_file_given_with_traces(config: Path, tmp_path: Path) -> None:
    exported = tmp_path / "export.jsonl"
    exported.write_text((config.parent / "state" / "traces.jsonl").read_text())
    candidate = tmp_path / "deny-all.yaml"
    candidate.write_text("version: 1\npolicies: [{name: none, agent: '*', rules: []}]\n")
    result = CliRunner().invoke(cli, ["replay", str(candidate), "--traces", str(exported), "--tool", "fs.read*"])
    assert result.exit_code == 1
    assert "allow → deny 2" in result.output


def test_replay_of_a_broken_candidate_exits_2_naming_its_line(config: Path, tmp_path: Path) -> None:
    candidate = tmp_path / "bad.yaml"
    candidate.write_text("version: 1\npolicies:\n  - name: x\n    rules: [{tools: ['*'], action: maybe}]\n")
    result = run(config, "replay", str(candidate))
    assert result.exit_code == 2
    assert "bad.yaml:4" in result.output


def test_tail_follow_prints_records_as_other_processes_write_them(tmp_path: Path) -> None:
    state = tmp_path / "state"
    writer = TraceWriter(state, TraceSettings())
    writer.emit(record(0))
    writer.flush()
    proc = subprocess.Popen(
        [sys.executable, "-m", "policy.cli", "traces", "tail", "-f", "--json", "--state-dir", str(state)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["trace_id"] == "t-000000"
        for i in (1, 2):
            writer.emit(record(i))
        writer.flush()
        assert json.loads(proc.stdout.readline())["trace_id"] == "t-000001"
        assert json.loads(proc.stdout.readline())["trace_id"] == "t-000002"
    finally:
        writer.close()
        proc.terminate()
        proc.communicate(timeout=30)
    assert trace_files(state)
