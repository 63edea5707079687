"""Server-rendered HTML of the operator page. Every value that came from an agent, a config or the trace
is escaped here (`_e`); the page's JavaScript only swaps these fragments in and never builds HTML itself.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from policy.control.render_values import value_html, visible
from policy.trace.record import event_label, is_call

APPROVE_FOR = "30m"
# A decided card leaves a one-line note in the inbox for this long (any decider: page, CLI, mitmweb, supervisor).
DECIDED_SECONDS = 600
DECIDED_LINES = 10


def escape(value: Any) -> str:
    """HTML-escape any value (None reads as empty): the only way text enters the page."""
    return html.escape("" if value is None else str(value), quote=True)


_e = escape


def _t(value: Any) -> str:
    """Text content from an agent or a record: escaped, invisible characters shown. Never in an attribute."""
    return visible("" if value is None else str(value))


def _clock(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return ""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


def inbox(approvals: Iterable[Mapping[str, Any]], decided: Iterable[Mapping[str, Any]] = ()) -> str:
    """The waiting cards, then one line for each recently decided (or expired) approval, newest first."""
    cards = [_approval_card(a) for a in approvals]
    if not cards:
        cards = ['<p class="empty" id="inbox-empty">Nothing is waiting for you.</p>']
    lines = [_decided_line(a) for a in decided]
    if lines:
        cards.append(f'<div class="decided-list">{"".join(lines)}</div>')
    return "\n".join(cards)


_DECIDED = {"approved": ("ok", "✔ approved by"), "denied": ("bad", "✖ denied by"), "expired": ("wait", "expired")}


def _decided_line(a: Mapping[str, Any]) -> str:
    state = str(a.get("state"))
    style, words = _DECIDED.get(state, ("", state))
    by = f" {_t(a.get('resolved_by'))}" if state != "expired" else ": nobody decided in time"
    when = a.get("resolved_at") if a.get("resolved_at") is not None else a.get("expires_at")
    note = f' <span class="text-line">— {_t(a["resolution"])}</span>' if a.get("resolution") else ""
    line = a.get("request")
    what = f" <code>{_t(line)}</code>" if line else ""
    return (
        f'<p class="decided {_e(state)}" id="decided-{_e(a["id"])}"><span class="verdict {style}">{words}{by}</span>'
        f' · <span class="tool">{_t(a["tool"])}</span>{what} <span class="muted">by</span> {_t(a["agent"])}'
        f' <span class="muted">at {_e(_clock(when))} · id {_e(a["id"])}</span>{note}</p>'
    )


def _approval_card(a: Mapping[str, Any]) -> str:
    aid = _e(a["id"])
    flag = ""
    if a.get("injection_risk"):
        names = ", ".join(a.get("injection_patterns") or [])
        flag = f'<span class="flag" title="{_e(names)}">possible prompt injection: {_e(names)}</span>'
    asked = f'<span class="text-line">{_t(a["reason"])}</span>'
    line = a.get("request")
    request = (
        f'<p class="request"><code>{_t(line)}</code> <span class="muted">(arguments: query and body)</span></p>\n  '
        if line
        else ""
    )
    return f"""<article class="approval" id="approval-{aid}" data-id="{aid}">
  <header>
    <span class="tool">{_t(a["tool"])}</span> <span class="muted">by</span> <span class="agent">{_t(a["agent"])}</span>
    <span class="muted">via {_t(a["surface"])}</span>
    <span class="waiting" data-created="{_e(a["created_at"])}">waiting {_e(_ago(a["waiting_seconds"]))}</span>
  </header>
  {request}<p class="rule">Rule <code>{_t(a["rule"])}</code> asked: {asked} {flag}</p>
  <pre class="args">{value_html(a.get("arguments"))}</pre>
  <footer>
    <input class="reason" name="reason" placeholder="reason (recorded)" aria-label="reason" maxlength="500">
    <button data-action="approve" data-id="{aid}">Approve once</button>
    <button data-action="approve-for" data-id="{aid}" data-for="{APPROVE_FOR}">Approve for 30 min</button>
    <button data-action="deny" data-id="{aid}" class="danger">Deny</button>
    <span class="muted id">id {aid}</span>
  </footer>
</article>"""


_VERDICT_CLASS = {"allow": "ok", "deny": "bad", "pending": "wait", "rate_limited": "bad", "loop_detected": "bad"}


def traces(records: Iterable[Mapping[str, Any]], current: Any = None) -> str:
    """Trace rows; each opens its detail (`/ui/trace/{seq}`). `current` marks the row of the detail shown."""
    rows = []
    for r in records:
        call = is_call(r)
        # An event (a tool first seen or changed, tools hidden) is no call: it reads "tool changed" where a
        # call shows its verdict, and names the setting that acted where a call names who decided.
        verdict = str(r.get("verdict", "")) if call else event_label(r)
        style = _VERDICT_CLASS.get(verdict, "") if call else "event"
        by = r.get("decided_by") if call else r.get("rule")
        seq = r.get("seq")
        opens = isinstance(seq, int) and not isinstance(seq, bool)
        attrs = f' data-seq="{seq}" class="opens{" current" if seq == current else ""}"' if opens else ""
        clock = _e(_clock(r.get("ts")))
        when = f'<a href="#trace-{seq}" data-seq="{seq}" title="details">{clock}</a>' if opens else clock
        rows.append(
            f'<tr data-trace="{_e(r.get("trace_id"))}"{attrs}><td>{when}</td><td>{_t(r.get("agent"))}</td>'
            f"<td>{_t(r.get('tool'))}</td>"
            f'<td class="verdict {style}">{_e(verdict)}</td>'
            f'<td class="decided-by">{_t(by)}</td><td>{_t(r.get("outcome"))}</td>'
            f'<td class="reason">{_t(r.get("reason"))}</td></tr>'
        )
    if not rows:
        return '<p class="empty">No calls recorded yet (or none match the filter).</p>'
    head = "".join(f"<th>{h}</th>" for h in ("time", "agent", "tool", "verdict", "decided by", "outcome", "reason"))
    head = f"<tr>{head}</tr>"
    return f'<table class="traces"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def grants(items: Iterable[Mapping[str, Any]]) -> str:
    rows = []
    for g in items:
        gid = _e(g["id"])
        when = "" if not g.get("when") else json.dumps(g["when"], sort_keys=True)
        uses = f"{g['uses']}/{g['max_uses']}" if g.get("max_uses") else str(g["uses"])
        rows.append(
            f'<tr id="grant-{gid}"><td><code>{gid}</code></td><td>{_e(g["agent"])}</td><td>{_e(g["tool"])}</td>'
            f"<td>{_e(when)}</td><td>{_e(_ago(g['remaining_seconds']))} left</td><td>{_e(uses)}</td>"
            f"<td>{_e(g['created_by'])}</td><td>{_e(g['reason'])}</td>"
            f'<td><button data-action="revoke" data-id="{gid}" class="danger">Revoke</button></td></tr>'
        )
    if not rows:
        return '<p class="empty">No active grants.</p>'
    head = (
        "<tr><th>id</th><th>agent</th><th>tool</th><th>when</th><th>expires</th><th>uses</th><th>by</th>"
        "<th>reason</th><th></th></tr>"
    )
    return f'<table class="grants"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def policies(items: Iterable[Mapping[str, Any]], policy_hash: str) -> str:
    intro = f"Evaluation order: most specific agent pattern first. Policy hash {_e(policy_hash)}."
    parts = [f'<p class="muted">{intro}</p>']
    for p in items:
        rules = "".join(
            f'<li><span class="action {_e(r["action"])}">{_e(r["action"])}</span> '
            f"<code>{_e(', '.join(r['tools']))}</code>"
            + (f' <span class="muted">when {_e(json.dumps(r["when"], sort_keys=True))}</span>' if r.get("when") else "")
            + (f' <span class="muted">— {_e(r["reason"])}</span>' if r.get("reason") else "")
            + f' <span class="muted">[{_e(r["id"])}]</span></li>'
            for r in p["rules"]
        )
        parts.append(
            f'<section class="policy"><h3>{_e(p["order"])}. {_e(p["name"])} '
            f'<span class="muted">agent {_e(p["agent"])} ({_e(p["kind"])})</span></h3><ol>{rules}</ol></section>'
        )
    parts.append('<p class="muted">No rule matches: <span class="action deny">deny</span> (rule default).</p>')
    return "\n".join(parts)


def page(
    *,
    operator: str,
    csrf: str,
    inbox_html: str,
    traces_html: str,
    grants_html: str,
    policies_html: str,
    mesh_html: str = "",
) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{_e(csrf)}">
<title>agent-mesh</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head><body>
<nav><strong>agent-mesh</strong>
 <a href="#inbox-section">Inbox <span id="pending-count"></span></a> <a href="#traces-section">Traces</a>
 <a href="#grants-section">Grants</a> <a href="#policies-section">Policies</a> <a href="#mesh-section">Processes</a>
 <span class="muted right">operator <span id="operator">{_e(operator)}</span> ·
  <span id="live">connecting…</span></span>
</nav>
<main>
<section id="mesh-section"><h2>Processes and emergency stop</h2><div id="mesh">{mesh_html}</div></section>
<section id="inbox-section"><h2>Waiting for approval</h2><div id="inbox">{inbox_html}</div></section>
<section id="traces-section"><h2>Calls</h2>
 <form id="trace-filter" autocomplete="off">
  <input name="agent" placeholder="agent"> <input name="tool" placeholder="tool glob, e.g. github.*">
  <select name="verdict"><option value="">any verdict</option><option>allow</option><option>deny</option>
   <option>pending</option><option>rate_limited</option><option>loop_detected</option></select>
  <input name="decided_by" placeholder="decided by, e.g. human:">
 </form>
 <div id="trace-detail" hidden></div>
 <div id="traces">{traces_html}</div></section>
<section id="grants-section"><h2>Grants</h2><div id="grants">{grants_html}</div></section>
<section id="policies-section"><h2>Policies</h2><div id="policies">{policies_html}</div></section>
</main></body></html>"""


def login(message: str = "") -> str:
    note = f'<p class="flag">{_e(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agent-mesh login</title>
<link rel="stylesheet" href="/static/style.css"></head><body><main class="login">
<h1>agent-mesh</h1>{note}
<p>Open the one-time link that <code>agent-mesh serve</code> printed, or paste the operator token
(the file <code>operator.token</code> in the state dir).</p>
<form method="post" action="/login"><input type="password" name="token" placeholder="operator token"
 aria-label="operator token" autocomplete="current-password"> <button>Log in</button></form>
</main></body></html>"""


def enter() -> str:
    # A same-site hop after the login link: a Strict cookie set during a cross-site navigation is only
    # sent from the next same-site request on.
    return """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=/"><title>agent-mesh</title></head>
<body><p><a href="/">Continue to agent-mesh</a></p></body></html>"""
