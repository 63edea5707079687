"""How the CLI looks to a person: colour and width-aware tables on a terminal (rich), plain text otherwise.

One place decides. On a terminal, tables fit the window (long argument columns are cut with `…`, ids
never) and verdicts are coloured: allow green, deny red, waiting for a human yellow. When stdout is not a
terminal (a pipe, a file, a test) the output is the plain text it has always been, byte for byte, so
scripts and greps keep working. `NO_COLOR` (any value, https://no-color.org) keeps the layout but drops
every colour; `FORCE_COLOR` styles output that is not a terminal. rich is imported only when styling, so
piped commands do not pay for it at start-up.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

import click

from policy.core.invisible import one_line

if TYPE_CHECKING:
    from rich.console import Console

# A value -> its colour, for every column that carries a verdict, a decision or a state.
GOOD, BAD, WAITING, OVER = "green", "red", "yellow", "dim"
STYLES: dict[str, str] = {
    "allow": GOOD,
    "allowed": GOOD,
    "approve": GOOD,
    "approved": GOOD,
    "active": GOOD,
    "pass": GOOD,
    "ok": GOOD,
    "deny": BAD,
    "denied": BAD,
    "reject": BAD,
    "rejected": BAD,
    "revoked": BAD,
    "fail": BAD,
    "error": BAD,
    "loop_detected": BAD,
    "human_approval": WAITING,
    "pending": WAITING,
    "held": WAITING,
    "rate_limited": WAITING,
    "expired": OVER,
    "ended": OVER,
    "used": OVER,
}
# Columns whose text may be cut to fit the window; every other column is shown whole.
SQUEEZABLE = frozenset({"ARGUMENTS", "ARGS", "WHEN", "REASON", "TOOL", "REQUEST", "OUTCOME"})


def styled(stream: IO[str] | None = None) -> bool:
    """True when output goes to a terminal (or FORCE_COLOR asks for styling anyway)."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    out = stream if stream is not None else sys.stdout
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # a closed or bare stream is no terminal
        return False


def colour_of(value: str) -> str | None:
    return STYLES.get(value.strip().lower())


def paint(text: str, value: str | None = None) -> str:
    """`text` in the colour of `value` (default: the text itself) on a terminal; unchanged otherwise."""
    colour = colour_of(value if value is not None else text)
    if colour is None or not styled() or os.environ.get("NO_COLOR"):
        return text
    if colour == OVER:
        return click.style(text, dim=True)
    return click.style(text, fg=colour, bold=True if colour == BAD else None)


def plain_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Columns padded to the widest cell, two spaces apart, trailing spaces trimmed (the piped format)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows])


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, emoji=False, markup=False)


def echo_table(rows: Sequence[Sequence[str]], header: Sequence[str], *, coloured: Sequence[str] = ()) -> None:
    """Print a table: rich on a terminal (fitted to its width, values in `coloured` columns painted). Cells are
    one line each, control and invisible characters shown as escapes: they hold what agents and servers named."""
    rows = [[one_line(cell) for cell in row] for row in rows]
    if not styled():
        click.echo(plain_table(rows, header))
        return
    from rich.table import Table
    from rich.text import Text

    bare = bool(os.environ.get("NO_COLOR"))  # no colour, and no bold or dim either: not one escape sequence
    header_style = "" if bare else "bold"
    table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, show_edge=False, header_style=header_style)
    for name in header:
        # rich narrows only the columns that may wrap: those are the squeezable ones (cut with `…` below)
        table.add_column(name, no_wrap=name not in SQUEEZABLE, min_width=8 if name in SQUEEZABLE else None)
    for row in rows:
        cells = []
        for name, cell in zip(header, row, strict=True):
            colour = colour_of(cell) if name in coloured and not bare else None
            cells.append(Text(cell, style=_rich_style(colour), no_wrap=True, overflow="ellipsis"))
        table.add_row(*cells)
    console().print(table)


def echo_lines(lines: Sequence[str], *, states: Sequence[str] = ()) -> None:
    """Print text lines; on a terminal, each `[state]` marker among `states` is painted (approval cards)."""
    text = "\n".join(lines)
    if styled():
        for state in states:
            text = text.replace(f"[{state}]", "[" + paint(state) + "]")
    click.echo(text)


def runnable(name: str) -> str:
    """How to type one of our commands: its name when PATH finds this installation's, else its full path
    (e.g. `.venv/bin/agent-mesh` after `make serve`, before `make install`)."""
    import shutil

    ours = os.path.join(os.path.dirname(sys.executable), name)
    found = shutil.which(name)
    if found is not None and (not os.path.exists(ours) or os.path.samefile(found, ours)):
        return name
    return ours if os.path.exists(ours) else name


def held_line(agent: str, tool: str, approval_id: str, link: str | None, request: str | None = None) -> str:
    """What `serve` prints when a call starts waiting for a human: who, what, the id to approve, the card."""
    what = f"{tool} ({request})" if request else tool
    where = f"  {link}" if link else ""
    return f"{paint('held', 'pending')}: {agent} -> {what}  approval {approval_id}{where}"


def _rich_style(colour: str | None) -> str:
    if colour is None:
        return ""
    if colour == OVER:
        return "dim"
    return f"bold {colour}" if colour == BAD else colour
