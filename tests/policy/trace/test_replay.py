"""Replay: recorded calls judged again by a candidate policy set."""

from __future__ import annotations

from typing import Any

import pytest

from policy import HttpInfo, Outcome, compile_policies, load_config_text
from policy.trace import build_record
from policy.trace.replay import record_to_call, replay
from tests.policy.trace.factories import call, record, verdict

CANDIDATE = """
version: 1
policies:
  - name: dev
    agent: claude
    rules:
      - {tools: ["fs.write_file"], when: {args.path: {startswith: "/tmp/"}}, action: allow}
      - {tools: ["api.*"], when: {http.method: {eq: GET}}, action: allow}
      - {tools: ["*"], when: {tool.annotations.readOnlyHint: {eq: true}}, action: allow}
"""


def test_a_record_becomes_the_call_it_was_made_from() -> None:
    original = call(
        surface="openapi",
        server="api",
        tool="pets.list",
        arguments={"limit": 3},
        http=HttpInfo("GET", "api.example", "/pets"),
        annotations={"readOnlyHint": True},
    )
    rec = build_record(original, verdict(), Outcome(True), policy_hash="p", redact_keys=[], ts=1.0)
    rebuilt = record_to_call(rec)
    assert (rebuilt.agent, rebuilt.surface, rebuilt.server, rebuilt.tool) == ("claude", "openapi", "api", "pets.list")
    assert rebuilt.full_name == original.full_name
    assert rebuilt.call_hash == original.call_hash
    assert rebuilt.http == original.http
    assert rebuilt.annotations == {"readOnlyHint": True}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"agent": None}, "must be strings"),
        ({"surface": "smoke"}, "unknown surface 'smoke'"),
        ({"args": [1, 2]}, "args is not a JSON object"),
    ],
)
def test_a_record_that_is_not_a_call_is_refused_precisely(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        record_to_call(record(1, **change))


def test_replay_reports_changed_decisions_and_skips_what_is_not_a_call() -> None:
    ps = compile_policies(load_config_text(CANDIDATE, "candidate.yaml"))
    kept = record(1, decision="allow")  # /tmp/1.txt: still allowed
    changed = record(2, decision="human_approval", args={"path": "/srv/x"})
    result = replay([kept, changed, {"trace_id": "junk"}], ps)
    assert result.replayed == 2
    assert result.skipped == ["junk: no recorded decision"]
    [only] = result.changes
    assert only.record is changed
    assert (only.before, only.after.action.value, only.after.rule) == ("human_approval", "deny", "default")
    assert only.as_json()["after"]["decision"] == "deny"
    assert only.redacted is False


def test_a_changed_call_with_redacted_arguments_is_flagged() -> None:
    ps = compile_policies(load_config_text(CANDIDATE, "candidate.yaml"))
    [change] = replay([record(3, decision="allow", args={"path": "/srv/x", "token": "[REDACTED]"})], ps).changes
    assert change.redacted is True
