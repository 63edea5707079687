"""Newline-delimited framing: any chunking, CRLF, blank lines, no line limit, a bounded maximum."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from mcpwrap.framing import FdSink, FrameTooLarge, MemoryPipe, read_frames


async def frames_of(chunks: list[bytes], max_bytes: int | None = None) -> list[bytes]:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    frames = read_frames(reader) if max_bytes is None else read_frames(reader, max_bytes)
    return [f async for f in frames]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b'{"a":1}\n{"b":2}\n'], [b'{"a":1}', b'{"b":2}']),
        ([b'{"a"', b':1}\n{"b"', b":2}\n"], [b'{"a":1}', b'{"b":2}']),
        ([b'{"a":1}\r\n'], [b'{"a":1}']),
        ([b"\n\n  \n{}\n\n"], [b"{}"]),
        ([b'{"tail":true}'], [b'{"tail":true}']),
        ([b""], []),
    ],
    ids=["two-frames", "split-anywhere", "crlf", "blank-lines-skipped", "unterminated-tail", "empty"],
)
async def test_frames_are_split_on_newlines_whatever_the_chunking(chunks: list[bytes], expected: list[bytes]) -> None:
    assert await frames_of(chunks) == expected


async def test_a_frame_far_beyond_the_stream_reader_line_limit_is_read_whole() -> None:
    big = b'{"x":"' + b"y" * (20 * 1024 * 1024) + b'"}'
    pieces = [big[i : i + 65536] for i in range(0, len(big), 65536)]
    assert await frames_of([*pieces, b"\n{}\n"]) == [big, b"{}"]


async def test_a_peer_that_never_sends_a_newline_is_cut_off_at_the_maximum() -> None:
    with pytest.raises(FrameTooLarge, match="exceeded 1000 bytes"):
        await frames_of([b"x" * 3000], max_bytes=1000)


async def test_a_memory_pipe_delivers_what_is_written_until_closed() -> None:
    pipe = MemoryPipe()
    pipe.write(b"{}\n")
    pipe.close()
    pipe.write(b"ignored\n")
    assert [f async for f in read_frames(pipe.reader)] == [b"{}"]


def test_an_fd_sink_writes_everything_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        sink = FdSink(fd)
        sink.write(b"a" * 100000)
        sink.close()
        sink.write(b"not written")
    finally:
        os.close(fd)
    assert target.stat().st_size == 100000
