"""Read a config or policy file with a bound: a regular file, of at most MAX_CONFIG_BYTES.

The config, its policy_dir and their hot reload read files an agent may have replaced (a tool wrote them, or a
symlink now points elsewhere). A FIFO would block the reader forever, `/dev/zero` never ends, and a file of
gigabytes keeps the watcher parsing while emergency stops wait: each is refused with a precise ValueError
instead. The file is opened without blocking and checked on the open descriptor (no window between a check
and the read).
"""

from __future__ import annotations

import os
import stat

# A config is written by hand: far above any real one (the largest policy sets are ~100 KB), far below what
# takes the YAML parser long.
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def read_bounded(path: str, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of the regular file at `path`. Raises ValueError for anything else (a FIFO, a device, a folder,
    a file larger than `limit`; the message does not repeat the path) and OSError when it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file (a FIFO, a device or a folder cannot be a config)")
        if st.st_size > limit:
            raise ValueError(f"larger than {limit} bytes ({st.st_size}): not a config written by hand")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may grow while it is read: never more than limit + 1 bytes
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ValueError(f"larger than {limit} bytes: not a config written by hand")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_config_text(path: str) -> str:
    """`read_bounded` decoded as UTF-8 (UnicodeDecodeError, a ValueError, when it is not)."""
    return read_bounded(path).decode("utf-8")
