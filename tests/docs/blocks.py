"""The shell blocks a docs page marks to be run by the tests, in page order.

A fenced ```sh block right after `<!-- run -->` is run in the foreground; one after `<!-- run: background -->`
is started first and kept running (`make serve`) while the foreground blocks run; one after
`<!-- run: held -->` makes a call that waits for a human, who approves it on the page. Unmarked blocks are
only shown (`make test`, commands whose output is an example).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKED = re.compile(r"^<!-- run(?:: (?P<mode>background|held))? -->\n```sh\n(?P<body>.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    text: str
    mode: str  # "" (foreground), "background" or "held"
    line: int


def runnable_blocks(page: Path) -> list[Block]:
    """Every marked block of `page`; ValueError when a marker is not followed by a ```sh block."""
    text = page.read_text("utf-8")
    blocks = [Block(m["body"], m["mode"] or "", text.count("\n", 0, m.start()) + 1) for m in MARKED.finditer(text)]
    if len(blocks) != text.count("<!-- run"):
        raise ValueError(f"{page}: a <!-- run --> marker is not directly followed by a ```sh block")
    return blocks
