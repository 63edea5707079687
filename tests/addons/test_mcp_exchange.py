"""Outcomes read from JSON-RPC response bodies: at once (ResponseTracker.process) or later (LateAnswer)."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from addons.mcp_exchange import LateAnswer, id_key

OK = {"jsonrpc": "2.0", "id": 7, "result": {"content": [], "isError": False}}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("response", "label", "error"),
    [
        (OK, "ok", None),
        ({**OK, "result": {"content": [], "isError": True}}, "upstream_error", None),
        ({"jsonrpc": "2.0", "id": 7, "error": {"code": -1, "message": "no"}}, "upstream_error", None),
        ([{"jsonrpc": "2.0", "method": "notifications/progress"}, {**OK, "id": 8}, OK], "ok", None),
        ({**OK, "id": "7"}, "error", "the upstream answered HTTP 200 without a response to this call"),
        (b"not json", "error", "the upstream answered HTTP 200 without a response to this call"),
    ],
)
def test_a_late_answer_finds_the_call_s_response_in_the_body(response: Any, label: str, error: str | None) -> None:
    raw = response if isinstance(response, bytes) else body(response)
    outcome = LateAnswer(raw, id_key(7), 200, 1.5)()
    assert (outcome.label, outcome.error, outcome.latency_ms) == (label, error, 1.5)
    assert outcome.status == (200 if error is None else None)


def test_a_late_answer_crosses_to_the_trace_worker_intact() -> None:
    """It is pickled to the worker process (its own __reduce__, the cheap way): same fields, same outcome."""
    late = LateAnswer(body(OK), id_key(7), 200, 1.5)
    copy = pickle.loads(pickle.dumps(late, protocol=pickle.HIGHEST_PROTOCOL))
    assert copy == late
    assert copy() == late()
