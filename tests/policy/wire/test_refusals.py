"""One refusal shape for both adapters: a tool error result (or, configured, a JSON-RPC error) for a tools/call,
a JSON-RPC error -32001 for every other kind of request; the payload is the Verdict's, under `_meta`."""

from __future__ import annotations

from policy import Action, Decision, Verdict, VerdictKind, refusal_payload, refusal_text
from policy.wire import jsonrpc, refusals

DENIED = Verdict(
    VerdictKind.DENY, Decision(Action.DENY, "no-delete", "deleting is off"), "policy:no-delete", "deleting is off", "t1"
)


def test_a_refused_tool_call_is_a_tool_error_result_with_the_payload_in_meta_and_structured_content() -> None:
    resp = refusals.refusal(0, DENIED, modern=True, refuse_as="result")
    assert resp["id"] == 0
    result = resp["result"]
    payload = refusal_payload(DENIED)
    assert result["isError"] is True
    assert result["structuredContent"] == payload
    assert result["_meta"][refusals.META_KEY] == payload
    assert result["resultType"] == "complete"
    assert result["content"] == [{"type": "text", "text": refusal_text(DENIED)}]


def test_a_2025_era_refusal_has_no_result_type_and_an_output_schema_keeps_structured_content_out() -> None:
    assert "resultType" not in refusals.refusal("x", DENIED, modern=False, refuse_as="result")["result"]
    plain = refusals.refusal("x", DENIED, modern=False, refuse_as="result", structured=False)["result"]
    assert "structuredContent" not in plain


def test_refuse_as_error_gives_a_json_rpc_error_carrying_the_payload() -> None:
    resp = refusals.refusal(7, DENIED, modern=False, refuse_as="error")
    assert resp["error"] == {"code": jsonrpc.REFUSED, "message": refusal_text(DENIED), "data": refusal_payload(DENIED)}
    assert refusals.refusal_error(7, DENIED) == resp
