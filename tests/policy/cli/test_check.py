"""`agent-mesh check` as a linter: all errors at once, warnings with codes and lines, `--strict`, `--json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policy import Gate, load_config
from policy.cli import cli
from policy.cli.checking import echo_startup_warnings, startup_warnings
from policy.trace import MemoryTraceSink

WARNED = """\
version: 1
state_dir: {state}
agents:
  claude: {{token: s3cret}}
  pybot: {{}}
policies:
  - name: p
    agent: clade
    rules:
      - {{tools: ["notes.*"], action: allow}}
      - {{tools: [notes.read_note], action: deny}}
"""


def check(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["check", "--config", str(config), *args])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent-mesh.yaml"
    path.write_text(text.format(state=tmp_path / "state"))
    return path


def test_check_prints_every_warning_with_its_line_and_code_and_exits_0(tmp_path: Path) -> None:
    config = write(tmp_path, WARNED)
    result = check(config)
    assert result.exit_code == 0, result.output
    assert "OK (policy hash" in result.stdout
    assert f"{config}:5: warning: agents.pybot: agent 'pybot' has no token" in result.stdout
    assert f"{config}:8: warning: policies[0].agent: policy 'p' is for 'clade'" in result.stdout
    assert "(did you mean 'claude'?) [W001 unknown-agent]" in result.stdout
    assert f"{config}:10: warning: policies[0].rules[0].tools[0]: no server 'notes' is known" in result.stdout
    assert f"{config}:11: warning: policies[0].rules[1]: rule rules[1] can never decide" in result.stdout
    assert "[W003 shadowed-rule]" in result.stdout
    assert "[W004 agent-without-token]" in result.stdout
    assert "5 warnings (exit 0: --strict makes warnings fail)" in result.stdout


def test_strict_makes_warnings_fail_with_exit_1_and_a_clean_config_pass(tmp_path: Path) -> None:
    assert check(write(tmp_path, WARNED), "--strict").exit_code == 1
    clean = write(
        tmp_path, "version: 1\nstate_dir: {state}\npolicies: [{{name: p, rules: [{{tools: ['*'], action: deny}}]}}]\n"
    )
    result = check(clean, "--strict")
    assert result.exit_code == 0, result.output
    assert "[W0" not in result.output


def test_json_lists_the_warnings_as_problems(tmp_path: Path) -> None:
    result = check(write(tmp_path, WARNED), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["policy_hash"]
    found = [(p["code"], p["name"], p["severity"], p["line"], p["path"]) for p in doc["problems"]]
    assert found == [
        ("W004", "agent-without-token", "warning", 5, "agents.pybot"),
        ("W001", "unknown-agent", "warning", 8, "policies[0].agent"),
        ("W002", "unknown-tool", "warning", 10, "policies[0].rules[0].tools[0]"),
        ("W002", "unknown-tool", "warning", 11, "policies[0].rules[1].tools[0]"),
        ("W003", "shadowed-rule", "warning", 11, "policies[0].rules[1]"),
    ]
    assert all(p["file"] == str(tmp_path / "agent-mesh.yaml") for p in doc["problems"])
    assert check(write(tmp_path, WARNED), "--json", "--strict").exit_code == 1


BROKEN = """\
version: 1
state_dir: {state}
polices: []
policies:
  - name: p
    rules:
      - {{tools: [x], action: alow}}
      - {{tools: [y], wehn: {{}}, action: deny}}
"""


def test_a_wrong_config_shows_every_error_at_once_with_did_you_mean_and_exits_2(tmp_path: Path) -> None:
    config = write(tmp_path, BROKEN)
    result = check(config)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = [line.removeprefix("Error: ") for line in result.stderr.splitlines()]
    assert lines == [
        f"{config}:3: polices: unknown key (did you mean 'policies'?) [E002 unknown-key]",
        f"{config}:7: policies[0].rules[0].action: 'alow' is not one of allow, deny, human_approval "
        "[E004 invalid-value]",
        f"{config}:8: policies[0].rules[1].wehn: unknown key (did you mean 'when'?) [E002 unknown-key]",
        "3 errors",
    ]


def test_a_wrong_config_with_json_is_the_uniform_error_plus_every_problem(tmp_path: Path) -> None:
    result = check(write(tmp_path, BROKEN), "--json")
    assert result.exit_code == 2
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["error"]["code"] == "config_error"
    assert doc["error"]["message"].count("\n") == 2  # all three, one a line
    assert [(p["code"], p["severity"], p["line"]) for p in doc["problems"]] == [
        ("E002", "error", 3),
        ("E004", "error", 7),
        ("E002", "error", 8),
    ]


def test_rules_that_do_not_compile_are_all_reported_with_the_warnings_beside_them(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "version: 1\nstate_dir: {state}\nagents: {{a: {{token: t}}, b: {{}}}}\npolicies:\n  - name: p\n"
        "    rules:\n      - {{tools: ['[x'], action: deny}}\n"
        "      - {{tools: ['*'], when: {{args.n: {{frobnicate: 1}}}}, action: deny}}\n",
    )
    result = check(config)
    assert result.exit_code == 2
    assert "[E006 invalid-rule]" in result.stderr
    assert result.stderr.count("[E006 invalid-rule]") == 2
    assert "[W004 agent-without-token]" in result.stderr
    assert "2 errors, 1 warning" in result.stderr


def test_tools_an_adapter_pinned_make_their_server_known(tmp_path: Path) -> None:
    config = write(tmp_path, WARNED.replace("clade", "claude").replace("  pybot: {{}}\n", ""))
    gate = Gate.open(load_config(str(config)), sink=MemoryTraceSink())
    gate.observe_tools("notes", "claude", [{"name": "read_note", "description": "reads", "inputSchema": {}}])
    gate.store.close()
    result = check(config, "--json")
    assert result.exit_code == 0, result.output
    assert [p["code"] for p in json.loads(result.stdout)["problems"]] == ["W003"]
    typo = write(tmp_path, WARNED.replace("notes.read_note", "notes.read_nte").replace("clade", "claude"))
    found = json.loads(check(typo, "--json").stdout)["problems"]
    assert any("did you mean 'notes.read_note'" in p["message"] for p in found)


def test_check_creates_no_state(tmp_path: Path) -> None:
    check(write(tmp_path, WARNED))
    assert not (tmp_path / "state").exists()


def test_serve_and_proxy_print_the_warnings_they_can_find_without_reading_specs_or_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, WARNED.replace("version: 1\n", "version: 1\nservers: {{notes: {{openapi: gone.json}}}}\n"))
    loaded = load_config(str(config))
    assert [p.code for p in startup_warnings(loaded)] == ["W004", "W001", "W003"]  # no W005: the spec is not read
    echo_startup_warnings(loaded, "agent-mesh serve")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"agent-mesh serve: {config}:6: warning: agents.pybot")
    assert err[-1] == "agent-mesh serve: 3 warnings; `agent-mesh check` lists them with the tools it knows"
