"""Request path -> OpenAPI operation, through a segment trie compiled once per spec.

At each segment a literal beats a partial template (`{name}.json`), which beats a whole-segment
template (`{id}`); the matcher backtracks when a branch has no operation for the method. A template
ending in a parameter named like a path (`{path}`, `{file_path}`, `{ref}`) also takes several segments as
a last resort (GitHub's `/repos/{owner}/{repo}/contents/{path}` takes `docs/a.md`); no other parameter
does, so an undocumented deeper path never passes for a documented operation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from addons.openapi_spec import Operation
from addons.request_canon import canonical_path
from policy.core.model import readonly

_PARAM = re.compile(r"\{([^{}]+)\}")
_Leaf = tuple[Operation, tuple[str, ...]]


@readonly
class RouteMatch:
    """The operation a request maps to, with its path parameters (decoded)."""

    operation: Operation
    path_params: dict[str, str]


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    partial: list[tuple[re.Pattern[str], _Node]] = field(default_factory=list)
    param: _Node | None = None
    ops: dict[str, _Leaf] = field(default_factory=dict)
    greedy: dict[str, _Leaf] = field(default_factory=dict)


def split_path(path: str) -> list[str]:
    """`/a/b%20c/` -> ["a", "b c"]: query dropped, segments percent-decoded, trailing slash ignored.

    Raises ValueError for what upstreams route differently (addons/request_canon.py): dot and empty
    segments, encoded `/` or `\\`, NUL, control characters.
    """
    return list(canonical_path(path.split("#", 1)[0]).segments)


def _spans_segments(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith("path") or lowered == "ref"


def _template_segments(template: str) -> list[str]:
    parts = template.strip("/").split("/")
    return [] if parts == [""] else parts


def _lowered(op: Operation) -> Operation:
    """The operation with its template's literal parts in lower case (parameter names left as they are)."""
    parts = _PARAM.split(op.template)  # literals at even positions, parameter names at odd ones
    template = "".join("{" + p + "}" if k % 2 else p.lower() for k, p in enumerate(parts))
    return Operation(op.method, template, op.operation_id, op.arrays)


class Router:
    """Matches (method, path) to an Operation; built once from a spec's operations."""

    def __init__(self, operations: tuple[Operation, ...] | list[Operation], *, fold: bool = True) -> None:
        self._root = _Node()
        self.size = 0
        for op in operations:
            self._add(op)
        # The same routes in lower case: Express routes case-insensitively, Starlette and Flask do not.
        self._folded = Router([_lowered(op) for op in operations], fold=False) if fold else None

    def _add(self, op: Operation) -> None:
        node = self._root
        names: list[str] = []
        segments = _template_segments(op.template)
        for i, seg in enumerate(segments):
            whole = re.fullmatch(r"\{([^{}]+)\}", seg)
            if whole:
                names.append(whole.group(1))
                if i == len(segments) - 1 and _spans_segments(whole.group(1)):
                    node.greedy.setdefault(op.method, (op, (*names,)))
                if node.param is None:
                    node.param = _Node()
                node = node.param
            elif "{" in seg:
                seg_names = _PARAM.findall(seg)
                names.extend(seg_names)
                rx = re.compile(
                    "".join("(.+?)" if k % 2 else re.escape(piece) for k, piece in enumerate(_PARAM.split(seg)))
                    + r"\Z",
                    re.DOTALL,
                )
                node = self._partial_child(node, rx)
            else:
                node = node.literal.setdefault(seg, _Node())
        # The first definition wins: a spec listing the same method and template twice is ambiguous.
        node.ops.setdefault(op.method, (op, tuple(names)))
        self.size += 1

    @staticmethod
    def _partial_child(node: _Node, rx: re.Pattern[str]) -> _Node:
        for existing, child in node.partial:
            if existing.pattern == rx.pattern:
                return child
        child = _Node()
        node.partial.append((rx, child))
        return child

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The operation for this method and path (relative to the API's base path), or None.

        HEAD falls back to the GET operation. Raises ValueError for paths with empty or dot segments.
        """
        return self.match_segments(method, split_path(path))

    def match_segments(self, method: str, segments: Sequence[str]) -> RouteMatch | None:
        """`match` for a path already split and decoded (addons/request_canon.py's CanonicalPath)."""
        method = method.upper()
        found = self._walk(self._root, segments, 0, [], method)
        if found is None and method == "HEAD":
            found = self._walk(self._root, segments, 0, [], "GET")
        if found is None:
            folded = self._folded.match_segments(method, [s.lower() for s in segments]) if self._folded else None
            if folded is not None:
                raise ValueError(
                    f"the path {'/' + '/'.join(segments)!r} is {folded.operation.tool} but for letter case: "
                    "upstreams that route case-insensitively run it"
                )
            return None
        (op, names), values = found
        return RouteMatch(op, dict(zip(names, values, strict=True)))

    def _walk(
        self, node: _Node, segs: Sequence[str], i: int, values: list[str], method: str
    ) -> tuple[_Leaf, list[str]] | None:
        if i == len(segs):
            leaf = node.ops.get(method)
            return (leaf, values) if leaf else None
        seg = segs[i]
        child = node.literal.get(seg)
        if child is not None:
            hit = self._walk(child, segs, i + 1, values, method)
            if hit:
                return hit
        for rx, pchild in node.partial:
            m = rx.match(seg)
            if m:
                hit = self._walk(pchild, segs, i + 1, [*values, *m.groups()], method)
                if hit:
                    return hit
        if node.param is not None:
            hit = self._walk(node.param, segs, i + 1, [*values, seg], method)
            if hit:
                return hit
        greedy = node.greedy.get(method)
        if greedy is not None and len(segs) - i > 1:
            return greedy, [*values, "/".join(segs[i:])]
        return None
