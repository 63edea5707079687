"""What the `traces` commands share: the --state-dir option, the state dir it names, and adopting the
decisions stopped processes wrote ahead before the trace is read."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from policy.cli.common import config_option, load_loaded, where_used
from policy.cli.stateio import NoState, no_state_message
from policy.trace.ahead import AHEAD_DIR, recover


def state_option[F: Callable[..., Any]](f: F) -> F:
    f = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Read this state dir instead of the config's state_dir.",
    )(f)
    return config_option(f)


def state_dir_of(config_path: str | None, state_dir: Path | None, *, must_exist: bool = True) -> Path:
    """--state-dir, else the active mesh's state dir; NoState (nothing created) when it does not exist and
    the command only reads."""
    folder = state_dir if state_dir is not None else Path(load_loaded(config_path).config.state_dir)
    if must_exist:
        require_state(folder)
    return folder


def require_state(folder: Path) -> None:
    """The trace commands read: a state dir that does not exist is named, never made."""
    if not folder.is_dir():
        raise NoState(no_state_message(folder, where_used().get("config")))


def adopt(folder: Path, jsonl: bool = True, sqlite: bool = True, max_bytes: int = 64 << 20) -> None:
    """Chain the decisions a stopped mesh process wrote ahead but never recorded (policy.trace.ahead), so the
    trace read next shows every call that ran; a state dir this user cannot write is read as it is. A state
    dir that does not exist is NoState: reading the trace never creates one."""
    require_state(folder)
    if (folder / AHEAD_DIR).is_dir():
        with contextlib.suppress(OSError, sqlite3.Error):
            recover(folder, jsonl=jsonl, sqlite=sqlite, max_bytes=max_bytes)
