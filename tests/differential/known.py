"""Classes of mismatch the harness found that the proxy does not handle yet (see the report of issue 13).

Each is left out of the generated property, so the generated runs keep checking everything else, and is
asserted by a named request in test_named_cases.py marked `xfail(strict=True)`: when the proxy is fixed, that
test passes, the strict xfail fails, and the class is to be removed from here."""

from __future__ import annotations

from collections.abc import Callable

from tests.differential import oracle
from tests.differential.harness import Outcome

# name of the named request in test_named_cases.py -> (reason, does this finding belong to the class?)
OPEN: dict[str, tuple[str, Callable[[Outcome, oracle.Finding], bool]]] = {}


def open_class(outcome: Outcome, finding: oracle.Finding) -> str | None:
    """The name of the open class this finding belongs to, or None."""
    return next((name for name, (_, belongs) in OPEN.items() if belongs(outcome, finding)), None)
