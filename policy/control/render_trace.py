"""The detail of one trace record for the page (`GET /ui/trace/{seq}`): what was called (method and URL for a
call that came over HTTP), by whom and in which session, its arguments, the decision and the outcome, and the
records of the same session. Every value is escaped; arguments go through `render_values`.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Any

from policy.control.render_values import value_html, visible
from policy.trace.record import event_label, is_call


def _e(value: Any) -> str:
    """Text content (never an attribute: `visible` adds markup)."""
    return visible("" if value is None else str(value))


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def request_line(record: Mapping[str, Any]) -> str | None:
    """`POST api.github.com/repos/o/r/issues` for a call that came over HTTP (the trace keeps no scheme)."""
    http = record.get("http")
    if not isinstance(http, Mapping):
        return None
    return f"{http.get('method', '')} {http.get('host', '')}{http.get('path', '')}".strip() or None


def _fact(label: str, html_value: str) -> str:
    return f"<dt>{label}</dt><dd>{html_value}</dd>" if html_value else ""


def _outcome(record: Mapping[str, Any]) -> str:
    parts = [_e(record.get("outcome"))] if record.get("outcome") else []
    status = record.get("status")
    if status is not None:
        parts.append(f"status {_e(status)}")
    latency = record.get("latency_ms")
    if isinstance(latency, int | float) and not isinstance(latency, bool):
        parts.append(f"{latency:.1f} ms upstream")
    text = " · ".join(parts)
    if record.get("error"):
        text += f'<div class="text-line">{_e(record["error"])}</div>'
    return text


def detail(record: Mapping[str, Any], rows_html: str, count: int, request: str | None = None) -> str:
    """The detail panel of `record`; `rows_html` is its session's `count` records rendered as trace rows.
    `request` is the full request line when known (an approval keeps scheme and port; the trace does not)."""
    seq = html.escape(str(record.get("seq")), quote=True)
    call = is_call(record)
    line = request or request_line(record)
    what = "call" if call else f"event: {_e(event_label(record))}"
    verdict = (
        f'<span class="verdict">{_e(record.get("verdict"))}</span> by <code>{_e(record.get("decided_by"))}</code>'
        if call
        else ""
    )
    facts = "".join(
        (
            _fact("time", _e(_when(record.get("ts")))),
            _fact("request", f"<code>{_e(line)}</code>" if line else ""),
            _fact("agent", f'{_e(record.get("agent"))} <span class="muted">via {_e(record.get("surface"))}</span>'),
            _fact("session", f"<code>{_e(record.get('session_id'))}</code>" if record.get("session_id") else ""),
            _fact("verdict", verdict),
            _fact("rule", f"<code>{_e(record.get('rule'))}</code>" if record.get("rule") else ""),
            _fact(
                "reason", f'<span class="text-line">{_e(record.get("reason"))}</span>' if record.get("reason") else ""
            ),
            _fact("approval", f"<code>{_e(record.get('approval_id'))}</code>" if record.get("approval_id") else ""),
            _fact("outcome", _outcome(record) if call else ""),
            _fact("trace id", f"<code>{_e(record.get('trace_id'))}</code>"),
        )
    )
    heading = "this session's records" if record.get("session_id") else "no session recorded for this call"
    return f"""<article class="trace-detail" id="trace-{seq}" data-seq="{seq}">
  <header><h3><span class="tool">{_e(record.get("tool"))}</span> <span class="muted">{what} · record {seq}</span></h3>
   <button data-action="close-detail" type="button">Close</button></header>
  <dl class="facts">{facts}</dl>
  <h4>{"arguments" if call else "detail"}</h4>
  <pre class="args">{value_html(record.get("args", {}))}</pre>
  <h4>{heading} <span class="muted">({count}, newest first)</span></h4>
  <div class="session-records">{rows_html}</div>
</article>"""


def missing(seq: int) -> str:
    return f'<article class="trace-detail"><p class="flag">No trace record {seq}.</p></article>'
