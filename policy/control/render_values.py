"""What an agent sent, as HTML for the page: JSON-shaped arguments where every multi-line string is a text
block (its line breaks shown as lines, not `\\n`), and every character a reader could not see (control
characters, bidi overrides, zero-width and tag characters) shown as a visible `\\u....` escape.

The agent is the adversary here: a file body, a commit message or a SQL statement is what the approver must
read, and text that renders differently from what it is (a right-to-left override, characters in the
invisible Unicode tag block) must not pass as something else. Everything is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

# Characters with no glyph of their own or that reorder / hide what follows: C0/C1 controls (but a text
# block's own line breaks and tabs), soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width
# and bidi marks, line/paragraph separators, bidi embeddings/overrides/isolates, word joiner and invisible
# operators, the BOM, interlinear annotation marks, the tag block (used to smuggle invisible text), and lone
# surrogates (JSON can carry them; UTF-8 cannot, so they would break the page's encoding).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff\U000e0000-\U000e007f]"
)
MAX_DEPTH = 32
INDENT = "  "


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _code(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def visible(text: str) -> str:
    """`text` HTML-escaped, with each invisible character shown as its escape in a marked span."""
    out: list[str] = []
    last = 0
    for match in _INVISIBLE.finditer(text):
        out.append(_escape(text[last : match.start()]))
        out.append(f'<span class="ctl" title="invisible character">{_code(match.group())}</span>')
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def is_text_block(value: Any) -> bool:
    """A string shown as lines rather than as one quoted JSON string."""
    return isinstance(value, str) and ("\n" in value or "\r" in value)


def text_block(text: str) -> str:
    """A multi-line string as a block of its lines (CSS keeps the breaks: white-space: pre-wrap)."""
    lines = text.replace("\r\n", "\n")  # a CRLF file reads as its lines; a lone CR stays visible as \x0d
    return f'<span class="text">{visible(lines)}</span>'


def _string(text: str) -> str:
    # json.dumps escapes C0 controls, quotes and backslashes; bidi and zero-width pass through to `visible`.
    return visible(json.dumps(text, ensure_ascii=False))


def value_html(value: Any, depth: int = 0) -> str:
    """`value` (JSON-native) as indented JSON-like HTML, multi-line strings as text blocks."""
    if is_text_block(value):
        return text_block(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
        return f'<span class="muted">… (nested deeper than {MAX_DEPTH} levels)</span>'
    pad, inner = INDENT * depth, INDENT * (depth + 1)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = [f"{inner}{_string(str(k))}: {value_html(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [f"{inner}{value_html(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    try:
        return _escape(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError):
        return visible(repr(value))  # not JSON-native: still shown, still escaped
