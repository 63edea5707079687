"""Newline-delimited JSON-RPC framing over byte streams, with no line-length limit.

`asyncio.StreamReader.readline` refuses lines over its buffer limit (64 KiB by default); MCP frames carry
whole files and images, so frames are split here from raw chunks instead, up to `MAX_FRAME_BYTES`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Protocol

CHUNK_BYTES = 256 * 1024
# A frame bigger than this is a runaway peer, not a message: refuse it rather than exhaust memory.
MAX_FRAME_BYTES = 1024 * 1024 * 1024


class FrameTooLarge(ValueError):
    """A peer sent more than MAX_FRAME_BYTES without a newline."""


class ByteSink(Protocol):
    """Where frames are written: an asyncio.StreamWriter, or a plain file descriptor."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


async def read_frames(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> AsyncIterator[bytes]:
    """Yield each non-blank line (without its `\\n` or `\\r\\n`) until EOF; a final unterminated line counts."""
    buf = bytearray()
    scanned = 0
    while True:
        chunk = await reader.read(CHUNK_BYTES)
        if not chunk:
            break
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", max(start, scanned))
            if nl < 0:
                break
            line = bytes(buf[start:nl]).rstrip(b"\r")
            start = nl + 1
            if line.strip():
                yield line
        if start:
            del buf[:start]
        scanned = len(buf)
        if scanned > max_bytes:
            raise FrameTooLarge(f"a frame exceeded {max_bytes} bytes without a newline")
    tail = bytes(buf).strip()
    if tail:
        yield tail


def write_frame(sink: ByteSink, frame: bytes) -> None:
    """Write one frame and its newline in a single call, so concurrent writers never interleave frames."""
    sink.write(frame + b"\n")


class FdSink:
    """A ByteSink over a file descriptor that asyncio cannot watch (a regular file, /dev/null)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._closed = True


class MemoryPipe:
    """A ByteSink whose bytes come out of `reader`: the in-memory twin of a pipe, for tests and recipes."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader()
        self._closed = False

    def write(self, data: bytes) -> None:
        if not self._closed:
            self.reader.feed_data(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.reader.feed_eof()
