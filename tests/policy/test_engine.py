"""The engine's mechanics beyond the tables: indexing, caches, policy order, fail-closed on bugs."""

from __future__ import annotations

from policy import ToolCall, compile_policies, decide, load_config_text
from policy.engine import CATCH_ALL, EXACT, GLOB, PolicySet
from policy.model import Action


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
