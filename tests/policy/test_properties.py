"""Property tests: decide() never raises and never allows where a matching deny rule comes first."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policy import ToolCall, compile_policies, decide, load_config_text
from policy.model import Action

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
arguments = st.dictionaries(
    st.sampled_from(["path", "amount", "argv", "x", "namespace", ""]) | st.text(max_size=6), json_values, max_size=5
)
names = st.text(alphabet="abcdefgh._-*?[]/", min_size=0, max_size=16)

CONFIG = """
version: 1
policies:
  - name: guarded
    agent: "*"
    rules:
      - tools: ["fs.write_*", "*.delete*"]
        when: {args.path: {glob: "/etc/**"}}
        action: deny
      - tools: ["*"]
        when: {args.amount: {gt: 10}}
        action: deny
      - tools: ["*"]
        any: [{args.argv: {contains: "--force"}}, {args.namespace: {startswith: prod}}]
        action: deny
      - tools: ["*"]
        when: {args.path: {regex: "^/tmp/"}}
        action: allow
      - tools: ["*"]
        not: {args.x: {exists: true}}
        action: allow
      - tools: ["*"]
        action: human_approval
"""
PS = compile_policies(load_config_text(CONFIG, "prop.yaml"))
DENY_RULES = [r for r in PS.policies[0].rules if r.action is Action.DENY]


@settings(max_examples=400, deadline=None)
@given(agent=names, server=names, tool=names, args=arguments)
def test_decide_never_raises_and_never_allows_past_a_matching_deny(
    agent: str, server: str, tool: str, args: dict[str, Any]
) -> None:
    call = ToolCall(agent, "mcp_stdio", server, tool, args)
    decision = decide(call, PS)
    assert decision.action in set(Action)
    for rule in DENY_RULES:
        if not rule.matches_tool(call.full_name):
            continue
        try:
            holds = rule.predicate is None or rule.predicate(call)
        except Exception:
            holds = True  # an evaluation error must fail closed
        if holds:
            assert decision.action is Action.DENY, (rule.id, decision)
            break


@settings(max_examples=200, deadline=None)
@given(tool=names, args=arguments)
def test_an_evaluation_error_never_becomes_an_allow(tool: str, args: dict[str, Any]) -> None:
    call = ToolCall("a", "mcp_stdio", "fs", "write_file", {**args, "amount": "not a number"})
    assert decide(call, PS).action is Action.DENY
