"""The operator page's content: multi-line strings read as text blocks, invisible characters show, trace rows open
a detail with the session's records, and decided cards leave a line. Every value stays escaped."""

from __future__ import annotations

import html
import re
import unicodedata

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import Gate, HttpInfo, Outcome, ToolCall, VerdictKind
from policy.control import render, render_trace
from policy.control.render_values import value_html, visible
from tests.policy.control.conftest import Call
from tests.policy.control.test_render import PAYLOAD, approval

# The only markup value_html may write; anything else that looks like a tag came from the value.
OWN_TAGS = re.compile(r'<span class="(text|muted)">|<span class="ctl" title="invisible character">|</span>')


def test_a_multi_line_string_is_a_text_block_of_its_lines_not_a_json_escape() -> None:
    out = value_html({"path": "a.py", "content": "def f():\n    return 1\n"})
    assert '<span class="text">def f():\n    return 1\n</span>' in out
    assert "\\n" not in out
    assert "&quot;path&quot;: &quot;a.py&quot;" in out  # single-line strings stay JSON strings


def test_a_crlf_text_reads_as_lines_and_a_lone_cr_stays_visible() -> None:
    assert value_html("one\r\ntwo") == '<span class="text">one\ntwo</span>'
    assert "\\x0d" in value_html("shown\rhidden over")


def test_invisible_characters_show_as_escapes_in_strings_keys_and_text_blocks() -> None:
    rlo, tag_a, zwsp = "\u202e", "\U000e0061", "\u200b"
    out = value_html({f"k{zwsp}": f"txt{rlo}gpj.exe", "body": f"line\nsmuggled{tag_a}"})
    for code in ("\\u200b", "\\u202e", "\\U000e0061"):
        assert f'<span class="ctl" title="invisible character">{code}</span>' in out
    assert rlo not in out
    assert tag_a not in out
    assert zwsp not in out


def test_nesting_past_the_limit_is_cut_not_a_crash() -> None:
    deep: object = "leaf"
    for _ in range(500):
        deep = [deep]
    assert "nested deeper than" in value_html(deep)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_whatever_the_agent_sends_only_the_pages_own_markup_is_markup(value: object) -> None:
    out = OWN_TAGS.sub("", value_html(value))
    assert "<" not in out
    assert ">" not in out
    assert '"' not in out  # quotes are escaped too: nothing can end an attribute


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_a_text_block_shows_every_character_of_the_string_either_as_itself_or_as_its_escape(text: str) -> None:
    shown = html.unescape(OWN_TAGS.sub("", visible(text)))
    plain = re.sub(r"\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\\U[0-9a-f]{8}", "", shown)
    # unassigned and private-use code points draw a box; spaces are spaces
    assert all(ch.isprintable() or ch in "\n\t" or unicodedata.category(ch) in ("Zs", "Cn", "Co") for ch in plain)


def test_an_approval_card_shows_its_multi_line_argument_as_a_text_block() -> None:
    card = render.inbox([approval(arguments={"message": f"first\n{PAYLOAD}"})])
    assert '<span class="text">first\n&lt;script&gt;' in card
    assert "<script>" not in card


def decided(state: str, **over: object) -> dict[str, object]:
    return approval(state=state, resolved_by="alice", resolved_at=10.0, expires_at=5.0, resolution=None) | over


def test_decided_cards_leave_a_line_saying_who_approved_or_denied_or_that_nobody_did() -> None:
    lines = [
        decided("approved", id="aaaaaa111111"),
        decided("denied", id="bbbbbb222222", resolution="not on Fridays"),
        decided("expired", id="cccccc333333", resolved_by=None),
    ]
    page = render.inbox([], lines)
    assert 'id="inbox-empty"' in page  # nothing waits, and the decided lines stay below
    assert 'id="decided-aaaaaa111111"' in page
    assert "✔ approved by alice" in page
    assert "✖ denied by alice" in page
    assert "— not on Fridays" in page
    assert "expired: nobody decided in time" in page
    assert page.count('class="approval"') == 0  # no decided line counts as waiting


def test_a_decided_line_escapes_every_field() -> None:
    line = render.inbox([], [decided("denied", resolved_by=PAYLOAD, resolution=PAYLOAD, tool=PAYLOAD, agent=PAYLOAD)])
    assert "<script>" not in line
    assert line.count("&lt;script&gt;") == 4


def test_trace_rows_open_their_detail_and_mark_the_one_shown() -> None:
    rows = render.traces([{"seq": 7, "tool": "t"}, {"seq": 8, "tool": "u"}, {"tool": "no-seq"}], current=8)
    assert '<tr data-trace="" data-seq="7" class="opens">' in rows
    assert 'data-seq="8" class="opens current"' in rows
    assert '<a href="#trace-7" data-seq="7" title="details">' in rows
    assert rows.count("data-seq=") == 4  # two rows and their links; a record without seq opens nothing


async def test_the_trace_detail_shows_the_call_its_arguments_and_its_sessions_records(
    client: httpx.AsyncClient, call: Call
) -> None:
    await call("fs.read_file", {"path": "/a"})
    await call("fs.write_file", {"path": "/b", "content": f"line one\n{PAYLOAD}"})
    traces = (await client.get("/api/traces")).json()["traces"]
    write = next(t for t in traces if t["tool"] == "fs.write_file")
    r = await client.get(f"/ui/trace/{write['seq']}")
    assert r.status_code == 200
    page = r.text
    assert f'id="trace-{write["seq"]}"' in page
    assert "<dt>session</dt><dd><code>s1</code></dd>" in page
    assert "<dt>rule</dt><dd><code>dev/writes-ask</code></dd>" in page
    assert '<span class="text">line one\n&lt;script&gt;' in page
    assert "<script>" not in page
    session = page.split('class="session-records"')[1]
    assert session.count("<tr data-trace") == 2  # both calls of session s1, this one marked
    assert f'data-seq="{write["seq"]}" class="opens current"' in session


async def test_a_trace_record_that_does_not_exist_is_a_404_fragment(client: httpx.AsyncClient, call: Call) -> None:
    await call("fs.read_file", {"path": "/a"})
    for seq in ("999", "0", str(2**64)):
        r = await client.get(f"/ui/trace/{seq}")
        assert r.status_code == 404
        assert "No trace record" in r.text
    assert (await client.get("/ui/trace/-1")).status_code == 404  # not a number: no route


async def test_the_inbox_keeps_a_line_for_a_call_the_operator_just_approved(
    client: httpx.AsyncClient, call: Call
) -> None:
    v = await call("fs.write_file", {"path": "/b"})
    assert v.kind is VerdictKind.PENDING
    before = (await client.get("/ui/inbox")).text
    assert f'id="approval-{v.approval_id}"' in before
    await client.post(f"/api/approvals/{v.approval_id}/approve", json={"reason": "fine\nreally"})
    after = (await client.get("/ui/inbox")).text
    assert f'id="approval-{v.approval_id}"' not in after
    assert f'id="decided-{v.approval_id}"' in after
    assert "✔ approved by alice" in after
    assert '<span class="text-line">— fine\nreally</span>' in after


def test_a_lone_surrogate_shows_as_an_escape_so_the_page_still_encodes() -> None:
    # The gate refuses such a call (fail closed); the page must still never fail to encode what it shows.
    card = render.inbox([approval(tool="fs.w\ud800", arguments={"path": "/b\udfff", "body": "a\ud83d\nb"})])
    assert card.encode("utf-8")
    assert "\\ud800" in card
    assert "\\udfff" in card
    assert "\\ud83d" in card


def test_an_event_record_opens_as_an_event_with_its_detail_and_no_verdict() -> None:
    detail = {"was": "old description", "now": f"new\n{PAYLOAD}"}
    event = {"kind": "event", "event": "tool_changed", "seq": 4, "tool": "fs.read", "args": detail, "reason": "r"}
    page = render_trace.detail(event, "", 0)
    assert "event: tool changed" in page
    assert "<h4>detail</h4>" in page
    assert "<dt>verdict</dt>" not in page
    assert "<dt>outcome</dt>" not in page
    assert '<span class="text">new\n&lt;script&gt;' in page
    assert "no session recorded" in page


def test_a_trace_detail_shows_the_request_line_of_a_call_that_came_over_http_escaped() -> None:
    http = {"method": "POST", "host": "h.example", "path": f"/{PAYLOAD}"}
    record = {"seq": 1, "tool": "notes.POST /notes", "http": http}
    page = render_trace.detail(record, "", 0)
    assert "<dt>request</dt><dd><code>POST h.example/&lt;script&gt;" in page
    assert "<script>" not in page


async def test_the_detail_of_a_held_rest_call_shows_its_full_url_from_the_approval(
    client: httpx.AsyncClient, gate: Gate
) -> None:
    http = HttpInfo("POST", "api.example", "/v1/notes/9", port=8443, scheme="https")
    call = ToolCall("claude", "openapi", "gh", "write_note", {"text": "a"}, session_id="s2", http=http)
    verdict = await gate.check(call)
    gate.finish(call, verdict, Outcome(forwarded=False))
    gate.sink.flush()
    [record] = (await client.get("/api/traces", params={"session": "s2"})).json()["traces"]
    page = (await client.get(f"/ui/trace/{record['seq']}")).text
    assert "<dt>request</dt><dd><code>POST https://api.example:8443/v1/notes/9</code></dd>" in page
