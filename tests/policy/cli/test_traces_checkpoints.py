"""`agent-mesh traces key|verify|export` and the standalone bundle verifier, run as an auditor would."""

from __future__ import annotations

import ast
import importlib.util
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.cli import cli
from policy.core.config import TraceSettings
from policy.trace import TraceWriter, seal, trace_files
from policy.trace.checkpoint import KEY_NAME
from tests.policy.trace.factories import record

ROOT = Path(__file__).resolve().parents[3]
VERIFIER = ROOT / "scripts" / "verify_bundle.py"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    writer = TraceWriter(folder, TraceSettings(checkpoint_every=10), max_batch=8)
    for i in range(30):
        writer.emit(record(i, ts=1_700_000_000.0 + i))
    writer.close()
    return folder


def verify_bundle(bundle: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # -I: isolated, so nothing but the standard library and site-packages' cryptography can be imported.
    return subprocess.run(
        [sys.executable, "-I", str(VERIFIER), str(bundle), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=False,
    )


def test_traces_key_prints_the_same_public_key_every_time_and_keeps_the_private_half_private(state: Path) -> None:
    first = run("traces", "key", "--state-dir", str(state))
    second = run("traces", "key", "--state-dir", str(state))
    assert first.exit_code == 0
    assert first.output == second.output
    assert len(first.output.strip()) == 64
    assert (state / KEY_NAME).stat().st_mode & 0o077 == 0


def test_traces_key_makes_a_key_in_a_fresh_private_state_dir(tmp_path: Path) -> None:
    result = run("traces", "key", "--state-dir", str(tmp_path / "fresh"))
    assert result.exit_code == 0
    assert len(result.output.strip()) == 64
    assert (tmp_path / "fresh").stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "fresh").iterdir())


def test_verify_says_the_trace_reaches_its_last_signed_checkpoint(state: Path) -> None:
    result = run("traces", "verify", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert "reaches the last signed checkpoint (30 records" in result.output


def test_verify_exits_1_naming_records_dropped_from_both_stores(state: Path) -> None:
    current = trace_files(state)[-1]
    current.write_text("".join(current.read_text().splitlines(keepends=True)[:-2]))
    conn = sqlite3.connect(state / "state.db")
    with conn:
        conn.execute("DELETE FROM traces WHERE seq > 28")
    conn.close()
    result = run("traces", "verify", "--state-dir", str(state))
    assert result.exit_code == 1
    assert "BROKEN: the trace files holds 28 records" in result.output
    assert "the last 2 were removed" in result.output
    assert "BROKEN: the traces table holds 28 records" in result.output


def test_verify_json_reports_the_last_checkpoint(state: Path) -> None:
    result = run("traces", "verify", "--state-dir", str(state), "--json")
    data = json.loads(result.output)
    assert data["ok"] is True
    assert data["last_checkpoint"]["count"] == 30
    assert len(data["key"]) == 64


def test_verify_with_another_pinned_key_fails(state: Path) -> None:
    result = run("traces", "verify", "--state-dir", str(state), "--key", "ab" * 32)
    assert result.exit_code == 1
    assert "is not the expected" in result.output


def test_verify_refuses_a_key_that_is_not_hex(state: Path) -> None:
    result = run("traces", "verify", "--state-dir", str(state), "--key", "nope")
    assert result.exit_code == 2
    assert "64 lowercase hex digits" in result.output


def test_an_exported_bundle_verifies_offline_with_the_pinned_key(state: Path, tmp_path: Path) -> None:
    key = run("traces", "key", "--state-dir", str(state)).output.strip()
    bundle = tmp_path / "bundle"
    result = run(
        "traces", "export", "--state-dir", str(state), "--since", "2023-11-14T22:13:30+00:00", "--out", str(bundle)
    )
    assert result.exit_code == 0, result.output
    assert "wrote 20 records (from chain position 11)" in result.output
    checked = verify_bundle(bundle, "--key", key)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK: 20 records from position 11" in checked.stdout


def test_an_export_of_everything_starts_at_the_first_record(state: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "all"
    assert run("traces", "export", "--state-dir", str(state), "--out", str(bundle)).exit_code == 0
    assert verify_bundle(bundle).returncode == 0


def test_an_export_refuses_a_folder_in_the_way(state: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    result = run("traces", "export", "--state-dir", str(state), "--out", str(tmp_path / "busy"))
    assert result.exit_code == 1
    assert "is not an empty folder" in result.output


def _bundle(state: Path, tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    assert run("traces", "export", "--state-dir", str(state), "--out", str(bundle)).exit_code == 0
    return bundle


def test_a_bundle_with_its_last_record_dropped_fails_offline(state: Path, tmp_path: Path) -> None:
    bundle = _bundle(state, tmp_path)
    records = bundle / "records.jsonl"
    records.write_text("".join(records.read_text().splitlines(keepends=True)[:-1]))
    checked = verify_bundle(bundle)
    assert checked.returncode == 1
    assert "the records end at 29, but the last checkpoint covers 30" in checked.stdout


def test_a_resealed_bundle_fails_offline(state: Path, tmp_path: Path) -> None:
    bundle = _bundle(state, tmp_path)
    records = bundle / "records.jsonl"
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    prev, lines = rows[0]["prev_hash"], []
    for i, row in enumerate(rows):
        body = {k: v for k, v in row.items() if k not in ("hash", "prev_hash")}
        if i == 5:
            body["verdict"] = "deny"
        prev, line = seal(body, prev)
        lines.append(line)
    records.write_text("".join(line + "\n" for line in lines))
    checked = verify_bundle(bundle)
    assert checked.returncode == 1
    assert "the chain was rewritten" in checked.stdout


def test_a_bundle_with_an_edited_checkpoint_fails_offline(state: Path, tmp_path: Path) -> None:
    bundle = _bundle(state, tmp_path)
    path = bundle / "checkpoints.jsonl"
    path.write_text(path.read_text().replace('"count":30', '"count":29'))
    checked = verify_bundle(bundle)
    assert checked.returncode == 1
    assert "the signature does not verify" in checked.stdout


def test_the_bundle_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text())
    roots = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not isinstance(node, ast.ImportFrom) or node.module
    }
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}


def _load_verifier() -> Any:
    spec = importlib.util.spec_from_file_location("verify_bundle", VERIFIER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    change=st.sampled_from(["drop", "swap", "duplicate", "edit", "reseal", "drop checkpoint", "first"]),
    at=st.integers(min_value=0, max_value=29),
    other=st.integers(min_value=0, max_value=29),
)
def test_any_change_to_an_exported_bundle_fails_the_offline_check(
    tmp_path_factory: pytest.TempPathFactory, change: str, at: int, other: int
) -> None:
    folder = tmp_path_factory.mktemp("b")
    writer = TraceWriter(folder / "state", TraceSettings(checkpoint_every=10), max_batch=8)
    for i in range(30):
        writer.emit(record(i))
    writer.close()
    bundle = folder / "bundle"
    assert run("traces", "export", "--state-dir", str(folder / "state"), "--out", str(bundle)).exit_code == 0
    verifier = _load_verifier()
    assert verifier.check(bundle, None) == []
    path = bundle / "records.jsonl"
    lines = path.read_text().splitlines()
    if change == "drop":
        del lines[at]
    elif change == "swap":
        if at == other:
            other = (at + 1) % len(lines)
        lines[at], lines[other] = lines[other], lines[at]
    elif change == "duplicate":
        lines.insert(other, lines[at])
    elif change == "edit":
        rec = json.loads(lines[at])
        rec["verdict"] = "deny"
        lines[at] = json.dumps(rec)
    elif change == "reseal":
        rows = [json.loads(line) for line in lines]
        prev = rows[at]["prev_hash"]
        for i in range(at, len(rows)):
            body = {k: v for k, v in rows[i].items() if k not in ("hash", "prev_hash")}
            if i == at:
                body["outcome"] = "error"
            prev, lines[i] = seal(body, prev)
    elif change == "drop checkpoint":
        marks = (bundle / "checkpoints.jsonl").read_text().splitlines()
        # Not the first: its predecessor is not in the bundle, so nothing links to it; and it adds nothing,
        # every record being anchored by the last checkpoint's head already.
        del marks[max(1, min(at, len(marks) - 1))]
        (bundle / "checkpoints.jsonl").write_text("".join(m + "\n" for m in marks))
    elif change == "first":
        manifest = json.loads((bundle / "bundle.json").read_text())
        manifest["first"] += 1 + at
        (bundle / "bundle.json").write_text(json.dumps(manifest))
    path.write_text("".join(line + "\n" for line in lines))
    assert verifier.check(bundle, None) != []
