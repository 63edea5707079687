"""Linear-time matching for the patterns a policy writes: `regex` conditions and the globs of rules.

Patterns run on RE2 (google-re2), whose matching time is linear in the input, so no pattern can stall a
decision (Python's `re` takes seconds for `^([a-z]+)+$` on 28 characters). RE2 lacks backreferences and
lookaround; a pattern using them is a compile error (`ValueError`) naming the feature.
"""

from __future__ import annotations

import re

# The extension module under the `re2` package: its `Match` answers "does it match" in ~0.5 µs on a short
# string; `re2.compile(...).search` builds a generator and a match object around it for ~2.8 µs.
from re2 import _re2

_OPTIONS_CACHE: dict[bool, _re2.RE2.Options] = {}


def _options(dot_nl: bool) -> _re2.RE2.Options:
    opts = _OPTIONS_CACHE.get(dot_nl)
    if opts is None:
        opts = _re2.RE2.Options()
        opts.log_errors = False  # a bad pattern is our ValueError, not a line on stderr
        opts.never_capture = True  # only "does it match" is asked: no group spans to compute
        opts.dot_nl = dot_nl
        _OPTIONS_CACHE[dot_nl] = opts
    return opts


_SEARCH = _re2.RE2.Anchor.UNANCHORED
_FULL = _re2.RE2.Anchor.ANCHOR_BOTH


class Linear:
    """A compiled RE2 pattern. `match(s)` is True when the whole of `s` matches (globs); `search(s)` when
    some part does (regex conditions). Strings are matched as UTF-8 (lone surrogates kept, never an error)."""

    __slots__ = ("_rx", "pattern")

    def __init__(self, pattern: str, *, dot_nl: bool = False) -> None:
        rx = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), _options(dot_nl))
        if not rx.ok():
            raise ValueError(_explain(pattern, rx.error().decode("utf-8", "replace")))
        self._rx = rx
        self.pattern = pattern

    def match(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return bool(self._rx.Match(_FULL, data, 0, len(data))[0][0] != -1)

    def search(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return bool(self._rx.Match(_SEARCH, data, 0, len(data))[0][0] != -1)

    def __repr__(self) -> str:
        return f"Linear({self.pattern!r})"


# RE2's message for a construct it lacks -> the name of the feature, for the config error.
_FEATURES: tuple[tuple[str, str], ...] = (
    ("invalid perl operator: (?<=", "a lookbehind (?<=...)"),
    ("invalid perl operator: (?<!", "a negative lookbehind (?<!...)"),
    ("invalid perl operator: (?=", "a lookahead (?=...)"),
    ("invalid perl operator: (?!", "a negative lookahead (?!...)"),
    ("invalid perl operator: (?>", "an atomic group (?>...)"),
    ("invalid perl operator: (?P=", "a named backreference (?P=name)"),
    ("invalid perl operator: (?(", "a conditional group (?(...)"),
    ("bad repetition operator: *+", "a possessive quantifier (*+)"),
    ("bad repetition operator: ++", "a possessive quantifier (++)"),
    ("bad repetition operator: ?+", "a possessive quantifier (?+)"),
    ("invalid escape sequence: \\Z", "\\Z (RE2 writes end of text as \\z)"),
)
_BACKREF = re.compile(r"invalid escape sequence: (\\[1-9])")


def _explain(pattern: str, error: str) -> str:
    feature = next((name for marker, name in _FEATURES if error.startswith(marker)), None)
    if feature is None and (m := _BACKREF.match(error)) is not None:
        feature = f"a backreference ({m.group(1)})"
    if feature is None and error.startswith("invalid perl operator: (?P"):
        feature = "a named backreference (?P=name)"
    if feature is not None:
        return (
            f"bad regex {pattern!r}: uses {feature}, which policy regexes do not support "
            "(they run on RE2 in linear time: no backreferences, no lookaround)"
        )
    return f"bad regex {pattern!r}: {error}"


def compile_regex(pattern: str) -> Linear:
    """A `regex` condition's pattern (RE2 syntax, searched). ValueError naming the unsupported feature."""
    return Linear(pattern)


class LinearSet:
    """Many whole-text patterns matched in one RE2 pass: which owners (rule indexes) have a pattern that
    matches. Used for the tool globs of a policy, so naming a new tool costs one scan, not one per glob."""

    __slots__ = ("_owners", "_set")

    def __init__(self, patterns: list[Linear], owners: list[int]) -> None:
        rx_set = _re2.Set(_FULL, _options(True))
        for linear in patterns:
            if rx_set.Add(linear.pattern.encode("utf-8", "surrogatepass")) == -1:
                raise ValueError(f"cannot add {linear.pattern!r} to a pattern set")
        if not rx_set.Compile():
            raise ValueError("cannot compile the pattern set (too large)")
        self._set = rx_set
        self._owners = owners

    def matching(self, text: str) -> set[int]:
        owners = self._owners
        return {owners[i] for i in self._set.Match(text.encode("utf-8", "surrogatepass"))}
