"""MkDocs hook: tidy what mkdocs-click generates for the CLI reference (docs/cli.md).

- A help text's `Example:` block (a `\\b` paragraph in click) becomes a code block, not a run-on paragraph.
- A flag without a default shows an empty Default cell, not click's internal `Sentinel.UNSET`.

It runs as a Markdown preprocessor right after mkdocs-click's (priority 141), on every page, and touches only
those two shapes.
"""

from __future__ import annotations

import re
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

EXAMPLE_HEAD = re.compile(r"^Examples?:$")
UNSET_CELL = re.compile(r"\| `Sentinel\.UNSET` \|$")


class _Tidy(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        i, fenced = 0, False
        while i < len(lines):
            line = lines[i]
            if line.startswith("```"):
                fenced = not fenced
            if not fenced and EXAMPLE_HEAD.match(line) and i + 1 < len(lines) and lines[i + 1].startswith("  "):
                out += [line, "", "```text"]
                i += 1
                while i < len(lines) and lines[i].startswith("  "):
                    out.append(lines[i][2:])
                    i += 1
                out += ["```", ""]
                continue
            out.append(UNSET_CELL.sub("|  |", line) if line.startswith("| `") else line)
            i += 1
        return out


class _TidyExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(_Tidy(md), "click_tidy", 140)


def on_config(config: Any) -> Any:
    config.markdown_extensions.append(_TidyExtension())
    return config
