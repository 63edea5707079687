"""The page's mesh section shows what servers and agents named (a server's name from its initialize, an agent
name, a reload error quoting the config, a stop's scope): a right-to-left override or a zero-width character
there is shown as a visible escape, as in the arguments an approver reads."""

from __future__ import annotations

import re
import time

from policy.control.render_mesh import mesh


def test_invisible_characters_in_names_and_errors_are_shown_as_escapes() -> None:
    now = time.time()
    process = {
        "kind": "mcpwrap", "pid": 1, "server": "fs\u202eexe.txt", "agent": "claude\u200b", "current": True,
        "policy_hash": "0" * 16, "heartbeat": now, "notes": ["x\u2066y"], "reload_error": "bad\u202e",
    }  # fmt: skip
    stop = {"scope": "claude\u200b", "description": "emergency stop of agent 'claude\u200b'"}
    html = mesh({"stops": [stop], "processes": [process]}, now)
    # the Resume button carries the exact scope back (an attribute, never shown): the text around it is read
    shown = re.sub(r'data-scope="[^"]*"', "", html)
    assert 'data-scope="claude\u200b"' in html
    for raw in ("\u202e", "\u200b", "\u2066"):
        assert raw not in shown
    assert "\\u202e" in shown
    assert "\\u200b" in shown
