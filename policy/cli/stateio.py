"""Shared pieces of the state commands: opening the Operator, store errors as clean CLI errors, and
rendering approvals, grants and facts for people (text) and scripts (JSON)."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

import click

from policy.cli.common import load_loaded, where_used
from policy.core.config import parse_duration
from policy.core.errors import StoreUnavailable
from policy.core.invisible import one_line
from policy.gate.operator import Operator
from policy.store.base import Approval, Fact, Grant, StoreConflict
from policy.store.db import DB_NAME
from policy.store.sqlite import SqliteStore
from policy.store.statedir import require_private


def default_user() -> str:
    """Who is deciding: $USER, else the login name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except OSError:
        return "unknown"


by_option = click.option(
    "--by", default=default_user, show_default="$USER", help="Who decides (recorded with the decision)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


READ_ONLY_COMMANDS = frozenset({"list", "show"})


class NoState(click.ClickException):
    """A read-only command on a mesh that has not run yet: nothing is created, the folder is named."""


def no_state_message(state_dir: str | Path, config: str | None) -> str:
    used = config or "the built-in default"
    return (
        f"no state yet at {state_dir} (config: {used}); nothing has run under this mesh, or another mesh is "
        "active: see `agent-mesh use`"
    )


@contextmanager
def operator(config_path: str | None, *, read_only: bool | None = None) -> Iterator[Operator]:
    """The Operator on the config's state dir; store problems become one-line CLI errors.

    Read-only commands (by default `list` and `show`) never create a state dir or state.db: with none, a
    `list` prints an empty result with a note on stderr, anything else fails with NoState."""
    loaded = load_loaded(config_path)
    ctx = click.get_current_context(silent=True)
    if read_only is None:
        read_only = ctx is not None and ctx.info_name in READ_ONLY_COMMANDS
    state = Path(loaded.config.state_dir)
    if read_only:
        try:  # an open state dir is refused before anything in it is read (or found missing)
            require_private(state)
        except StoreUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        if not (state / DB_NAME).is_file():
            message = no_state_message(state, where_used().get("config"))
            if ctx is not None and ctx.info_name == "list":
                click.echo(message, err=True)
                if ctx.params.get("as_json"):
                    echo_json([])
                ctx.exit(0)
            raise NoState(message)
        gov = Operator.open(loaded, store=SqliteStore(state, read_only=True))
    else:
        gov = Operator.open(loaded)
    try:
        yield gov
    except (StoreConflict, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        gov.close()


def duration(value: str, flag: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None
    if seconds <= 0:
        raise click.BadParameter("must be longer than zero", param_hint=flag)
    return seconds


def ago(ts: float | None, now: float | None = None) -> str:
    """`3m ago` / `in 57m`: a relative time a person can read at a glance."""
    if ts is None:
        return "-"
    delta = (time.time() if now is None else now) - ts
    span = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            text = f"{int(span // size)}{unit}"
            break
    else:
        text = f"{int(span)}s"
    return f"{text} ago" if delta >= 0 else f"in {text}"


def as_dict(record: Approval | Grant | Fact) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    for k, v in out.items():
        if isinstance(v, Enum):
            out[k] = v.value
    if isinstance(record, Approval):
        out["full_name"] = record.full_name
        out["request"] = record.request_line
        out["state"] = record.effective_state(time.time()).value
    return out


def echo_json(value: Any) -> None:
    """Print JSON; an object also names the config and state dir the command used (`config`, `state_dir`)."""
    if isinstance(value, dict):
        value = {**value, **{k: v for k, v in where_used().items() if k not in value}}
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def approval_card(a: Approval) -> str:
    """Everything a human needs to decide, arguments pretty-printed."""
    now = time.time()
    state = a.effective_state(now).value
    # What the agent named (agent, session, tool, request, arguments) is shown one line each, escapes visible:
    # a carriage return or a right-to-left override must not make the card read as another call.
    session = f", session {one_line(a.session_id)}" if a.session_id else ""
    lines = [
        f"approval {a.id}  [{state}]",
        f"  agent:     {one_line(a.agent)}  ({a.surface}{session})",
        f"  tool:      {one_line(a.full_name)}",
        *([f"  request:   {one_line(a.request_line)}"] if a.request_line else []),
        f"  rule:      {a.rule}: {one_line(a.reason)}",
        f"  asked:     {ago(a.created_at, now)}   expires {ago(a.expires_at, now)}",
    ]
    if a.resolved_at is not None:
        by, why = one_line(a.resolved_by or "-"), one_line(a.resolution or "-")
        lines.append(f"  decided:   {state} by {by} {ago(a.resolved_at, now)}: {why}")
    if a.used_at is not None:
        lines.append(f"  used:      {ago(a.used_at, now)} by call {a.used_by}")
    if a.grant_id:
        lines.append(f"  grant:     {a.grant_id}")
    args = json.dumps(a.arguments, indent=2, ensure_ascii=False, sort_keys=True)
    lines.append("  arguments (query and body):" if a.request_line else "  arguments:")
    lines += [f"    {one_line(line)}" for line in args.splitlines()]
    return "\n".join(lines)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt: Callable[[list[str]], str] = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join(fmt(r).rstrip() for r in [header, *rows])


def short_args(args: Any, width: int = 48) -> str:
    text = json.dumps(args, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"
