"""REST refusals: problem+json by default, plain JSON for clients that only accept JSON, `message` always."""

from __future__ import annotations

import json

import pytest

from addons.http_answers import refusal_answer
from policy import Action, Decision, Verdict, VerdictKind

DENIED = Verdict(VerdictKind.DENY, Decision(Action.DENY, "p/r", "no deletes"), "policy:p/r", "no deletes", "t1")


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/problem+json"),
        ("*/*", "application/problem+json"),
        ("application/problem+json, application/json", "application/problem+json"),
        ("text/html", "application/problem+json"),
        ("application/json", "application/json"),
        ("application/vnd.github.v3+json", "application/json"),
    ],
)
def test_the_content_type_follows_what_the_client_accepts(accept: str | None, content_type: str) -> None:
    answer = refusal_answer(DENIED, accept)
    assert answer.status == 403
    assert answer.headers["content-type"] == content_type


def test_the_body_carries_the_stable_code_and_the_reason_as_message() -> None:
    body = json.loads(refusal_answer(DENIED, "application/json").body)
    assert body["code"] == "denied"
    assert body["status"] == 403
    assert "no deletes" in body["message"]
    assert body["message"] == body["detail"]
