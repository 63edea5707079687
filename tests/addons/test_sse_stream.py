"""SSE streams parse incrementally, in any chunking, and keep each event's exact bytes."""

from __future__ import annotations

import pytest

from addons.sse_stream import SseParser, format_event

STREAM = (
    b": comment\n\n"
    b"event: endpoint\ndata: /messages?session_id=1\n\n"
    b'id: 7\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
    b"data: last\r\rdata: tail-without-end"
)


def _events_in_chunks(size: int) -> tuple[list[tuple[str, str, str | None, bytes]], bytes]:
    parser = SseParser()
    out = []
    for i in range(0, len(STREAM), size):
        out += [(e.event, e.data, e.id, e.raw) for e in parser.feed(STREAM[i : i + size])]
    return out, parser.flush()


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_events_are_the_same_whatever_the_chunking(size: int) -> None:
    events, rest = _events_in_chunks(size)
    assert [(e, d, i) for e, d, i, _raw in events] == [
        ("message", "", None),
        ("endpoint", "/messages?session_id=1", None),
        ("message", '{"a":\n1}', "7"),
        ("message", "last", None),
    ]
    assert b"".join(raw for *_x, raw in events) + rest == STREAM
    assert rest == b"data: tail-without-end"


def test_a_formatted_event_parses_back() -> None:
    parser = SseParser()
    (event,) = parser.feed(format_event('{"x":\n2}', event_id="9"))
    assert (event.event, event.data, event.id) == ("message", '{"x":\n2}', "9")
    (named,) = parser.feed(format_event("/m", event="endpoint"))
    assert named.event == "endpoint"
    assert named.has_data
