"""Grants: temporary permissions (agent glob, tool glob, optional `when` on arguments) that lift
`human_approval` — never `deny`. Parsing and matching here; the records live in the store."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy.core.conditions import CompileError, EvalError, Predicate, compile_block, compile_glob
from policy.core.model import ToolCall
from policy.store.base import Grant

_GLOB_CHARS = re.compile(r"([*?\[])")


def literal_glob(name: str) -> str:
    """A glob matching exactly `name`, even when the name holds `*`, `?` or `[`."""
    return _GLOB_CHARS.sub(r"[\1]", name)


@dataclass(frozen=True, slots=True)
class CompiledGrant:
    agent: re.Pattern[str]
    tool: re.Pattern[str]
    predicate: Predicate | None


def compile_grant(agent: str, tool: str, when: Mapping[str, Any] | None) -> CompiledGrant:
    """Compile a grant's patterns. Raises ValueError naming the part that is wrong."""
    try:
        agent_rx = compile_glob(agent)
    except ValueError as exc:
        raise ValueError(f"agent: {exc}") from None
    try:
        tool_rx = compile_glob(tool)
    except ValueError as exc:
        raise ValueError(f"tool: {exc}") from None
    predicate = None
    if when is not None:
        try:
            predicate = compile_block(when)
        except CompileError as exc:
            where = ".".join(str(p) for p in exc.path)
            raise ValueError(f"when{'.' + where if where else ''}: {exc.message}") from None
    return CompiledGrant(agent_rx, tool_rx, predicate)


class GrantMatcher:
    """Matches calls against grants, compiling each grant once; a grant that cannot compile never matches."""

    def __init__(self) -> None:
        self._compiled: dict[str, CompiledGrant | None] = {}

    def matches(self, grant: Grant, call: ToolCall) -> bool:
        if grant.id not in self._compiled:
            try:
                self._compiled[grant.id] = compile_grant(grant.agent, grant.tool, grant.when)
            except ValueError:
                self._compiled[grant.id] = None
        compiled = self._compiled[grant.id]
        if compiled is None:
            return False
        if not compiled.agent.match(call.agent) or not compiled.tool.match(call.full_name):
            return False
        if compiled.predicate is None:
            return True
        try:
            return compiled.predicate(call)
        except EvalError:
            return False  # an argument the condition cannot judge is not covered by the grant
