"""The decision tables in tests/policy/cases/*.yaml, run in-process and through `agent-mesh test`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from policy.core.casefile import load_cases, run_cases
from policy.gate.dryrun import case_judge
from policy.mesh.load import load_config

CASES_DIR = Path(__file__).parent / "cases"
FILES = sorted(CASES_DIR.glob("*.yaml"))


def _all_results() -> list[tuple[str, object]]:
    out = []
    for f in FILES:
        for r in run_cases(load_cases(str(f)), case_judge, load=load_config):
            out.append((f"{f.stem}: {r.name}", r))
    return out


RESULTS = _all_results()


def test_the_tables_hold_at_least_sixty_cases() -> None:
    assert len(RESULTS) >= 60


@pytest.mark.parametrize(("name", "result"), RESULTS, ids=[n for n, _ in RESULTS])
def test_decision_table_case(name: str, result: object) -> None:
    assert result.ok, f"{name}: expected {result.expected}, got {result.got}"  # type: ignore[attr-defined]


def test_agent_mesh_test_command_passes_every_table() -> None:
    proc = _run_test_command(*FILES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(RESULTS)} passed, 0 failed" in proc.stdout


def _run_test_command(*files: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "policy.cli", "test", *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_agent_mesh_test_exits_one_and_shows_the_failing_case(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "config: |\n  version: 1\n  policies:\n    - name: p\n      rules:\n"
        "        - {tools: ['a.*'], action: deny}\n"
        "cases:\n  - name: wrongly expects allow\n    call: {agent: x, tool: a.b}\n"
        "    expect: {decision: allow}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "policy.cli", "test", str(cases)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "FAIL  wrongly expects allow" in proc.stdout
    assert "got deny by p/rules[0]" in proc.stdout
    assert "0 passed, 1 failed" in proc.stdout


def test_a_malformed_cases_file_is_a_clear_error(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - name: x\n    expct: {}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "policy.cli", "test", str(cases)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{cases}:3: cases[0].expct: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
