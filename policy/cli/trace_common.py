"""What the `traces` commands share: the --state-dir option, the state dir it names, and adopting the
decisions stopped processes wrote ahead before the trace is read."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from policy.cli.common import config_option, load_loaded
from policy.trace.ahead import AHEAD_DIR, recover


def state_option[F: Callable[..., Any]](f: F) -> F:
    f = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Read this state dir instead of the config's state_dir.",
    )(f)
    return config_option(f)


def state_dir_of(config_path: str | None, state_dir: Path | None) -> Path:
    return state_dir if state_dir is not None else Path(load_loaded(config_path).config.state_dir)


def adopt(folder: Path, jsonl: bool = True, sqlite: bool = True, max_bytes: int = 64 << 20) -> None:
    """Chain the decisions a stopped mesh process wrote ahead but never recorded (policy.trace.ahead), so the
    trace read next shows every call that ran; a state dir this user cannot write is read as it is."""
    if (folder / AHEAD_DIR).is_dir():
        with contextlib.suppress(OSError, sqlite3.Error):
            recover(folder, jsonl=jsonl, sqlite=sqlite, max_bytes=max_bytes)
