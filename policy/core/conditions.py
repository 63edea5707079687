"""Globs, field paths and argument conditions, compiled once at load into plain predicates.

A compiled condition is a `Predicate`: `(call) -> bool`, raising `EvalError` when it cannot be evaluated
(the engine then fails closed). Compile errors raise `ValueError` with a message meant for the config error.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from policy.core.linear import Linear, compile_regex
from policy.core.model import ToolCall
from policy.core.paths import path_form, relative_form, under

Predicate = Callable[[ToolCall], bool]
Getter = Callable[[ToolCall], Any]

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "glob", "regex", "contains", "startswith", "exists")
SEED_OPERATORS = {
    "equals": "eq", "==": "eq", "=": "eq", "not_equals": "ne", "!=": "ne",
    "less_than": "lt", "<": "lt", "less_than_or_equal": "le", "<=": "le",
    "greater_than": "gt", ">": "gt", "greater_than_or_equal": "ge", ">=": "ge",
    "matches": "regex", "starts_with": "startswith", "not_in": "not_in",
}  # fmt: skip


class EvalError(Exception):
    """A condition could not be evaluated for this call (type mismatch, bad value)."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def glob_to_regex(pattern: str, *, path_mode: bool = False) -> str:
    """Translate a glob to a regex. Name mode: `*` matches anything (dots too). Path mode: `*` stays in one
    `/` segment and `**` crosses them. `?` is one character, `[...]`/`[!...]` a class. ValueError if malformed."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                j = i
                while j < n and pattern[j] == "*":
                    j += 1
                if path_mode and j < n and pattern[j] == "/" and (i == 0 or pattern[i - 1] == "/"):
                    out.append("(?:.*/)?")
                    j += 1
                else:
                    out.append(".*")
                i = j
                continue
            out.append("[^/]*" if path_mode else ".*")
        elif c == "?":
            out.append("[^/]" if path_mode else ".")
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"bad glob {pattern!r}: unterminated character class '['")
            body = pattern[i + 1 : j]
            if body.startswith(("!", "^")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append("\\" + c if c in _SPECIAL else c)
        i += 1
    return "".join(out)


# Escaped with a backslash in a glob's regex: what is special to Python's `re` or RE2 (both read `\` before
# punctuation as the literal); other characters stand for themselves in both.
_SPECIAL = frozenset(".^$*+?()[]{}|\\-&~#")


def compile_glob(pattern: str, *, path_mode: bool = False) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"bad glob {pattern!r}: must be a non-empty string")
    try:
        return re.compile(glob_to_regex(pattern, path_mode=path_mode) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise ValueError(f"bad glob {pattern!r}: {exc}") from None


def compile_glob_linear(pattern: str, *, path_mode: bool = False) -> Linear:
    """`compile_glob` on RE2: matching time linear in the name, for globs matched against what an agent
    chose (tool names embed an HTTP path; `*a*b*` on Python's `re` is quadratic or worse)."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"bad glob {pattern!r}: must be a non-empty string")
    try:
        return Linear(glob_to_regex(pattern, path_mode=path_mode), dot_nl=True)
    except ValueError as exc:
        raise ValueError(f"bad glob {pattern!r}: {exc}") from None


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for raw in path.split("."):
        if raw == "":
            raise ValueError(f"bad field path {path!r}: empty segment")
        pos = 0
        for m in _SEGMENT.finditer(raw):
            if m.start() != pos:
                raise ValueError(f"bad field path {path!r}")
            pos = m.end()
            if m.group(2) is not None:
                parts.append(int(m.group(2)))
            else:
                seg = m.group(1)
                parts.append(int(seg) if seg.isdigit() else seg)
        if pos != len(raw):
            raise ValueError(f"bad field path {path!r}")
    return parts


def _dig(value: Any, parts: Sequence[str | int]) -> Any:
    for part in parts:
        if isinstance(value, Mapping):
            key = str(part)
            if key not in value:
                return MISSING
            value = value[key]
        elif isinstance(value, list | tuple) and isinstance(part, int):
            if part >= len(value):
                return MISSING
            value = value[part]
        else:
            return MISSING
    return value


def compile_field(name: str, known_servers: frozenset[str] | None = None) -> Getter:
    """A field reference -> getter. Fields: args.<path>, http.method|host|path, tool.annotations.<hint>,
    tool (full name), tool.name (the part after the server), agent, server, server.configured (whether the
    call's server is one of `known_servers`, the config's `servers:`), surface."""
    if name in {"agent", "server", "surface"}:
        return lambda call: getattr(call, name)
    if name == "server.configured":
        servers = known_servers or frozenset()
        return lambda call: call.server in servers
    if name == "tool":
        return lambda call: call.full_name
    if name == "tool.name":
        return lambda call: call.tool
    if name in {"http.method", "http.host", "http.path"}:
        attr = name.split(".", 1)[1]
        return lambda call: getattr(call.http, attr) if call.http is not None else MISSING
    if name.startswith("tool.annotations."):
        parts = _split_path(name.removeprefix("tool.annotations."))
        return lambda call: _dig(call.annotations, parts)
    if name == "args":
        return lambda call: call.arguments
    if name.startswith("args."):
        parts = _split_path(name.removeprefix("args."))
        return lambda call: _dig(call.arguments, parts)
    raise ValueError(
        f"unknown field {name!r} (use args.<path>, http.method, http.host, http.path, "
        "tool.annotations.<hint>, tool, tool.name, agent, server, server.configured or surface)"
    )


def _json_eq(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _ordered(op: str, value: Any) -> Callable[[Any], bool]:
    if not (_number(value) or isinstance(value, str)):
        raise ValueError(f"{op} needs a number or a string, not {value!r}")
    cmp: Callable[[Any, Any], bool] = getattr(operator, op)

    def test(actual: Any) -> bool:
        if (_number(value) and _number(actual)) or (isinstance(value, str) and isinstance(actual, str)):
            return cmp(actual, value)
        raise EvalError(f"{op} compares {type(actual).__name__} {actual!r:.60} with {value!r}")

    return test


def _string_test(op: str, value: Any) -> Callable[[Any], bool]:
    if not isinstance(value, str):
        raise ValueError(f"{op} needs a string, not {value!r}")
    matcher: Callable[[str], bool]
    if op == "glob":
        matcher = _glob_matcher(value)
    elif op == "regex":
        matcher = compile_regex(value).search
    else:
        matcher = _prefix_matcher(value, path_form(value))

    def test(actual: Any) -> bool:
        if not isinstance(actual, str):
            raise EvalError(f"{op} needs a string field, got {type(actual).__name__} {actual!r:.60}")
        return matcher(actual)

    return test


def _glob_matcher(value: str) -> Callable[[str], bool]:
    # `file:///etc/**` and `/etc/**` say the same: a URI is compared by its path
    pattern = (path_form(value) if value[:7].lower() == "file://" else None) or value
    if path_form(pattern) is None:
        # Spelled as the value it is matched against will be (`demo://a/**` and `demo://a/x` lose the same `/`).
        pattern = relative_form(pattern)
    rx = compile_glob_linear(pattern, path_mode=True)

    def matcher(s: str) -> bool:
        form = path_form(s)
        return rx.match(relative_form(s) if form is None else form)  # `/tmp/../etc` is not in `/tmp/**`

    return matcher


def _prefix_matcher(value: str, prefix: str | None) -> Callable[[str], bool]:
    """`startswith`: by whole segments of canonical paths when the operand is path-like, else by text.
    A trailing slash keeps its meaning: `/tmp/` is what is inside /tmp, `/tmp` is /tmp and what is inside."""
    if prefix is None:
        return lambda s: s.startswith(value)
    strict = value.endswith("/") and prefix != "/"
    return lambda s: (form := path_form(s)) is not None and under(form, prefix) and not (strict and form == prefix)


def _same(value: Any) -> Callable[[Any], bool]:
    """JSON equality with `value`; when both are path-like strings, equality of their canonical forms."""
    form = path_form(value) if isinstance(value, str) else None
    if form is None:
        return lambda actual: _json_eq(actual, value)
    canonical = form

    def test(actual: Any) -> bool:
        return isinstance(actual, str) and path_form(actual) == canonical

    return test


def _contains(value: Any) -> Callable[[Any], bool]:
    def test(actual: Any) -> bool:
        if isinstance(actual, str):
            if not isinstance(value, str):
                raise EvalError(f"contains on a string field needs a string, not {value!r}")
            return value in actual
        if isinstance(actual, list | tuple):
            return any(_json_eq(item, value) for item in actual)
        if isinstance(actual, Mapping):
            return isinstance(value, str) and value in actual
        raise EvalError(f"contains needs a string, list or object field, got {type(actual).__name__}")

    return test


def compile_operator(op: str, value: Any) -> Callable[[Any], bool]:
    """One operator and its operand -> test of the field's value (which may be MISSING)."""
    op = SEED_OPERATORS.get(op, op)
    if op == "exists":
        if not isinstance(value, bool):
            raise ValueError(f"exists takes true or false, not {value!r}")
        return lambda actual: (actual is not MISSING) is value
    if op in {"eq", "ne"}:
        negate = op == "ne"
        same = _same(value)
        return lambda actual: actual is not MISSING and same(actual) is not negate
    if op in {"in", "not_in"}:
        if not isinstance(value, list):
            raise ValueError(f"in takes a list, not {value!r}")
        negate = op == "not_in"
        members = [_same(v) for v in value]
        return lambda actual: actual is not MISSING and any(m(actual) for m in members) is not negate
    if op in {"lt", "le", "gt", "ge"}:
        inner = _ordered(op, value)
    elif op in {"glob", "regex", "startswith"}:
        inner = _string_test(op, value)
    elif op == "contains":
        inner = _contains(value)
    else:
        raise ValueError(f"unknown operator {op!r} (use {', '.join(OPERATORS)})")
    return lambda actual: actual is not MISSING and inner(actual)


BLOCK_KEYS = ("all", "any", "not")


def compile_block(
    block: Any, path: tuple[str | int, ...] = (), known_servers: frozenset[str] | None = None
) -> Predicate:
    """A condition block -> predicate. `{field: {op: v, ...}, field: scalar, any: [block], all: [block],
    not: block}`; every entry must hold. ValueError carries the sub-path as `args[0]`... via CompileError."""
    if not isinstance(block, Mapping):
        raise CompileError(path, f"a condition must be a mapping of field to test, not {block!r}")
    preds: list[Predicate] = []
    for key, spec in block.items():
        sub = (*path, key)
        if key in ("any", "all"):
            if not isinstance(spec, list) or not spec:
                raise CompileError(sub, f"{key} takes a non-empty list of conditions")
            parts = [compile_block(b, (*sub, i), known_servers) for i, b in enumerate(spec)]
            preds.append(_any(parts) if key == "any" else _all(parts))
        elif key == "not":
            preds.append(_not(compile_block(spec, sub, known_servers)))
        else:
            preds.append(compile_test(key, spec, sub, known_servers))
    return _all(preds)


def compile_test(
    field: str, spec: Any, path: tuple[str | int, ...], known_servers: frozenset[str] | None = None
) -> Predicate:
    try:
        getter = compile_field(field, known_servers)
    except ValueError as exc:
        raise CompileError(path, str(exc)) from None
    ops = spec.items() if isinstance(spec, Mapping) else [("eq", spec)]
    tests = []
    for op, value in ops:
        try:
            tests.append(compile_operator(str(op), value))
        except ValueError as exc:
            raise CompileError((*path, op) if isinstance(spec, Mapping) else path, str(exc)) from None

    def pred(call: ToolCall) -> bool:
        actual = getter(call)
        return all(t(actual) for t in tests)

    return pred


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    return lambda call: all(p(call) for p in preds)


def _any(preds: list[Predicate]) -> Predicate:
    return lambda call: any(p(call) for p in preds)


def _not(pred: Predicate) -> Predicate:
    return lambda call: not pred(call)


class CompileError(ValueError):
    """A condition that cannot be compiled, with the key path below the condition's root."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
