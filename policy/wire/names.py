"""Names that imitate other names, for both adapters: the same letters once case, spaces, control, invisible
and compatibility characters are set aside ("TOOLS/CALL", "tools/call ", "forbidden\\u200b", fullwidth
letters).

A judge matches names exactly; a lenient receiver might not. A method or a tool name that folds onto a known
one without being it is refused rather than judged as something else (rules written for the known name would
miss it), so the cost is paid only on names that miss.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from policy.wire.kinds import KNOWN_METHODS


def fold(name: str) -> str:
    """`name` as a lenient reader might compare it: NFKC, without spaces, controls or invisible characters,
    case-folded."""
    folded = unicodedata.normalize("NFKC", name)
    return "".join(c for c in folded if not c.isspace() and unicodedata.category(c)[0] not in "CZ").casefold()


def imitated(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` imitates without being it, or None (it is one, or imitates none)."""
    folded = fold(name)
    return next((k for k in known if k != name and fold(k) == folded), None)


# Every request method MCP names (either direction), by its folded form. A method spelled like one of them but
# not exactly is judged by policy as an unknown method under its own name, which rules written for the real
# method never match, while a lenient server could still run it as that method.
_FOLDED_METHODS = {fold(m): m for m in KNOWN_METHODS}


def misspelled_method(method: str) -> str | None:
    """The MCP method `method` imitates (policy.wire.kinds.KNOWN_METHODS), or None when it is one or
    imitates none. Lower-case ASCII letters and digits skip the folding: they can only be themselves (while
    "PING" or "INITIALIZE" folds onto a known method)."""
    if method in KNOWN_METHODS or (method.isascii() and method.isalnum() and method == method.lower()):
        return None
    return _FOLDED_METHODS.get(fold(method))
