"""The differential oracle itself: it flags each class of mismatch (so a green harness means something)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential import oracle

PORT = 8000


def seen(op: str | None, params: dict[str, Any] | None = None, query: dict[str, Any] | None = None,
         body: Any = None, host: str | None = "127.0.0.1:8000") -> dict[str, Any]:  # fmt: skip
    return {"op": op, "method": "POST", "params": params or {}, "query": query or {}, "body": body, "host": host}


def record(tool: str, args: dict[str, Any], verdict: str = "allow", trace_id: str = "t1") -> dict[str, Any]:
    return {"trace_id": trace_id, "tool": tool, "args": args, "verdict": verdict,
            "http": {"method": "POST", "host": "127.0.0.1", "path": "/v1/notes/1"}}  # fmt: skip


def kinds(s: list[dict[str, Any]], r: list[dict[str, Any]]) -> list[str]:
    return [f.kind for f in oracle.check("notes", PORT, s, r)]


def test_an_allowed_call_run_as_judged_holds() -> None:
    assert kinds([seen("updateNote", {"id": "1"}, body={"title": "t"})],
                 [record("notes.updateNote", {"id": "1", "title": "t"})]) == []  # fmt: skip


def test_a_refused_call_the_upstream_never_saw_holds() -> None:
    assert kinds([], [record("notes.purgeNote", {"id": "1"}, "deny")]) == []


def test_an_encoded_slash_run_as_another_operation_is_flagged() -> None:
    judged = record("notes.updateNote", {"id": "1/purge"})
    assert kinds([seen("purgeNote", {"id": "1"})], [judged]) == [oracle.OPERATION_DIFFERS]


def test_a_call_that_runs_despite_a_deny_is_flagged() -> None:
    found = kinds([seen("purgeNote", {"id": "1"})], [record("notes.purgeNote", {"id": "1"}, "deny")])
    assert oracle.EXECUTED_DESPITE_REFUSAL in found


def test_a_forwarded_request_without_a_trace_record_is_flagged() -> None:
    assert kinds([seen("purgeNote", {"id": "1"})], []) == [oracle.EXECUTED_UNRECORDED]
    assert kinds([seen(None)], []) == [oracle.FORWARDED_UNRECORDED]


def test_two_records_for_one_request_are_flagged() -> None:
    judged = [record("notes.getNote", {"id": "1"}), record("notes.getNote", {"id": "1"}, trace_id="t2")]
    assert oracle.MULTIPLE_RECORDS in kinds([], judged)


def test_a_body_read_by_the_upstream_but_not_judged_is_flagged() -> None:
    # JSON sent as text/plain: Starlette's request.json() reads it, a proxy that skips it judges no owner.
    found = kinds([seen("updateNote", {"id": "1"}, body={"owner": "root"})], [record("notes.updateNote", {"id": "1"})])
    assert found == [oracle.ARGUMENTS_DIFFER]


def test_a_repeated_query_key_judged_as_a_list_but_run_as_one_value_is_flagged() -> None:
    found = kinds([seen("updateNote", {"id": "1"}, {"owner": "root"})],
                  [record("notes.updateNote", {"id": "1", "owner": ["x", "root"]})])  # fmt: skip
    assert found == [oracle.ARGUMENTS_DIFFER]


def test_a_key_in_both_query_and_body_is_ambiguous() -> None:
    found = kinds([seen("updateNote", {"id": "1"}, {"owner": "alice"}, {"owner": "root"})],
                  [record("notes.updateNote", {"id": "1", "owner": "alice"})])  # fmt: skip
    assert found == [oracle.AMBIGUOUS_ARGUMENTS]


def test_a_body_the_upstream_did_not_read_may_be_judged() -> None:
    judged = record("notes.updateNote", {"id": "1", "body": "owner=root"})
    assert kinds([seen("updateNote", {"id": "1"})], [judged]) == []


@pytest.mark.parametrize("header", ["admin.internal.example:8000", "127.0.0.1:9999", None])
def test_a_host_header_naming_another_target_is_flagged(header: str | None) -> None:
    found = kinds([seen("getNote", {"id": "1"}, host=header)], [record("notes.getNote", {"id": "1"})])
    assert found == [oracle.HOST_DIFFERS]


@pytest.mark.parametrize("header", ["127.0.0.1:8000", "localhost:8000", "2130706433:8000", "0x7f000001:8000",
                                    "127.1:8000", "[::ffff:127.0.0.1]:8000"])  # fmt: skip
def test_a_host_header_spelling_the_judged_address_holds(header: str) -> None:
    assert kinds([seen("getNote", {"id": "1"}, host=header)], [record("notes.getNote", {"id": "1"})]) == []
