"""mcpwrap's own stdin and stdout as asyncio streams, whatever they are (pipes, files, /dev/null).

asyncio can only watch pipes, sockets and terminals; a regular file or /dev/null on stdin is read by a
thread instead, and written to directly on stdout (neither ever blocks).
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from typing import IO

from mcpwrap.framing import CHUNK_BYTES, ByteSink, FdSink


def _watchable(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


async def open_reader(fd: int) -> asyncio.StreamReader:
    """A StreamReader over `fd` (limit is irrelevant: frames are split by framing.read_frames)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    if _watchable(fd):
        return await pipe_reader(os.fdopen(os.dup(fd), "rb", buffering=0))

    def pump() -> None:
        try:
            while chunk := os.read(fd, CHUNK_BYTES):
                loop.call_soon_threadsafe(reader.feed_data, chunk)
        except OSError:
            pass  # an unreadable stdin ends the session like EOF does
        finally:
            loop.call_soon_threadsafe(reader.feed_eof)

    threading.Thread(target=pump, name="mcpwrap-stdin", daemon=True).start()
    return reader


async def open_writer(fd: int) -> ByteSink:
    """A ByteSink over `fd`: an asyncio writer for pipes and sockets, direct writes otherwise."""
    if not _watchable(fd):
        return FdSink(fd)
    return await pipe_writer(os.fdopen(os.dup(fd), "wb", buffering=0))


async def pipe_reader(pipe: IO[bytes]) -> asyncio.StreamReader:
    """A StreamReader that owns `pipe` (a pipe, socket or terminal): it is closed with the stream."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


async def pipe_writer(pipe: IO[bytes]) -> asyncio.StreamWriter:
    """A StreamWriter that owns `pipe`: closing the writer closes the pipe (the reader then sees EOF)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    return asyncio.StreamWriter(transport, protocol, None, loop)
