"""Serialising one record never fails another: hostile text (lone surrogates from undecodable bytes, NULs,
line separators, huge numbers) in any field of a call is escaped in that record only, and the batch around
it is written whole, chained and verifiable; the write-ahead entry of such a call is readable too."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy import Action, Decision, HttpInfo, Outcome, ToolCall, Verdict, VerdictKind
from policy.core.config import TraceSettings
from policy.trace import TraceWriter
from policy.trace.ahead import encode_entry
from policy.trace.append import ChainAppender
from policy.trace.sink import HandedCall
from policy.trace.verify import verify_state
from tests.policy.trace.factories import REDACT, call, record, verdict

POISON = b"\xff\xfe".decode("utf-8", "surrogateescape")  # what a header `Mcp-Session-Id: \xff\xfe` becomes

hostile_text = st.one_of(
    st.text(max_size=12),
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.sampled_from([POISON, "\ud800", "\udfff\ud800", "\x00", "\u2028\u2029", "\\", '"', "\n"]),
)
json_leaf = st.one_of(hostile_text, st.integers(), st.floats(), st.booleans(), st.none())
hostile_json = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=10,
)


# The fields the call hash covers cannot hold a lone surrogate (a ToolCall refuses to be built: the call is
# never judged, so never forwarded); every other field can, and does below.
encodable_text = st.text(max_size=12)
encodable_json = st.recursive(
    st.one_of(encodable_text, st.integers(), st.floats(), st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(encodable_text, inner, max_size=3),
    max_leaves=10,
)


@st.composite
def hostile_calls(draw: st.DrawFn) -> HandedCall:
    text, plain = hostile_text, encodable_text
    hostile_call = ToolCall(
        agent=draw(plain),
        surface="http",
        server=draw(plain),
        tool=draw(plain),
        arguments=draw(st.dictionaries(plain, encodable_json, max_size=4)),
        session_id=draw(st.none() | text),
        http=HttpInfo(draw(plain), draw(plain), draw(plain)),
        annotations=draw(st.dictionaries(text, hostile_json, max_size=2)),
    )
    decision = Decision(Action.ALLOW, draw(text), draw(text), draw(text))
    hostile_verdict = Verdict(VerdictKind.ALLOW, decision, draw(text), draw(text), draw(text))
    outcome = Outcome(True, status=draw(st.none() | st.integers()), error=draw(st.none() | text))
    return HandedCall(hostile_call, hostile_verdict, outcome, draw(text), REDACT, 1_700_000_000.0)


def lines(folder: Path) -> list[dict[str, Any]]:
    text = (folder / "traces.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.split("\n") if line]  # not splitlines: U+2028 is no line end


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile=hostile_calls())
def test_a_hostile_value_in_any_field_costs_neither_its_record_nor_its_batch(hostile: HandedCall) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        appender = ChainAppender(folder, max_bytes=1 << 20)
        try:
            built = hostile.record()
            assert appender.append([record(1), built, record(3)]) == 3
        finally:
            appender.close()
        written = lines(folder)
        assert [r["trace_id"] for r in (written[0], written[2])] == ["t-000001", "t-000003"]
        assert written[1]["verdict"] == "allow"
        assert verify_state(folder).ok
        entry = json.loads(encode_entry(built))  # the write-ahead line of the same call
        assert entry.keys() == built.keys()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(hostile_json, min_size=len(record(0)), max_size=len(record(0))))
def test_a_record_with_a_hostile_value_in_every_field_is_written_between_two_good_ones(values: list[Any]) -> None:
    hostile = dict(zip(record(2), values, strict=True))
    hostile["trace_id"] = "t-000002"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        appender = ChainAppender(folder, max_bytes=1 << 20)
        try:
            assert appender.append([record(1), hostile, record(3)]) == 3
        finally:
            appender.close()
        assert [r["trace_id"] for r in lines(folder)] == ["t-000001", "t-000002", "t-000003"]
        assert verify_state(folder).ok


@pytest.mark.parametrize("process", [False, True], ids=["thread", "worker"])
def test_a_poisoned_session_header_does_not_cost_the_other_calls_of_its_batch(tmp_path: Path, process: bool) -> None:
    writer = TraceWriter(tmp_path, TraceSettings(), process=process)
    outcome = Outcome(True, status=200)
    for i in range(5):
        session = POISON if i == 2 else f"s{i}"
        poisoned = call(session_id=session, arguments={"i": i})
        writer.emit_call(poisoned, verdict(trace_id=f"t-{i}"), outcome, policy_hash="p", redact_keys=REDACT, ts=1.0)
    assert writer.close()

    written = lines(tmp_path)
    assert [r["trace_id"] for r in written] == [f"t-{i}" for i in range(5)]
    assert written[2]["session_id"] == "\\udcff\\udcfe"  # the bad bytes, visible as escapes
    assert writer.stats().dropped == 0
    report = verify_state(tmp_path)
    assert report.ok, report.problems
    assert report.table is not None
    assert report.table.records == 5


def test_a_call_whose_record_cannot_be_built_leaves_a_placeholder_not_a_gap() -> None:
    from policy.trace.worker import flatten, records_of

    good = flatten(call(), verdict(trace_id="t-good"), Outcome(True), "p", REDACT, 1.0)
    bogus = list(flatten(call(agent="mallory"), verdict(trace_id="t-bad"), Outcome(True), "p", REDACT, 2.0))
    bogus[10] = "no such verdict kind"
    messages: list[str] = []
    records, bad = records_of([good, tuple(bogus), ("c",)], lambda m, **_: messages.append(m))
    assert [r["trace_id"] for r in records] == ["t-good", "t-bad", "unknown"]
    assert records[1]["agent"] == "mallory"
    assert records[1]["error"].startswith("this call's record could not be built: ValueError")
    assert bad == 0
    assert len(messages) == 2
