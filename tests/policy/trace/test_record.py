"""The trace record of one call, and the hash chain that seals records in order."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policy import Action, HttpInfo, Outcome, VerdictKind, canonical_json
from policy.core.redact import REDACTED
from policy.trace import GENESIS, build_record, expected_hash, parse_line, seal
from policy.trace.record import prepare
from tests.policy.trace.factories import REDACT, call, verdict

ARCHITECTURE_FIELDS = {
    "ts", "trace_id", "session_id", "agent", "surface", "server", "tool", "args", "call_hash", "decision",
    "rule", "verdict", "decided_by", "approval_id", "outcome", "status", "latency_ms", "policy_hash",
}  # fmt: skip


def test_a_record_holds_every_field_of_the_architecture() -> None:
    c = call(arguments={"path": "/tmp/a", "token": "s3cret"})
    v = verdict(VerdictKind.PENDING, Action.HUMAN_APPROVAL, decided_by="default", approval_id="ab12cd34ef")
    rec = build_record(c, v, Outcome(forwarded=False), policy_hash="ph", redact_keys=REDACT, ts=12.5)
    assert rec.keys() >= ARCHITECTURE_FIELDS
    assert rec["tool"] == "fs.write_file"
    assert rec["args"] == {"path": "/tmp/a", "token": REDACTED}
    assert rec["call_hash"] == c.call_hash  # of the real arguments, so approvals still match
    assert (rec["decision"], rec["verdict"], rec["approval_id"]) == ("human_approval", "pending", "ab12cd34ef")
    assert (rec["outcome"], rec["status"], rec["ts"], rec["policy_hash"]) == ("refused", None, 12.5, "ph")
    json.dumps(rec, allow_nan=False)


def test_http_calls_record_method_host_and_a_redacted_path() -> None:
    c = call(surface="openapi", http=HttpInfo("GET", "api.example", "/v1/x?password=hunter2&a=1"))
    rec = build_record(c, verdict(), Outcome(True, status=200, latency_ms=3.0), policy_hash="p", redact_keys=[], ts=1)
    assert rec["http"] == {"method": "GET", "host": "api.example", "path": f"/v1/x?password={REDACTED}&a=1"}
    assert (rec["status"], rec["latency_ms"], rec["outcome"]) == (200, 3.0, "ok")


def test_cli_exit_codes_land_in_status_and_errors_are_redacted() -> None:
    c = call(surface="cli", server="git", tool="push")
    out = Outcome(True, exit_code=128, error="fatal: auth failed for https://bob:hunter2@github.com/x")
    rec = build_record(c, verdict(), out, policy_hash="p", redact_keys=[], ts=1)
    assert (rec["status"], rec["outcome"]) == (128, "error")
    assert rec["error"] == f"fatal: auth failed for https://bob:{REDACTED}@github.com/x"


def test_a_reason_that_quotes_a_secret_is_redacted() -> None:
    v = verdict(reason="supervisor: fine, the call sends Bearer abcdefghijklmnopqrstuvwxyz to the API")
    rec = build_record(call(), v, Outcome(True), policy_hash="p", redact_keys=[], ts=1)
    assert rec["reason"] == f"supervisor: fine, the call sends Bearer {REDACTED} to the API"


def test_memory_auto_approvals_keep_their_precedents_and_annotations_are_kept_for_replay() -> None:
    v = verdict(decided_by="memory:3", precedents=("f1", "f2", "f3"))
    c = call(annotations={"destructiveHint": True})
    rec = build_record(c, v, Outcome(True), policy_hash="p", redact_keys=[], ts=1)
    assert rec["precedents"] == ["f1", "f2", "f3"]
    assert rec["annotations"] == {"destructiveHint": True}


def test_a_sealed_line_chains_from_the_previous_hash() -> None:
    rec = {"ts": 1.0, "tool": "fs.read", "args": {"é": "ü"}}
    digest, line = seal(rec, GENESIS)
    body = canonical_json({**rec, "prev_hash": GENESIS})
    assert digest == hashlib.sha256((GENESIS + body).encode()).hexdigest()
    parsed = parse_line(line)
    assert parsed == {**rec, "prev_hash": GENESIS, "hash": digest}
    assert expected_hash(parsed) == digest
    second, _ = seal(rec, digest)
    assert second != digest


def test_a_changed_field_changes_the_hash() -> None:
    digest, line = seal({"agent": "claude", "verdict": "deny"}, GENESIS)
    tampered = parse_line(line.replace('"deny"', '"allow"'))
    assert expected_hash(tampered) != digest


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(
    ["a", "agent", "hash", "prev_hash", "pre", "prev", "prev_hash_x", "prev_hasg", "prevhash", "q", "zz", "é"]
)


@given(st.dictionaries(KEYS | st.text(max_size=6), JSON, max_size=6), st.text(min_size=1, max_size=64))
def test_prepared_sealing_equals_hashing_the_canonical_record(record: dict[str, Any], prev: str) -> None:
    digest, line = prepare(record).seal(prev)
    without_hash = {k: v for k, v in record.items() if k not in ("hash", "prev_hash")} | {"prev_hash": prev}
    assert digest == hashlib.sha256((prev + canonical_json(without_hash)).encode()).hexdigest()
    parsed = json.loads(line)
    assert parsed["hash"] == digest
    assert expected_hash(parsed) == digest
