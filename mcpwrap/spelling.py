"""Names that imitate other names: the same letters once case, spaces, control, invisible and compatibility
characters are set aside ("TOOLS/CALL", "tools/call ", "forbidden\\u200b", fullwidth letters).

A judge matches names exactly; a lenient receiver might not. A name that folds onto a known one without
being it is refused rather than judged as something else, so the cost is paid only on names that miss.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def fold(name: str) -> str:
    """`name` as a lenient reader might compare it: NFKC, without spaces, controls or invisible characters,
    case-folded."""
    folded = unicodedata.normalize("NFKC", name)
    return "".join(c for c in folded if not c.isspace() and unicodedata.category(c)[0] not in "CZ").casefold()


def imitated(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` imitates without being it, or None (it is one, or imitates none)."""
    folded = fold(name)
    return next((k for k in known if k != name and fold(k) == folded), None)
