"""`agent-mesh traces search TEXT` (full-text search, policy.trace.search) and `agent-mesh traces export`
(records as json, csv or nl, streamed; or, with --bundle, the evidence bundle of trace_evidence.py).

Both take the filters of `traces query` and, unlike it, show calls and events alike by default, each with its
kind (`--kind call` or `--kind event` narrows).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import click

from policy.cli.common import load_loaded
from policy.cli.trace_common import adopt, state_option
from policy.cli.trace_evidence import export_bundle_cmd
from policy.cli.traces import _filter_options, _filters, _print, _read, _source, traces_group
from policy.store.db import DB_NAME
from policy.trace.formats import FORMATS, write
from policy.trace.query import VERDICTS, Filters
from policy.trace.search import KINDS, NoIndex, SearchError, kind_matches, search

_kind_option = click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="Only calls, or only events (tool first seen, changed, hidden); default both (repeatable).",
)


@click.command("search")
@click.argument("text")
@click.option("--limit", default=50, show_default=True, help="At most this many records (0: no limit).")
@click.option("--literal", is_flag=True, help="Search the text as written (no FTS operators, quotes or column:).")
@_kind_option
@_filter_options
def search_cmd(
    text: str,
    limit: int,
    literal: bool,
    kinds: tuple[str, ...],
    config_path: str | None,
    state_dir: Path | None,
    as_json: bool,
    **opts: Any,
) -> None:
    """Find traced records by words in their tool, arguments (as stored: redacted), reason, rule, agent or
    session id; best match first.

    TEXT is an SQLite full-text query: words (all must match), "a phrase", OR, NOT, prefix*, a column
    (tool:github, args:passwd). Words with dots or dashes need quotes, or --literal.

    \b
    Example:
      agent-mesh traces search passwd
      agent-mesh traces search 'tool:github AND delete*' --since 1d
      agent-mesh traces search --literal 'rm -rf' --agent 'claude*' --json
    """
    filters = _filters(opts)
    db = _state_db(config_path, state_dir)
    found = _searching(db, text, filters, kinds, literal)
    shown = _print(islice(found, limit) if limit > 0 else found, as_json)
    if limit > 0 and shown == limit and next(found, None) is not None and not as_json:
        click.echo(f"(best {limit} shown: raise --limit or narrow the search)", err=True)
    elif not shown and not as_json:
        click.echo("no traced records match", err=True)


def _searching(
    db: Path, text: str, filters: Filters, kinds: tuple[str, ...], literal: bool
) -> Iterator[dict[str, Any]]:
    try:
        yield from search(db, text, filters, kinds=kinds, literal=literal)
    except SearchError as exc:
        raise click.BadParameter(str(exc), param_hint="TEXT") from None
    except NoIndex as exc:
        raise click.ClickException(
            f"{exc}: any agent-mesh command that writes the state (serve, proxy, mcpwrap) adds it"
        ) from None
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot search the trace: {exc}") from None


def _state_db(config_path: str | None, state_dir: Path | None) -> Path:
    """state.db of --state-dir or of the config's state dir, its pending records adopted and its schema
    brought to the latest (so a state.db last written by an older agent-mesh gets its index) when writable."""
    if state_dir is not None:
        adopt(state_dir)
        folder = state_dir
    else:
        config = load_loaded(config_path).config
        if not config.traces.sqlite:
            raise click.ClickException("search reads the traces table, and this config has traces.sqlite off")
        folder = Path(config.state_dir)
        adopt(folder, config.traces.jsonl, config.traces.sqlite, config.traces.max_bytes)
    db = folder / DB_NAME
    if db.is_file() and os.access(db, os.W_OK):
        from policy.store.db import connect  # the writer's open: migrates

        try:
            with closing(connect(db)):
                pass
        except (sqlite3.Error, OSError):
            pass  # read as it is: the search says what is missing
    return db


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="json (one array), csv (a header, one row per record) or nl (one JSON record per line; the default).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="The file to write (default: standard output). Without --format: the bundle folder, as --bundle.",
)
@click.option(
    "--bundle",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write an evidence bundle here instead: the records since --since, their signed checkpoints, the key.",
)
@_kind_option
@click.option("--agent", default=None, help="Only this agent (a glob: 'claude*').")
@click.option("--tool", default=None, help="Only tools matching this glob ('github.*', '*.delete*').")
@click.option(
    "--verdict", "verdicts", multiple=True, type=click.Choice(VERDICTS), help="Only this verdict (repeatable)."
)
@click.option("--since", default=None, help="Not before: 10m, 2h, 7d ago, or an ISO time.")
@click.option("--until", default=None, help="Not after: 10m, 2h, 7d ago, or an ISO time.")
@click.option("--session", default=None, help="Only this session id.")
@state_option
def export_cmd(
    fmt: str | None,
    out: Path | None,
    bundle: Path | None,
    kinds: tuple[str, ...],
    config_path: str | None,
    state_dir: Path | None,
    **opts: Any,
) -> None:
    """Write traced records out as json, csv or nl (newline-delimited JSON), streamed; or an evidence bundle.

    Takes the filters of `traces query`; calls and events alike unless --kind. A CSV cell that a spreadsheet
    would run as a formula (= + - @) starts with '.

    With --bundle DIR (or --out DIR and no --format, as before) it writes the bundle that
    `python3 scripts/verify_bundle.py DIR` checks offline: every record since --since, no other filter.

    \b
    Example:
      agent-mesh traces export --format csv --since 7d --out week.csv
      agent-mesh traces export --format nl --kind call --tool 'github.*' | jq .args
      agent-mesh traces export --bundle audit-2026-05 --since 30d
    """
    if bundle is None and out is not None and fmt is None:
        bundle, out = out, None
    if bundle is not None:
        if out is not None or fmt is not None or kinds or any(v for k, v in opts.items() if k != "since"):
            raise click.UsageError("a bundle is the whole chain since a time: only --since goes with --bundle")
        export_bundle_cmd(config_path, state_dir, opts.get("since"), bundle)
        return
    filters = _filters({**opts, "events": True})
    records = (r for r in _read(_source(config_path, state_dir), filters) if kind_matches(kinds, r))
    if out is None:
        _write(records, sys.stdout, fmt or "nl")
        return
    try:
        with _private_file(out) as stream:
            count = _write(records, stream, fmt or "nl")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc}") from None
    click.echo(f"exported {count:,} record(s) to {out}", err=True)


def _write(records: Iterator[dict[str, Any]], stream: TextIO, fmt: str) -> int:
    try:
        return write(records, stream, fmt, terminal=stream.isatty())
    except BrokenPipeError:  # `| head`: the reader has what it wanted; nothing more goes to the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _private_file(path: Path) -> TextIO:
    """A new export file is 0600, like the state dir it comes from: the records hold the agents' arguments."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return open(fd, "w", encoding="utf-8", newline="")  # closed by the caller's `with`


for _command in (search_cmd, export_cmd):
    traces_group.add_command(_command)
