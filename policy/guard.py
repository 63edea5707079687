"""The built-in guard: no tool call may reach the mesh's own state (approvals, grants, the operator token).

An agent that could write `state.db` or read `operator.token` could approve its own calls, so any call whose
arguments name the state dir is denied before the policy is consulted — whatever the policy says.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from policy.model import Action, Decision, ToolCall

GUARD_RULE = "guard/state-dir"
_MAX_DEPTH = 32
# A name counts only as whole path segments: preceded by the start, a slash, a space, a quote, `=` or `:`,
# and followed by the end, a slash, a space or a quote.
_BEFORE = r"""(?<![^/\s'"=:])"""
_AFTER = r"""(?![^/\s'"])"""


_SCALARS = frozenset({int, float, bool, type(None)})


def _strings(value: Any, out: list[str], depth: int = 0) -> list[str]:
    """Every string in `value`, keys included, appended to `out`. Exact types are tested before the ABCs:
    for the small arguments of most calls, the ABC checks cost more than the rest of the walk."""
    kind = type(value)
    if kind is str:
        out.append(value)
        return out
    children: Iterable[Any]
    if kind is not dict and kind is not list and isinstance(value, str):
        out.append(value)
        return out
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        for k in value:
            out.append(k if type(k) is str else str(k))
        children = value.values()
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        children = value
    else:
        return out
    if depth >= _MAX_DEPTH and len(value):  # its children would be deeper than the limit
        raise ValueError(f"arguments nested deeper than {_MAX_DEPTH} levels cannot be inspected")
    for v in children:
        if type(v) is str:
            out.append(v)
        elif type(v) not in _SCALARS:
            _strings(v, out, depth + 1)
    return out


def state_guard(state_dir: str) -> Callable[[ToolCall], Decision | None]:
    """A check that denies calls whose arguments mention the state dir (by absolute path, or by its folder
    name when that name is the mesh's own, like `.agent-mesh`) or the operator token file."""
    absolute = os.path.abspath(state_dir)
    names = {absolute, os.path.realpath(absolute), "operator.token"}
    name = os.path.basename(absolute)
    if "agent-mesh" in name:
        names.add(name)
    # Whole path segments only: `/srv/state` must not match `/srv/statement.txt`.
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(f"{_BEFORE}(?:{alternatives}){_AFTER}")

    def check(call: ToolCall) -> Decision | None:
        try:
            texts = _strings(call.arguments, [])
        except ValueError as exc:  # what cannot be inspected is refused, never waved through
            return Decision(Action.DENY, GUARD_RULE, f"fail closed: {exc}", considered=())
        for text in texts:
            m = pattern.search(text)
            if m is not None:
                needle = m.group(0)
                return Decision(
                    Action.DENY,
                    GUARD_RULE,
                    f"the arguments name agent-mesh's own state ({needle!r}): agents may not read or change "
                    "approvals, grants or the operator token",
                    considered=(),
                )
        return None

    return check
