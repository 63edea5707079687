"""Short temporary folders: pytest's tmp_path can exceed the 107-byte limit of a Unix socket path."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def short_tmp_dir(prefix: str = "am-") -> Iterator[Path]:
    """A fresh folder directly under the system temp dir, removed (with its contents) on exit.

    Example:
        with short_tmp_dir() as d:
            Proc([chromium, "--headless", f"--user-data-dir={d}", ...])
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
