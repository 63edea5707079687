"""The HTTP answers the mesh gives instead of forwarding: RFC 9457 `application/problem+json` bodies with
the same refusal payload every surface uses, and the right status and `Retry-After`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy import Verdict, VerdictKind, refusal_payload, refusal_text

PROBLEM_TYPE = "https://agent-mesh.dev/problems/"
_STATUS = {
    VerdictKind.DENY: 403,
    VerdictKind.PENDING: 403,
    VerdictKind.RATE_LIMITED: 429,
    VerdictKind.LOOP_DETECTED: 429,
}
_TITLE = {
    VerdictKind.DENY: "Denied by policy",
    VerdictKind.PENDING: "Waiting for human approval",
    VerdictKind.RATE_LIMITED: "Rate limit reached",
    VerdictKind.LOOP_DETECTED: "Repeated call refused",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP response to send in place of the upstream's."""

    status: int
    headers: dict[str, str]
    body: bytes


def problem(status: int, code: str, title: str, detail: str, extra: Mapping[str, Any] | None = None) -> Answer:
    """A problem+json answer with a stable `code` (RFC 9457 extension member).

    `status` is the HTTP status as RFC 9457 says; the refusal payload's own `status` is the same as `code`.
    """
    body = {**(extra or {}), "type": PROBLEM_TYPE + code, "title": title, "status": status, "detail": detail}
    body["code"] = code
    body["message"] = detail  # what GitHub-style API clients show their user
    return Answer(status, {"content-type": "application/problem+json"}, _dump(body))


def negotiated(answer: Answer, accept: str | None) -> Answer:
    """Keep problem+json unless the client accepts JSON but not problem+json (many SDKs parse only
    `application/json` bodies and would otherwise show a generic error instead of the mesh's reason)."""
    wanted = (accept or "").lower()
    if "problem+json" in wanted or "*/*" in wanted or "json" not in wanted:
        return answer
    return Answer(answer.status, {**answer.headers, "content-type": "application/json"}, answer.body)


def refusal_answer(verdict: Verdict, accept: str | None = None) -> Answer:
    """403 for deny and pending (with `approval_id`), 429 for rate limits and loops; `Retry-After` when known.
    The content type follows the request's `Accept` (see `negotiated`)."""
    status = _STATUS[verdict.kind]
    payload = refusal_payload(verdict)
    code = payload["code"]  # `stopped` for an emergency stop's refusal (policy.gate.stop), else the verdict's
    title = "Stopped by an operator" if code == "stopped" else _TITLE[verdict.kind]
    answer = negotiated(problem(status, code, title, refusal_text(verdict), payload), accept)
    if verdict.retry_after is not None:
        answer.headers["retry-after"] = str(max(1, math.ceil(verdict.retry_after)))
    return answer


def json_answer(status: int, value: Any, content_type: str = "application/json") -> Answer:
    return Answer(status, {"content-type": content_type}, _dump(value))


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
