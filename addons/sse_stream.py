"""Incremental Server-Sent Events parsing that keeps each event's exact bytes, so a stream can be passed
through untouched, or with single events rewritten, while it flows."""

from __future__ import annotations

import re

from policy.core.model import readonly

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")


@readonly
class SseEvent:
    """One dispatched event: `raw` is exactly what the server sent for it, blank line included."""

    event: str
    data: str
    id: str | None
    raw: bytes

    @property
    def has_data(self) -> bool:
        return self.data != "" or self.event != "message"


def format_event(data: str, event: str = "message", event_id: str | None = None) -> bytes:
    """An SSE event with `data` split over `data:` lines."""
    head = f"event: {event}\n" if event != "message" else ""
    if event_id is not None:
        head += f"id: {event_id}\n"
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode("utf-8")


class SseParser:
    """Feed bytes as they arrive; get back complete events. Bytes of an unfinished event stay buffered."""

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._reset()

    def _reset(self) -> None:
        self._event = "message"
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buf += chunk
        events: list[SseEvent] = []
        start = 0
        pos = self._pos
        while True:
            m = _LINE.match(self._buf, pos)
            # A lone CR at the end may be the first half of CRLF: wait for the next byte.
            if m is None or (m.group(2) == b"\r" and m.end() == len(self._buf)):
                break
            pos = m.end()
            line = m.group(1)
            if line:
                self._field(line)
                continue
            events.append(SseEvent(self._event, "\n".join(self._data), self._id, self._buf[start:pos]))
            self._reset()
            start = pos
        self._buf = self._buf[start:]
        self._pos = pos - start
        return events

    def _field(self, line: bytes) -> None:
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"data":
            self._data.append(text)
        elif name == b"event":
            self._event = text or "message"
        elif name == b"id" and "\x00" not in text:
            self._id = text

    def flush(self) -> bytes:
        """The bytes of an unfinished event at the end of the stream (passed on as they are)."""
        rest, self._buf, self._pos = self._buf, b"", 0
        self._reset()
        return rest
