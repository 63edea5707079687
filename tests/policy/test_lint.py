"""The linter behind `agent-mesh check` (policy/core/lint.py): all errors at once, did-you-mean, each warning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.core.catalogue import ToolCatalogue, catalogue_for
from policy.core.config import load_config_text
from policy.core.errors import ConfigError, ConfigErrors
from policy.core.lint import Problem, compile_problems, covers_glob, problems_of, shadowed, unknown_tool, warnings
from tests.addons.conftest import OAS_EXAMPLES, require


def lint(text: str, catalogue: ToolCatalogue | None = None) -> list[Problem]:
    loaded = load_config_text(text, "mesh.yaml")
    cat = catalogue if catalogue is not None else catalogue_for(loaded.config, ".")
    return compile_problems(loaded) + warnings(loaded, cat)


def codes(problems: list[Problem], only: str = "") -> list[tuple[str, int | None]]:
    return [(p.code, p.line) for p in problems if p.code.startswith(only)]


def load_errors(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "mesh.yaml")
    return problems_of(caught.value)


# -- errors: all at once, with lines -----------------------------------------------------------------------


def test_every_load_error_is_reported_at_once_each_on_its_own_line() -> None:
    found = load_errors(
        "version: 1\n"
        "polices: []\n"  # 2
        "agents: {a: {tokn: x}}\n"  # 3
        "policies:\n"
        "  - name: p\n"
        "    rules:\n"
        "      - {tools: [x], action: alow}\n"  # 7
        "      - {tools: [y]}\n"  # 8: action missing
    )
    assert codes(found) == [("E002", 2), ("E002", 3), ("E004", 7), ("E003", 8)]
    assert "and 3 more" not in " ".join(p.message for p in found)


def test_a_load_error_list_reads_as_its_first_error_where_one_is_expected() -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_config_text("version: 1\nbogus: 1\nother: 2\n", "mesh.yaml")
    assert (caught.value.line, caught.value.path) == (2, "bogus")
    assert str(caught.value).splitlines() == ["mesh.yaml:2: bogus: unknown key", "mesh.yaml:3: other: unknown key"]


@pytest.mark.parametrize(
    ("typo", "line", "meant"),
    [
        ("polices: []", "polices: []", "policies"),
        ("servers: {gh: {opnapi: x.json}}", "servers: {gh: {opnapi: x.json}}", "openapi"),
        ("policies: [{name: p, rules: [{tools: [x], action: deny, wehn: {}}]}]", None, "when"),
        ("policies: [{name: p, rules: [{tools: [x], action: deny, nott: {}}]}]", None, "not"),
        ("traces: {redcat: [x]}", None, "redact"),
    ],
)
def test_an_unknown_key_says_which_known_key_it_is_most_like(typo: str, line: str | None, meant: str) -> None:
    (problem,) = load_errors(f"version: 1\n{typo}\n")
    assert problem.code == "E002"
    assert problem.message == f"unknown key (did you mean {meant!r}?)"


def test_an_unknown_key_like_no_known_one_gets_no_guess() -> None:
    (problem,) = load_errors("version: 1\nzzzzzz: 1\n")
    assert problem.message == "unknown key"


def test_errors_in_several_policy_files_and_the_main_file_come_together(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text("name: a\nrules: [{tools: [x], action: nope}]\n")
    (tmp_path / "policies" / "b.yaml").write_text("name: b\nagnt: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config_text("version: 1\nbogus: 1\npolicy_dir: policies\n", "mesh.yaml", str(tmp_path))
    where = [(Path(p.file or "").name, p.line, p.code) for p in problems_of(caught.value)]
    assert where == [("mesh.yaml", 2, "E002"), ("a.yaml", 2, "E004"), ("b.yaml", 2, "E002")]


def test_every_duplicate_policy_name_is_reported() -> None:
    found = load_errors(
        "version: 1\npolicies:\n  - {name: a}\n  - {name: a}\n  - {name: b}\n  - {name: b}\n  - {name: a}\n"
    )
    assert codes(found) == [("E005", 4), ("E005", 6), ("E005", 7)]


def test_every_rule_that_does_not_compile_is_reported_not_only_the_first() -> None:
    found = lint(
        "version: 1\npolicies:\n  - name: p\n    agent: '[x'\n    rules:\n"
        "      - {tools: ['[a'], action: deny}\n"  # 6
        "      - {tools: [x], when: {args.n: {frobnicate: 1}}, action: deny}\n"  # 7
        "      - {tools: [y], action: allow}\n"
    )
    assert [(p.code, p.line) for p in found if p.severity == "error"] == [("E006", 4), ("E006", 6), ("E006", 7)]


def test_a_misspelt_condition_field_or_operator_names_the_one_it_is_most_like() -> None:
    found = lint(
        "version: 1\npolicies:\n  - name: p\n    rules:\n"
        "      - {tools: [x], when: {surfce: cli}, action: deny}\n"
        "      - {tools: [x], when: {args.path: {glb: '/tmp/**'}}, action: deny}\n"
    )
    assert [(p.code, p.line) for p in found] == [("E006", 5), ("E006", 6)]
    assert "(did you mean 'surface'?)" in found[0].message
    assert "(did you mean 'glob'?)" in found[1].message


# -- W001 unknown-agent ------------------------------------------------------------------------------------


def test_a_policy_for_an_agent_not_in_agents_is_a_warning_with_a_guess() -> None:
    found = lint("version: 1\nagents: {claude: {}}\npolicies:\n  - {name: p, agent: clade}\n")
    assert codes(found) == [("W001", 4)]
    assert "did you mean 'claude'?" in found[0].message


def test_a_glob_agent_matching_a_listed_agent_or_no_agents_list_is_fine() -> None:
    assert lint("version: 1\nagents: {team-a: {}}\npolicies:\n  - {name: p, agent: 'team-*'}\n") == []
    assert lint("version: 1\npolicies:\n  - {name: p, agent: anyone}\n") == []
    found = lint("version: 1\nagents: {claude: {}}\npolicies:\n  - {name: p, agent: 'team-*'}\n")
    assert codes(found) == [("W001", 4)]
    assert "matches no agent" in found[0].message


# -- W002 unknown-tool -------------------------------------------------------------------------------------


def test_a_tool_under_a_server_nobody_knows_is_a_warning_with_a_guess() -> None:
    found = lint(
        "version: 1\nservers: {github: {mcp_url: 'http://127.0.0.1:9/mcp'}}\n"
        "policies:\n  - name: p\n    rules:\n      - {tools: [githb.create_issue, 'github.*'], action: deny}\n"
    )
    assert codes(found) == [("W002", 6)]
    assert found[0].path == "policies[0].rules[0].tools[0]"
    assert "no server 'githb' is known" in found[0].message
    assert "did you mean 'github'?" in found[0].message


def test_a_tool_a_local_openapi_spec_does_not_have_is_a_warning_naming_the_closest() -> None:
    spec = require(OAS_EXAMPLES / "3.0/yaml/petstore.yaml")
    found = lint(
        f"version: 1\nservers: {{pets: {{openapi: '{spec}'}}}}\npolicies:\n  - name: p\n    rules:\n"
        "      - {tools: [pets.getPetById, 'pets.find*'], action: allow}\n"
        "      - {tools: [pets.getPetByID, 'pets.zap*'], action: deny}\n"
    )
    assert [(p.code, p.path) for p in found] == [
        ("W002", "policies[0].rules[1].tools[0]"),
        ("W002", "policies[0].rules[1].tools[1]"),
    ]
    assert "did you mean 'pets.getPetById'" in found[0].message
    assert "OpenAPI spec" in found[0].message


def test_generic_globs_plain_http_and_servers_with_unknown_tools_are_never_warned_about() -> None:
    cat = ToolCatalogue()
    cat.add_server("notes")
    cat.add("pets", ["listPets"], "a spec")
    for pattern in ["*", "*.read_*", "sh", "notes.anything", "pets.GET /pets/*", "api.example.com.GET /x"]:
        assert unknown_tool(pattern, cat) is None, pattern


def test_a_plain_http_rule_for_an_unlisted_host_warns_when_unknown_hosts_never_asks_the_policy() -> None:
    message = unknown_tool("api.example.com.GET /x", ToolCatalogue(), "deny")
    assert message is not None
    assert "proxy.unknown_hosts is deny" in message


def test_discovered_tools_make_their_server_known() -> None:
    cat = ToolCatalogue()
    cat.add("fs", ["read_file", "write_file"], "pins")
    assert unknown_tool("fs.read_*", cat) is None
    assert unknown_tool("fs.delete_*", cat) is not None


def test_a_spec_at_a_url_is_not_fetched_and_its_server_takes_any_tool_name() -> None:
    loaded = load_config_text("version: 1\nservers: {gh: {openapi: 'https://127.0.0.1:9/spec.json'}}\n", "m.yaml")
    cat = catalogue_for(loaded.config, ".")
    assert cat.tools_of("gh") is None
    assert cat.troubles == []


def test_an_unreadable_local_spec_is_a_warning_at_its_key() -> None:
    found = lint("version: 1\nservers:\n  gh: {openapi: /nonexistent/spec.json}\n")
    assert codes(found) == [("W005", 3)]
    assert found[0].path == "servers.gh.openapi"


# -- W003 shadowed-rule ------------------------------------------------------------------------------------


def test_a_rule_an_earlier_unconditional_broader_rule_always_answers_is_shadowed() -> None:
    found = lint(
        "version: 1\npolicies:\n  - name: p\n    rules:\n"
        "      - {name: reads, tools: ['github.get*', 'github.list*'], action: allow}\n"  # 5
        "      - {tools: [github.get_issue], action: deny}\n"  # 6: shadowed
        "      - {tools: ['github.list_*', github.create_issue], when: {args.x: 1}, action: deny}\n"  # 7: not covered
        "      - {tools: [github.create_issue], action: deny}\n"  # 8: the conditional rule 7 does not shadow
        "      - {tools: [github.create_issue], action: allow}\n"  # 9: shadowed by 8
    )
    assert codes(found, "W003") == [("W003", 6), ("W003", 9)]
    assert "'reads'" in next(p for p in found if p.code == "W003").message


def test_a_catch_all_rule_shadows_everything_after_it_in_its_policy_only() -> None:
    found = lint(
        "version: 1\npolicies:\n"
        "  - {name: a, rules: [{tools: ['*'], action: deny}, {tools: ['x.y'], action: allow}]}\n"
        "  - {name: b, rules: [{tools: ['x.y'], action: allow}]}\n"
    )
    assert codes(found, "W003") == [("W003", 3)]


def test_the_built_in_default_policy_has_no_warnings() -> None:
    from policy.core.config import default_config_text

    assert lint(default_config_text()) == []


@pytest.mark.parametrize(
    ("wide", "narrow", "covers"),
    [
        ("*", "anything", True),
        ("github.*", "github.get*", True),
        ("github.get*", "github.*", False),
        ("*.read_*", "fs.read_file", True),
        ("a*b", "a*", False),
        ("a*", "a*b", True),
        ("a?", "a*", False),
        ("a?", "a?", True),
        ("x.[ab]", "x.a", False),  # unsure with a class: never claimed
    ],
)
def test_glob_cover(wide: str, narrow: str, covers: bool) -> None:
    assert covers_glob(wide, narrow) is covers


STAR_GLOB = st.text(alphabet="ab.*", max_size=6)


@given(wide=STAR_GLOB, narrow=STAR_GLOB, sample=st.text(alphabet="ab.c", max_size=8))
def test_a_glob_said_to_cover_another_matches_every_name_the_other_matches(wide: str, narrow: str, sample: str) -> None:
    def matches(glob: str, name: str) -> bool:
        return re.fullmatch("".join(".*" if c == "*" else re.escape(c) for c in glob), name, re.S) is not None

    if covers_glob(wide, narrow) and matches(narrow, sample):
        assert matches(wide, sample)


@given(names=st.lists(st.sampled_from(["a.b", "a.*", "*", "a.c", "b.*"]), min_size=1, max_size=4))
def test_a_rule_is_never_shadowed_by_a_later_one(names: list[str]) -> None:
    loaded = load_config_text(
        "version: 1\npolicies:\n  - name: p\n    rules:\n"
        + "".join(f"      - {{tools: ['{n}'], action: deny}}\n" for n in names),
        "m.yaml",
    )
    for i, why in shadowed(loaded.config.policies[0]):
        assert i > 0
        assert any(covers_glob(w, names[i]) for w in names[:i]), why


# -- W004 agent-without-token ------------------------------------------------------------------------------


def test_an_agent_without_a_token_next_to_agents_with_one_is_a_warning() -> None:
    found = lint("version: 1\nagents:\n  claude: {token: s3cret}\n  pybot: {}\n  ci: {token: t0ken}\n")
    assert codes(found) == [("W004", 4)]
    assert found[0].path == "agents.pybot"
    assert "any password" in found[0].message


def test_agents_all_without_tokens_are_fine() -> None:
    assert lint("version: 1\nagents: {a: {}, b: {}}\n") == []


# -- any config, however wrong: findings, never a crash ----------------------------------------------------

KEYS = ["version", "agents", "servers", "policies", "polices", "name", "agent", "rules", "tools", "action", "when",
        "wehn", "token", "openapi", "method_override", "not", "any", "traces", "redact", "x"]  # fmt: skip
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["*", "a.b", "deny", "[x", "", "a*"]))
TREE = st.recursive(
    LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)


@given(data=st.dictionaries(st.sampled_from(KEYS), TREE, max_size=5))
def test_any_config_gets_findings_with_lines_never_a_crash(data: dict[str, object]) -> None:
    import yaml

    text = yaml.safe_dump(data)
    try:
        loaded = load_config_text(text, "m.yaml")
    except ConfigError as exc:
        found = problems_of(exc)
        assert found
        assert all(p.severity == "error" and p.file == "m.yaml" for p in found)
        return
    for p in compile_problems(loaded) + warnings(loaded, catalogue_for(loaded.config, ".")):
        assert p.file == "m.yaml"
        assert p.line is not None
        assert str(p).startswith("m.yaml:")


PATTERNS = st.sampled_from(["*", "a.*", "a.b", "b.c*", "*.read_*", "[x", "a.?", "h.example.GET /x", "a.b*c"])
RULE = st.fixed_dictionaries(
    {"tools": st.lists(PATTERNS, min_size=1, max_size=3), "action": st.sampled_from(["allow", "deny", "ask"])},
    optional={"when": st.just({"args.x": 1}), "name": st.sampled_from(["r", "s"])},
)
POLICY = st.fixed_dictionaries(
    {"name": st.text("pq", min_size=1, max_size=3), "agent": st.sampled_from(["*", "c", "c*", "z", "[c"])},
    optional={"rules": st.lists(RULE, max_size=5)},
)


@given(
    agents=st.dictionaries(st.sampled_from(["c", "d"]), st.sampled_from([{}, {"token": "t"}]), max_size=2),
    servers=st.lists(st.sampled_from(["a", "b", "h"]), unique=True, max_size=3),
    policies=st.lists(POLICY, max_size=3, unique_by=lambda p: str(p["name"])),
    hosts=st.sampled_from(["policy", "deny", "allow"]),
)
def test_any_well_formed_config_is_linted_with_every_finding_pointing_into_it(
    agents: dict[str, object], servers: list[str], policies: list[object], hosts: str
) -> None:
    import yaml

    data = {"version": 1, "agents": agents, "servers": {s: {} for s in servers}, "policies": policies,
            "proxy": {"unknown_hosts": hosts}}  # fmt: skip
    loaded = load_config_text(yaml.safe_dump(data), "m.yaml")
    errors = compile_problems(loaded)
    for p in errors + warnings(loaded, catalogue_for(loaded.config, ".")):
        assert (p.file, p.line is not None) == ("m.yaml", True)
        assert p.path.startswith(("policies[", "agents.")), p
    assert all("[x" in str(p) or "[c" in str(p) for p in errors)
