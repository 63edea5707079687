"""The decision engine: `decide(call, policy_set, now)` — pure, synchronous, fail closed.

Policies are compiled once (`compile_policies`): globs, regexes and field paths become predicates, and
rules are indexed by exact tool name, so a call only looks at the rules that can match its tool.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from policy.core.conditions import (
    CompileError,
    EvalError,
    Predicate,
    compile_block,
    compile_glob_linear,
    compile_test,
    is_glob,
)
from policy.core.config import Config, LoadedConfig, LoopDetection, PolicySource, PolicySpec, RateLimit, Rule
from policy.core.linear import Linear, LinearSet
from policy.core.model import Action, Decision, ToolCall, canonical_json

_CACHE_LIMIT = 8192
_CACHED_NAME = 512  # longer tool or agent names are matched each time, never kept

# Specificity classes of a policy's agent pattern: lower is considered first.
EXACT, GLOB, CATCH_ALL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    index: int
    action: Action
    exact_tools: frozenset[str]
    tool_globs: tuple[Linear, ...]
    predicate: Predicate | None
    reason: str | None

    def matches_tool(self, full_name: str) -> bool:
        return full_name in self.exact_tools or any(g.match(full_name) for g in self.tool_globs)


@dataclass(slots=True)
class CompiledPolicy:
    name: str
    agent: str
    agent_rx: Linear
    specificity: int
    order: int
    rules: tuple[CompiledRule, ...]
    rate_limit: RateLimit | None
    loop_detection: LoopDetection | None
    by_exact_tool: dict[str, tuple[int, ...]]
    glob_rules_by_server: dict[str, tuple[int, ...]]
    glob_rules: tuple[int, ...]
    _candidates: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    _glob_sets: dict[str | None, LinearSet] = field(default_factory=dict)

    def _glob_set(self, server: str | None) -> LinearSet:
        """One RE2 set of the globs that can match a server's tools (None: a server no glob names)."""
        found = self._glob_sets.get(server)
        if found is None:
            owners = (*self.glob_rules_by_server.get(server, ()), *self.glob_rules) if server else self.glob_rules
            pairs = [(g, i) for i in owners for g in self.rules[i].tool_globs]
            found = LinearSet([g for g, _ in pairs], [i for _, i in pairs])
            self._glob_sets[server] = found
        return found

    def candidates(self, full_name: str) -> tuple[CompiledRule, ...]:
        """The rules whose tool patterns match, in order; cached per tool name."""
        hit = self._candidates.get(full_name)
        if hit is None:
            idx = set(self.by_exact_tool.get(full_name, ()))
            server = full_name.partition(".")[0]
            idx |= self._glob_set(server if server in self.glob_rules_by_server else None).matching(full_name)
            hit = tuple(self.rules[i] for i in sorted(idx))
            if len(full_name) > _CACHED_NAME:
                return hit  # an agent's 1 MB tool names, 8192 of them, would hold 8 GB
            if len(self._candidates) >= _CACHE_LIMIT:
                self._candidates.clear()
            self._candidates[full_name] = hit
        return hit


class PolicySet:
    """Compiled policies in evaluation order, plus the config they came from."""

    def __init__(self, config: Config, policies: list[CompiledPolicy], policy_hash: str) -> None:
        self.config = config
        self.policies = tuple(sorted(policies, key=lambda p: (p.specificity, p.order)))
        self.policy_hash = policy_hash
        self._by_agent: dict[str, tuple[CompiledPolicy, ...]] = {}

    def for_agent(self, agent: str) -> tuple[CompiledPolicy, ...]:
        """The policies whose agent pattern matches, most specific first; cached per agent."""
        hit = self._by_agent.get(agent)
        if hit is None:
            hit = tuple(p for p in self.policies if p.agent_rx.match(agent))
            if len(agent) > _CACHED_NAME:
                return hit
            if len(self._by_agent) >= _CACHE_LIMIT:
                self._by_agent.clear()
            self._by_agent[agent] = hit
        return hit

    def policy(self, name: str) -> CompiledPolicy | None:
        return next((p for p in self.policies if p.name == name), None)


def _specificity(agent: str) -> int:
    if agent == "*" or set(agent) == {"*"}:
        return CATCH_ALL
    return GLOB if is_glob(agent) else EXACT


def _seed_predicate(
    rule: Rule, src: PolicySource, base: tuple[str | int, ...], servers: frozenset[str]
) -> list[Predicate]:
    preds: list[Predicate] = []
    seeds = ([("condition", rule.condition)] if rule.condition else []) + [
        (("conditions", i), c) for i, c in enumerate(rule.conditions or [])
    ]
    for where, cond in seeds:
        assert cond is not None
        name = cond.field.removeprefix("params.")
        fieldname = name if name.startswith(("args.", "http.", "tool.")) or name in _PLAIN else f"args.{name}"
        path = (*base, *(where if isinstance(where, tuple) else (where,)))
        try:
            preds.append(compile_test(fieldname, {cond.operator: cond.value}, (), servers))
        except CompileError as exc:
            raise src.error((*path, "operator") if exc.path else path, exc.message) from None
    return preds


_PLAIN = {"agent", "server", "surface", "tool"}


def _compile_rule(policy: PolicySpec, i: int, rule: Rule, src: PolicySource, servers: frozenset[str]) -> CompiledRule:
    base: tuple[str | int, ...] = ("rules", i)
    exact: set[str] = set()
    globs: list[Linear] = []
    for j, pattern in enumerate(rule.tools):
        if is_glob(pattern):
            try:
                globs.append(compile_glob_linear(pattern))
            except ValueError as exc:
                raise src.error((*base, "tools", j), str(exc)) from None
        else:
            exact.add(pattern)
    preds: list[Predicate] = []
    blocks: list[tuple[str, Any]] = [("when", rule.when), ("any", {"any": rule.any} if rule.any else None)]
    blocks.append(("not", {"not": rule.not_} if rule.not_ is not None else None))
    for key, block in blocks:
        if block is None:
            continue
        try:
            preds.append(compile_block(block, (), servers))
        except CompileError as exc:
            sub = exc.path[1:] if key in ("any", "not") else exc.path
            raise src.error((*base, key, *sub), f"{exc.message} (rule {_rule_id(policy, i, rule)})") from None
    preds += _seed_predicate(rule, src, base, servers)
    predicate: Predicate | None = None
    if len(preds) == 1:
        predicate = preds[0]
    elif preds:
        predicate = lambda call: all(p(call) for p in preds)  # noqa: E731
    return CompiledRule(
        _rule_id(policy, i, rule), i, rule.action, frozenset(exact), tuple(globs), predicate, rule.reason
    )


def _rule_id(policy: PolicySpec, i: int, rule: Rule) -> str:
    return f"{policy.name}/{rule.name}" if rule.name else f"{policy.name}/rules[{i}]"


def _literal_server(pattern: str) -> str | None:
    """The server part of a tool glob when it has no wildcard (`github` for `github.get*`), else None."""
    server, dot, _ = pattern.partition(".")
    return server if dot and not is_glob(server) else None


def compile_policies(loaded: LoadedConfig) -> PolicySet:
    """Compile every policy of a loaded config. Raises ConfigError naming file, line and key path."""
    compiled: list[CompiledPolicy] = []
    known_servers = frozenset(loaded.config.servers)
    for order, (spec, src) in enumerate(zip(loaded.config.policies, loaded.sources, strict=True)):
        try:
            agent_rx = compile_glob_linear(spec.agent)
        except ValueError as exc:
            raise src.error(("agent",), str(exc)) from None
        rules = tuple(_compile_rule(spec, i, r, src, known_servers) for i, r in enumerate(spec.rules))
        by_exact: dict[str, list[int]] = {}
        by_server: dict[str, list[int]] = {}
        unindexed: list[int] = []
        for r, rule_spec in zip(rules, spec.rules, strict=True):
            for name in r.exact_tools:
                by_exact.setdefault(name, []).append(r.index)
            if r.tool_globs:
                # a glob whose server part is literal (`github.get*`) can only match that server's tools
                servers = {_literal_server(t) for t in rule_spec.tools if is_glob(t)}
                if None in servers:
                    unindexed.append(r.index)
                else:
                    for srv in servers:
                        by_server.setdefault(str(srv), []).append(r.index)
        compiled.append(
            CompiledPolicy(
                name=spec.name,
                agent=spec.agent,
                agent_rx=agent_rx,
                specificity=_specificity(spec.agent),
                order=order,
                rules=rules,
                rate_limit=spec.rate_limit,
                loop_detection=spec.loop_detection,
                by_exact_tool={k: tuple(v) for k, v in by_exact.items()},
                glob_rules_by_server={k: tuple(v) for k, v in by_server.items()},
                glob_rules=tuple(unindexed),
            )
        )
    digest = hashlib.sha256(canonical_json(loaded.config.model_dump(mode="json")).encode()).hexdigest()
    return PolicySet(loaded.config, compiled, digest[:16])


def decide(call: ToolCall, policy_set: PolicySet, now: float = 0.0) -> Decision:
    """The policy's answer for one call. Never raises: any evaluation error is a deny naming the rule."""
    full_name = call.full_name
    considered: list[str] = []
    try:
        for policy in policy_set.for_agent(call.agent):
            considered.append(policy.name)
            for rule in policy.candidates(full_name):
                if rule.predicate is not None:
                    try:
                        if not rule.predicate(call):
                            continue
                    except EvalError as exc:
                        return Decision(
                            Action.DENY,
                            rule.id,
                            f"fail closed: a condition of {rule.id} could not be evaluated: {exc}",
                            policy.name,
                            errors=(str(exc),),
                            considered=tuple(considered),
                        )
                reason = rule.reason or f"{rule.id} {_VERB[rule.action]} {full_name}"
                return Decision(rule.action, rule.id, reason, policy.name, considered=tuple(considered))
    except Exception as exc:  # a bug must never turn into an allow
        return Decision(
            Action.DENY,
            "error",
            f"fail closed: evaluation error {type(exc).__name__}: {exc}",
            errors=(repr(exc),),
            considered=tuple(considered),
        )
    where = f"in {', '.join(considered)}" if considered else "(no policy applies to this agent)"
    return Decision(
        Action.DENY,
        "default",
        f"no rule matches {call.agent} calling {full_name} {where}: denied by default",
        considered=tuple(considered),
    )


_VERB = {Action.ALLOW: "allows", Action.DENY: "denies", Action.HUMAN_APPROVAL: "needs human approval for"}
