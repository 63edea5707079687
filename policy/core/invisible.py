"""Text an agent chose, made safe to print on the operator's terminal: one line, every character that has no
glyph or that moves, hides or reorders what follows shown as a visible escape (`\\x1b`, `\\u202e`).

A tool name, an argument, a session id (the proxy user `AGENT/SESSION` is the agent's to write) or an MCP
server's name reaches `agent-mesh traces`, `status` and `approvals` tables. Printed raw, `ESC[2K` and a carriage
return erase the row of a denied call and paint another, OSC 52 writes the operator's clipboard, a right-to-left
override shows `exe.txt` as `txt.exe`. The page escapes the same set (policy.control.render_values).
"""

from __future__ import annotations

import re

# C0 controls (line breaks and tabs too: a cell is one line), DEL and C1 controls (`\x9b` is a CSI on some
# terminals), soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width and bidi marks, line and
# paragraph separators, bidi embeddings/overrides/isolates, word joiner and invisible operators, the BOM,
# interlinear annotations, the tag block, lone surrogates.
INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff\U000e0000-\U000e007f]"
)


def _code(match: re.Match[str]) -> str:
    n = ord(match.group())
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def one_line(text: str) -> str:
    """`text` with every invisible or control character as its escape (unchanged when there is none)."""
    return INVISIBLE.sub(_code, text) if INVISIBLE.search(text) else text
