"""The engine's mechanics beyond the tables: indexing, caches, policy order, fail-closed on bugs."""

from __future__ import annotations

from policy import ToolCall, compile_policies, decide, load_config_text
from policy.core.engine import CATCH_ALL, EXACT, GLOB, PolicySet
from policy.core.model import Action


def _ps(text: str) -> PolicySet:
    return compile_policies(load_config_text(text, "t.yaml"))


def test_policies_are_ordered_exact_then_glob_then_catch_all_stably() -> None:
    ps = _ps(
        """
version: 1
policies:
  - {name: all-1, agent: "*", rules: []}
  - {name: glob-1, agent: "team-*", rules: []}
  - {name: exact-1, agent: ann, rules: []}
  - {name: glob-2, agent: "t*", rules: []}
  - {name: all-2, agent: "**", rules: []}
  - {name: exact-2, agent: bob, rules: []}
"""
    )
    assert [p.name for p in ps.policies] == ["exact-1", "exact-2", "glob-1", "glob-2", "all-1", "all-2"]
    assert [p.specificity for p in ps.policies] == [EXACT, EXACT, GLOB, GLOB, CATCH_ALL, CATCH_ALL]


def test_exact_tool_rules_are_indexed_so_unrelated_rules_are_not_evaluated() -> None:
    rules = "\n".join(f"      - {{tools: [svc.tool_{i}], action: deny}}" for i in range(500))
    ps = _ps(f"version: 1\npolicies:\n  - name: big\n    rules:\n{rules}\n      - {{tools: ['*'], action: allow}}\n")
    policy = ps.policies[0]
    assert len(policy.candidates("svc.tool_7")) == 2
    assert len(policy.candidates("other.x")) == 1
    assert decide(ToolCall("a", "cli", "svc", "tool_7"), ps).rule == "big/rules[7]"
    assert decide(ToolCall("a", "cli", "other", "x"), ps).action is Action.ALLOW


def test_exact_and_glob_rules_keep_their_written_order() -> None:
    ps = _ps(
        """
version: 1
policies:
  - name: p
    rules:
      - {tools: ["fs.*"], when: {args.a: {eq: 1}}, action: allow}
      - {tools: [fs.write_file], action: deny}
      - {tools: ["fs.*"], action: human_approval}
"""
    )
    assert decide(ToolCall("x", "cli", "fs", "write_file", {"a": 1}), ps).action is Action.ALLOW
    assert decide(ToolCall("x", "cli", "fs", "write_file", {"a": 2}), ps).action is Action.DENY
    assert decide(ToolCall("x", "cli", "fs", "read_file"), ps).action is Action.HUMAN_APPROVAL


def test_a_bug_in_a_predicate_fails_closed_instead_of_raising() -> None:
    ps = _ps("version: 1\npolicies:\n  - name: p\n    rules:\n      - {tools: ['*'], action: allow}\n")
    rule = ps.policies[0].rules[0]

    def broken(call: ToolCall) -> bool:
        raise KeyError("boom")

    object.__setattr__(rule, "predicate", broken)
    d = decide(ToolCall("x", "cli", "fs", "read"), ps)
    assert d.action is Action.DENY
    assert d.rule == "error"
    assert "KeyError" in d.reason


def test_explain_data_lists_the_policies_considered_in_order() -> None:
    ps = _ps(
        """
version: 1
policies:
  - {name: fallback, agent: "*", rules: [{tools: ["*"], action: human_approval}]}
  - {name: mine, agent: ann, rules: [{tools: [x.y], action: allow}]}
"""
    )
    d = decide(ToolCall("ann", "cli", "z", "w"), ps)
    assert d.considered == ("mine", "fallback")
    assert d.rule == "fallback/rules[0]"


def test_the_call_hash_is_canonical_over_argument_order() -> None:
    a = ToolCall("ann", "cli", "fs", "w", {"a": 1, "b": [1, {"c": 2, "d": 3}]})
    b = ToolCall("ann", "mcp_stdio", "fs", "w", {"b": [1, {"d": 3, "c": 2}], "a": 1})
    assert a.call_hash == b.call_hash
    assert a.call_hash != ToolCall("bob", "cli", "fs", "w", dict(a.arguments)).call_hash


def test_the_default_reads_by_name_on_an_mcp_http_server_only_when_it_is_configured() -> None:
    from policy.core.config import default_config_text

    text = default_config_text() + "servers:\n  notes: {mcp_url: 'http://127.0.0.1:9/mcp'}\n"
    ps = compile_policies(load_config_text(text, "default-plus-server.yaml"))

    def action(server: str, tool: str) -> str:
        return decide(ToolCall("a", "mcp_http", server, tool), ps).action.value

    assert action("notes", "get_note") == "allow"
    assert action("notes", "resources/read") == "allow"
    assert action("notes", "delete_note") == "human_approval"
    assert action("evil.example", "get_note") == "human_approval"
    assert action("evil.example", "resources/read") == "human_approval"


def test_a_file_uri_glob_matches_uri_and_path_spellings_of_the_same_file() -> None:
    ps = _ps(
        "version: 1\npolicies:\n  - name: p\n    rules:\n"
        "      - {tools: ['*'], when: {args.uri: {glob: 'file:///etc/**'}}, action: deny}\n"
        "      - {tools: ['*'], action: allow}\n"
    )
    for uri in ("file:///etc/passwd", "file://localhost/etc/shadow", "file:///tmp/..%2Fetc/passwd", "/etc/hosts",
                "file:///%65tc/passwd", "FILE:///etc/passwd", "file:////etc/passwd"):  # fmt: skip
        assert decide(ToolCall("a", "mcp_stdio", "fs", "resources/read", {"uri": uri}), ps).action is Action.DENY, uri
    assert (
        decide(ToolCall("a", "mcp_stdio", "fs", "resources/read", {"uri": "file:///tmp/x"}), ps).action is Action.ALLOW
    )


def test_a_glob_in_a_tool_name_runs_in_linear_time_on_a_long_agent_chosen_name() -> None:
    # `*a*a*a*a*b` on Python's re is O(n^5) over an HTTP path the agent picks; on RE2 it is one pass.
    ps = _ps("version: 1\npolicies:\n  - name: p\n    rules:\n      - {tools: ['*a*a*a*a*b'], action: allow}\n")
    call = ToolCall("a", "http", "api", "POST /" + "a" * 20_000)
    assert decide(call, ps).rule == "default"


def test_a_glob_on_a_uri_of_another_scheme_resolves_its_dot_segments_authority_included() -> None:
    ps = _ps(
        "version: 1\npolicies:\n  - name: p\n    rules:\n"
        "      - {tools: ['*'], when: {args.uri: {glob: 'demo://private/**'}}, action: deny}\n"
        "      - {tools: ['*'], when: {args.uri: {glob: 'demo://resource/static/**'}}, action: allow}\n"
    )

    def action(uri: str) -> str:
        return decide(ToolCall("a", "mcp_stdio", "e", "resources/read", {"uri": uri}), ps).action.value

    assert action("demo://private/x") == "deny"
    assert action("demo://private/a/../b") == "deny"
    assert action("demo://resource/static/1") == "allow"
    assert action("demo://resource/static/../../x") == "deny"  # no rule: the default denies
    assert action("demo://resource/../private/x") == "deny"
    assert action("demo://resource//static/./1") == "allow"


def test_long_tool_names_are_decided_but_never_kept_in_the_cache() -> None:
    """Memory stays bounded: an agent can send thousands of distinct megabyte-long tool names."""
    from policy import ToolCall, compile_policies, decide, load_config_text

    text = "version: 1\npolicies:\n  - name: p\n    agent: '*'\n    rules:\n      - {tools: ['fs.*'], action: allow}\n"
    policies = compile_policies(load_config_text(text, "p.yaml"))
    for i in range(50):
        name = f"x{i}" + "a" * 100_000
        assert decide(ToolCall("a", "mcp_stdio", "fs", name, {}), policies).action.value == "allow"
    cached = policies.policies[0]._candidates
    assert all(len(k) <= 512 for k in cached)
