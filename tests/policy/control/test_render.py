"""The page escapes every attacker-controlled value: arguments, agent and tool names, reasons, trace fields."""

from __future__ import annotations

import pytest

from policy.control import render

PAYLOAD = "<script>alert(1)</script>\"' onmouseover=x"


def approval(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "abcdef123456",
        "tool": "fs.write",
        "agent": "claude",
        "surface": "mcp_stdio",
        "created_at": 1.0,
        "waiting_seconds": 3,
        "rule": "dev/ask",
        "reason": "asks",
        "arguments": {"x": 1},
        "injection_risk": False,
        "injection_patterns": [],
    }
    return base | over


@pytest.mark.parametrize("field", ["tool", "agent", "surface", "rule", "reason", "id"])
def test_approval_cards_escape_every_field(field: str) -> None:
    html = render.inbox([approval(**{field: PAYLOAD})])
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "\"' onmouseover" not in html


def test_arguments_and_injection_patterns_are_escaped() -> None:
    html = render.inbox([approval(arguments={PAYLOAD: PAYLOAD}, injection_risk=True, injection_patterns=[PAYLOAD])])
    assert "<script>" not in html
    assert "possible prompt injection" in html


def test_trace_rows_and_grants_escape_their_fields() -> None:
    record = {k: PAYLOAD for k in ("trace_id", "agent", "tool", "verdict", "decided_by", "outcome", "reason")}
    assert "<script>" not in render.traces([record])
    grant = {"id": PAYLOAD, "agent": PAYLOAD, "tool": PAYLOAD, "when": {PAYLOAD: 1}, "remaining_seconds": 5,
             "uses": 0, "max_uses": None, "created_by": PAYLOAD, "reason": PAYLOAD}  # fmt: skip
    assert "<script>" not in render.grants([grant])


def test_an_http_approval_card_shows_its_request_line_escaped() -> None:
    html = render.inbox([approval(request="POST https://staging.example/v1/notes/9")])
    assert "<code>POST https://staging.example/v1/notes/9</code>" in html
    hostile = render.inbox([approval(request=f"POST https://h/{PAYLOAD}")])
    assert "<script>" not in hostile
    assert "request" not in render.inbox([approval()]).split('class="rule"')[0].split("<header>")[1]
