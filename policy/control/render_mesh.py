"""The page's mesh section as an HTML fragment (escaped here, swapped in by app.js): a banner per active
emergency stop and per failed reload, the stop / resume buttons, and each process with the policy it runs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from html import escape
from typing import Any

from policy.control.render_values import visible


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _seen(ts: float, now: float) -> str:
    s = max(0, int(now - ts))
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago"


def mesh(view: Mapping[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    parts: list[str] = []
    for stop in view["stops"]:
        scope = stop["scope"]
        parts.append(
            f'<p class="flag banner stopped">STOPPED: {visible(str(stop["description"]))} '
            f'<button data-action="resume" data-scope="{_e(scope)}">Resume</button></p>'
        )
    for p in view["processes"]:
        if p["reload_error"]:
            parts.append(
                f'<p class="flag banner">The changed config was not taken by {_e(p["kind"])} pid {_e(p["pid"])}: '
                f"it still runs policy <code>{_e(p['policy_hash'])}</code>. {visible(str(p['reload_error']))}</p>"
            )
    parts.append(
        '<p class="stop-controls"><input id="stop-agent" placeholder="agent" aria-label="agent to stop"> '
        '<button data-action="stop" data-scope="agent" class="danger">Stop agent</button> '
        '<button data-action="stop" data-scope="*" class="danger">Stop all agents</button></p>'
    )
    rows = []
    for p in view["processes"]:
        mark = "" if p["current"] else ' <span class="flag">other policy</span>'
        # names a server or agent chose: invisible characters shown as escapes (render_values.visible)
        who = " · ".join(visible(str(x)) for x in (p["server"], p["agent"]) if x)
        notes = "; ".join(p["notes"])
        rows.append(
            f"<tr><td>{_e(p['kind'])}</td><td>{_e(p['pid'])}</td><td>{who}</td>"
            f"<td><code>{_e(p['policy_hash'])}</code>{mark}</td><td>{_e(_seen(p['heartbeat'], now))}</td>"
            f'<td class="muted">{visible(notes)}</td></tr>'
        )
    if rows:
        head = "<tr><th>kind</th><th>pid</th><th>server · agent</th><th>policy</th><th>seen</th><th></th></tr>"
        parts.append(f'<table class="processes"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>')
    else:
        parts.append('<p class="empty">No process has reported yet.</p>')
    return "\n".join(parts)
