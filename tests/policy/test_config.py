"""Loading configs: policy_dir, the built-in default, where the config is found, durations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy import ConfigError, ToolCall, compile_policies, decide, load_config, parse_duration
from policy.cli import cli
from policy.core.config import load_config_text
from policy.mesh.load import find_config
from policy.mesh.locate import ENV_VAR

POLICY = "name: {name}\nagent: {agent}\nrules:\n  - {{tools: ['*'], action: allow}}\n"


def _write_config(folder: Path, extra: str = "") -> Path:
    cfg = folder / "agent-mesh.yaml"
    cfg.write_text(f"version: 1\npolicy_dir: policies\nstate_dir: state\n{extra}")
    return cfg


def test_policy_dir_files_load_alphabetically_yaml_and_yml(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "b-team.yml").write_text(POLICY.format(name="b", agent="'team-*'"))
    (tmp_path / "policies" / "a-team.yaml").write_text(
        "policies:\n  - " + POLICY.format(name="a", agent="'team-*'").replace("\n", "\n    ")
    )
    (tmp_path / "policies" / "notes.txt").write_text("ignored")
    loaded = load_config(str(_write_config(tmp_path)))
    assert [p.name for p in loaded.config.policies] == ["a", "b"]
    assert loaded.config.state_dir == str(tmp_path / "state")


def test_duplicate_policy_names_across_files_name_the_second_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "one.yaml").write_text(POLICY.format(name="dup", agent="a"))
    (tmp_path / "policies" / "two.yaml").write_text("# comment\n" + POLICY.format(name="dup", agent="b"))
    with pytest.raises(ConfigError) as err:
        load_config(str(_write_config(tmp_path)))
    assert str(err.value).startswith(f"{tmp_path / 'policies' / 'two.yaml'}:2: name: duplicate policy name 'dup'")


def test_an_error_inside_a_policy_dir_file_points_into_that_file(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    bad = tmp_path / "policies" / "x.yaml"
    bad.write_text("name: x\nrules:\n  - tools: ['fs.[oops']\n    action: allow\n")
    with pytest.raises(ConfigError) as err:
        compile_policies(load_config(str(_write_config(tmp_path))))
    assert str(err.value).startswith(f"{bad}:3: rules[0].tools[0]: bad glob")


def test_a_missing_policy_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent-mesh.yaml:2: policy_dir: .* is not a directory"):
        load_config(str(_write_config(tmp_path)))


def test_config_is_found_by_flag_then_env_then_registry_never_by_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy.mesh.active import register

    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    monkeypatch.chdir(tmp_path)
    assert find_config(None, env) is None
    (tmp_path / "agent-mesh.yaml").write_text("version: 1\n")
    assert find_config(None, env) is None  # a file beside the command does not change the policy
    register(str(tmp_path / "registered.yaml"), "test", env)
    assert find_config(None, env) == str(tmp_path / "registered.yaml")
    assert find_config(None, {**env, ENV_VAR: "/elsewhere.yaml"}) == "/elsewhere.yaml"
    assert find_config("flag.yaml", {**env, ENV_VAR: "/elsewhere.yaml"}) == "flag.yaml"


def test_a_missing_config_file_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load_config("nope.yaml")


def test_the_built_in_default_reads_freely_and_asks_for_everything_else(tmp_path: Path) -> None:
    from policy import ToolCall, decide

    ps = compile_policies(load_config(None, {"XDG_CONFIG_HOME": str(tmp_path)}))  # nothing registered
    read = ToolCall("any", "mcp_stdio", "filesystem", "read_text_file", {"path": "/x"})
    write = ToolCall("any", "mcp_stdio", "filesystem", "write_file", {"path": "/x"})
    destructive_read = ToolCall("any", "mcp_stdio", "x", "get_and_delete", annotations={"destructiveHint": True})
    assert decide(read, ps).action == "allow"
    assert decide(write, ps).action == "human_approval"
    assert decide(destructive_read, ps).action == "human_approval"


def test_config_show_default_prints_a_config_that_loads_back() -> None:
    result = CliRunner().invoke(cli, ["config", "show", "--default"])
    assert result.exit_code == 0
    assert load_config_text(result.output, "shown.yaml").config.policies[0].name == "default"


def test_check_exits_two_with_the_precise_error(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("version: 1\npolicies:\n  - name: p\n    rules:\n      - tools: [x]\n        action: alow\n")
    result = CliRunner().invoke(cli, ["check", "--config", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:6: policies[0].rules[0].action: 'alow' is not one of allow, deny, human_approval" in result.output


def test_check_summarises_policies_in_evaluation_order(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "version: 1\nservers: {notes: {mcp_url: 'http://127.0.0.1:9/mcp'}}\npolicies:\n"
        "  - {name: all, agent: '*', rules: [{tools: ['*'], action: deny}]}\n"
        "  - {name: ann, agent: ann, rules: [{tools: ['*'], action: allow}, {tools: [a.b], action: allow}]}\n"
    )
    result = CliRunner().invoke(cli, ["check", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert result.output.index("1. ann") < result.output.index("2. all")
    assert "2 rules (2 allow)" in result.output
    assert "notes (mcp http://127.0.0.1:9/mcp)" in result.output


def test_explain_json_names_rule_reason_and_order() -> None:
    import json

    result = CliRunner().invoke(
        cli, ["explain", "--agent", "a", "--tool", "filesystem.write_file", "--args", '{"path": "/x"}', "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["decision"] == "human_approval"
    assert out["rule"] == "default/everything-else-asks"
    assert out["evaluation_order"] == ["default"]


def test_explain_rejects_arguments_that_are_not_a_json_object() -> None:
    result = CliRunner().invoke(cli, ["explain", "--agent", "a", "--tool", "x.y", "--args", "[1]"])
    assert result.exit_code == 2
    assert "must be a JSON object" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"), [(25, 25.0), ("25s", 25.0), ("30m", 1800.0), ("1h", 3600.0), ("500ms", 0.5), ("7d", 604800.0)]
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1", -1, True, "5 minutes", None])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- bounded work: linear-time regexes, capped YAML -----------------------------------------------------

REGEX_RULE = (
    "version: 1\npolicies:\n  - name: p\n    rules:\n      - name: {name}\n        tools: [x.y]\n"
    "        when: {{args.s: {{regex: '{rx}'}}}}\n        action: allow\n"
)


@pytest.mark.parametrize(
    ("rx", "feature"),
    [
        (r"(a)\1", r"a backreference (\1)"),
        (r"(?P<w>a)(?P=w)", "a named backreference"),
        ("(?=x)x", "a lookahead"),
        ("(?!x)y", "a negative lookahead"),
        ("(?<=x)y", "a lookbehind"),
        ("(?<!x)y", "a negative lookbehind"),
        ("(?>a+)b", "an atomic group"),
        ("a*+", "a possessive quantifier"),
        (r"a\Z", r"\Z (RE2 writes end of text as \z)"),
    ],
)
def test_a_regex_feature_re2_lacks_is_a_config_error_naming_file_line_rule_and_feature(
    tmp_path: Path, rx: str, feature: str
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(REGEX_RULE.format(name="names-only", rx=rx))
    with pytest.raises(ConfigError) as err:
        compile_policies(load_config(str(cfg)))
    message = str(err.value)
    assert message.startswith(f"{cfg}:7: policies[0].rules[0].when.args.s.regex: bad regex")
    assert f"uses {feature}" in message
    assert "(rule p/names-only)" in message


def test_a_regex_that_backtracks_for_minutes_in_python_decides_at_once(tmp_path: Path) -> None:
    # Python's re needs ~2^40 steps for this argument; RE2 is linear. The subprocess's timeout only bounds a
    # regression (a hang), it measures nothing.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(REGEX_RULE.format(name="words", rx="^([a-z]+)+$"))
    argument = '{"s": "' + "a" * 40 + '!"}'
    cmd = [sys.executable, "-m", "policy.cli", "explain", "--config", str(cfg), "--agent", "a", "--tool", "x.y"]
    proc = subprocess.run([*cmd, "--args", argument, "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rule"] == "default"  # no match, so nothing allows it


def test_regexes_search_and_dollar_is_the_end_of_the_text(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(REGEX_RULE.format(name="words", rx="^[a-z]+$"))
    ps = compile_policies(load_config(str(cfg)))
    allowed = [decide(ToolCall("a", "cli", "x", "y", {"s": s}), ps).action.value for s in ("abc", "abc\n", "ab1")]
    assert allowed == ["allow", "deny", "deny"]  # Python's `$` would also pass "abc\n"


BOMB = "version: 1\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_yaml_alias_bomb_is_refused_quickly_with_exit_two_and_small_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    assert len(BOMB) < 1024
    script = (
        "import resource, subprocess, sys\n"
        f"p = subprocess.run([sys.executable, '-m', 'policy.cli', 'check', '--config', {str(bomb)!r}],"
        " capture_output=True, text=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(p.stdout + p.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    status, max_rss_kb = map(int, proc.stdout.split("\n", 1)[0].split())
    assert status == 2, proc.stdout
    assert max_rss_kb < 200_000, proc.stdout  # the expanded document would be ~390 million values
    assert f"{bomb}:7: YAML aliases expand to more than" in proc.stdout
    assert "Traceback" not in proc.stdout


def test_too_many_yaml_aliases_are_refused_at_the_alias_line() -> None:
    text = "version: 1\nx: &x 1\ny: [" + ", ".join(["*x"] * 300) + "]\n"
    with pytest.raises(ConfigError, match="more than 200 YAML aliases") as err:
        load_config_text(text, "many.yaml")
    assert err.value.line == 3


def test_a_yaml_value_that_contains_itself_is_refused() -> None:
    with pytest.raises(ConfigError, match="refers to a value that contains it"):
        load_config_text("version: 1\npolicies: &p [{name: x, rules: *p}]\n", "cycle.yaml")


def test_yaml_nested_too_deeply_is_refused() -> None:
    with pytest.raises(ConfigError, match="nested deeper than 64"):
        load_config_text("version: 1\nx: " + "[" * 100 + "]" * 100 + "\n", "deep.yaml")
    with pytest.raises(ConfigError, match="nested deeper than 64"):
        load_config_text("version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", "deeper.yaml")


def test_a_few_anchors_for_shared_rule_parts_still_load() -> None:
    text = (
        "version: 1\npolicies:\n  - name: p\n    rules:\n"
        "      - {tools: [a.b], when: &tmp {args.path: {glob: /tmp/**}}, action: allow}\n"
        "      - {tools: [a.c], when: *tmp, action: allow}\n"
    )
    assert len(load_config_text(text, "anchors.yaml").config.policies[0].rules) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nb: &b {k: 1}\nc: {<<: *b, j: 2}\npolicies: []\n", "invalid YAML"),  # merge keys: no constructor
        ("version: 1\napproval: {hold_seconds: " + "9" * 5000 + "}\npolicies: []\n", "invalid YAML"),  # int limit
        ("version: 1\npolicies: !!python/object/apply:os.system [id]\n", "policies"),  # a tag builds nothing
    ],
)
def test_a_value_yaml_cannot_construct_is_a_config_error_with_its_line_not_a_crash(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_config_text(text, "odd.yaml")
    assert err.value.line is not None
