"""`agent-mesh traces tail|query|sessions` and `agent-mesh replay`: read and re-judge the trace (`verify` and `key`,
which check it, are in trace_evidence.py; `search` and `export` in trace_export.py)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import click

from policy.cli.common import load_loaded, load_policy_set
from policy.cli.look import paint
from policy.cli.trace_common import adopt, state_option
from policy.cli.trace_evidence import evidence_commands
from policy.core.invisible import one_line
from policy.gate.dryrun import replay_judge
from policy.trace.query import VERDICTS, Filters, TraceSource, open_source, parse_when
from policy.trace.record import event_label, is_call
from policy.trace.replay import ReplayResult, replay

FOLLOW_POLL_SECONDS = 0.5
_WIDTHS = (("time", 19), ("agent", 12), ("tool", 28), ("verdict", 13), ("by", 22), ("outcome", 14), ("ms", 7))
_VERDICT = [name for name, _ in _WIDTHS].index("verdict")


def _filter_options[F: Callable[..., Any]](f: F) -> F:
    for option in reversed(
        [
            click.option("--agent", default=None, help="Only this agent (a glob: 'claude*')."),
            click.option("--tool", default=None, help="Only tools matching this glob ('github.*', '*.delete*')."),
            click.option(
                "--verdict",
                "verdicts",
                multiple=True,
                type=click.Choice(VERDICTS),
                help="Only this verdict (repeatable).",
            ),
            click.option("--since", default=None, help="Not before: 10m, 2h, 7d ago, or an ISO time."),
            click.option("--until", default=None, help="Not after: 10m, 2h, 7d ago, or an ISO time."),
            click.option("--session", default=None, help="Only this session id."),
            click.option("--json", "as_json", is_flag=True, help="Print one JSON record per line."),
        ]
    ):
        f = option(f)
    return state_option(f)


# Event records (a tool first seen or changed, tools hidden from a listing) are not calls: shown on request.
_events_option = click.option(
    "--events", is_flag=True, help="Show event records too (tool first seen, tool changed, tools hidden)."
)


def _filters(opts: dict[str, Any]) -> Filters:
    now = time.time()
    try:
        since = parse_when(opts["since"], now) if opts.get("since") else None
        until = parse_when(opts["until"], now) if opts.get("until") else None
        return Filters(
            opts.get("agent"),
            opts.get("tool"),
            tuple(opts.get("verdicts") or ()),
            since,
            until,
            opts.get("session"),
            events=bool(opts.get("events")),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _source(config_path: str | None, state_dir: Path | None, traces_file: Path | None = None) -> TraceSource:
    """--traces FILE, else --state-dir, else the config's state dir (its table unless `traces.sqlite` is off)."""
    if traces_file is not None:
        return open_source(Path("."), traces_file)
    if state_dir is not None:
        adopt(state_dir)
        return open_source(state_dir)
    config = load_loaded(config_path).config
    adopt(Path(config.state_dir), config.traces.jsonl, config.traces.sqlite, config.traces.max_bytes)
    return open_source(Path(config.state_dir), table=config.traces.sqlite)


def _cell(value: Any, width: int) -> str:
    text = "-" if value is None or value == "" else one_line(str(value))  # agent-chosen text: no escapes
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(record: dict[str, Any]) -> str:
    ts = record.get("ts")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "-"
    outcome = record.get("outcome")
    if record.get("status") is not None:
        outcome = f"{outcome} {record['status']}"
    latency = record.get("latency_ms")
    call = is_call(record)
    values = {
        "time": when,
        "agent": record.get("agent"),
        "tool": record.get("tool"),
        "verdict": record.get("verdict") if call else event_label(record),
        "by": record.get("decided_by") if call else record.get("rule"),
        "outcome": outcome,
        "ms": f"{latency:.1f}" if isinstance(latency, int | float) else None,
    }
    cells = [_cell(values[name], width).ljust(width) for name, width in _WIDTHS]
    cells[_VERDICT] = paint(cells[_VERDICT], str(values["verdict"]))  # coloured on a terminal, padded alike
    args = json.dumps(record.get("args"), ensure_ascii=False, separators=(",", ":"))
    return "  ".join([*cells, _cell(str(record.get("trace_id", ""))[:8], 8).ljust(8), _cell(args, 60)])


def _header() -> str:
    cells = [name.upper().ljust(width) for name, width in _WIDTHS]
    return "  ".join([*cells, "TRACE".ljust(8), "ARGS"])


def _print(records: Iterable[dict[str, Any]], as_json: bool, *, header: bool = True) -> int:
    count = 0
    for record in records:
        if count == 0 and header and not as_json:
            click.echo(_header())
        click.echo(json.dumps(record, ensure_ascii=False) if as_json else _row(record))
        count += 1
    return count


def _read(source: TraceSource, filters: Filters, *, newest_first: bool = False) -> Iterator[dict[str, Any]]:
    try:
        yield from source.records(filters, newest_first=newest_first)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot read the trace: {exc}") from None


@click.group("traces")
def traces_group() -> None:
    """Read and check the trace: one hash-chained record per tool call.

    Records live in <state_dir>/traces.jsonl (rotated to traces.1.jsonl, traces.2.jsonl, ...) and in
    the `traces` table of <state_dir>/state.db.

    \b
    Example:
      agent-mesh traces tail -f
      agent-mesh traces query --agent claude --verdict deny --since 2h
      agent-mesh traces verify
      agent-mesh traces search 'github AND delete*'
      agent-mesh traces export --format csv --since 7d --out week.csv
      agent-mesh traces export --bundle audit --since 7d
    """


@traces_group.command("tail")
@click.option("-n", "--lines", "count", default=20, show_default=True, help="How many recent records to show first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records as they arrive (Ctrl-C stops).")
@_events_option
@_filter_options
def tail(count: int, follow: bool, config_path: str | None, state_dir: Path | None, as_json: bool, **opts: Any) -> None:
    """Show the most recent traced calls, oldest first; with -f, keep following.

    \b
    Example:
      agent-mesh traces tail -n 50
      agent-mesh traces tail -f --agent claude --verdict pending
      agent-mesh traces tail -f --json | jq .tool
    """
    filters = _filters(opts)
    source = _source(config_path, state_dir)
    try:
        position = source.position() if follow else None
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot read the trace: {exc}") from None
    recent = list(islice(_read(source, filters, newest_first=True), count))
    shown = _print(reversed(recent), as_json)
    if not follow:
        if not shown and not as_json:
            click.echo("no traced calls match", err=True)
        return
    if not shown and not as_json:
        click.echo(_header())
    try:
        while True:
            time.sleep(FOLLOW_POLL_SECONDS)  # a CLI poll loop; writers never wait for readers
            try:
                fresh, position = source.after(position, filters)
            except (OSError, sqlite3.Error):
                continue  # a rotation or a busy database: try again on the next poll
            _print(fresh, as_json, header=False)
    except KeyboardInterrupt:
        return


@traces_group.command("query")
@click.option("--limit", default=100, show_default=True, help="At most this many records (0: no limit).")
@click.option("--traces", "traces_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Read this JSONL file instead of the state dir.")  # fmt: skip
@_events_option
@_filter_options
def query(
    limit: int, traces_file: Path | None, config_path: str | None, state_dir: Path | None, as_json: bool, **opts: Any
) -> None:
    """List traced calls that match the filters, oldest first.

    \b
    Example:
      agent-mesh traces query --tool 'github.*' --since 1d
      agent-mesh traces query --verdict deny --verdict rate_limited --json
      agent-mesh traces query --session 7f3a --since 2026-05-01T09:00
    """
    records = _read(_source(config_path, state_dir, traces_file), _filters(opts))
    shown = _print(islice(records, limit) if limit > 0 else records, as_json)
    if limit > 0 and shown == limit and next(records, None) is not None and not as_json:
        click.echo(f"(first {limit} shown: raise --limit or narrow the filters)", err=True)
    elif not shown and not as_json:
        click.echo("no traced calls match", err=True)


@traces_group.command("sessions")
@_filter_options
def sessions(config_path: str | None, state_dir: Path | None, as_json: bool, **opts: Any) -> None:
    """Summarise traced calls per session: agents, calls, verdicts, first and last call.

    \b
    Example:
      agent-mesh traces sessions --since 1d
      agent-mesh traces sessions --agent claude --json
    """
    summary: dict[str, dict[str, Any]] = {}
    for record in _read(_source(config_path, state_dir), _filters(opts)):
        key = str(record.get("session_id") or "-")
        s = summary.setdefault(key, {"session_id": key, "agents": [], "calls": 0, "verdicts": {}, "first": None})
        if record.get("agent") not in s["agents"]:
            s["agents"].append(record.get("agent"))
        s["calls"] += 1
        verdict = str(record.get("verdict"))
        s["verdicts"][verdict] = s["verdicts"].get(verdict, 0) + 1
        ts = record.get("ts")
        s["first"] = ts if s["first"] is None else min(s["first"], ts)
        s["last"] = ts if s.get("last") is None else max(s["last"], ts)
    rows = sorted(summary.values(), key=lambda s: s["last"] or 0)
    if as_json:
        for s in rows:
            click.echo(json.dumps(s, ensure_ascii=False))
        return
    if not rows:
        click.echo("no traced calls match", err=True)
        return
    click.echo(f"{'SESSION':<36}  {'AGENTS':<20}  {'CALLS':>6}  {'ALLOW':>6}  {'DENY':>6}  {'PENDING':>7}  LAST")
    for s in rows:
        v = s["verdicts"]
        last = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["last"])) if s["last"] else "-"
        agents = _cell(",".join(str(a) for a in s["agents"]), 20)
        click.echo(
            f"{_cell(s['session_id'], 36):<36}  {agents:<20}  {s['calls']:>6}  {v.get('allow', 0):>6}  "
            f"{v.get('deny', 0):>6}  {v.get('pending', 0):>7}  {last}"
        )


@click.command("replay")
@click.argument("candidate", type=click.Path(dir_okay=False, exists=True))
@click.option("--traces", "traces_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Recorded calls from this JSONL file (default: the trace of --config's state dir).")  # fmt: skip
@_filter_options
def replay_cmd(
    candidate: str,
    traces_file: Path | None,
    config_path: str | None,
    state_dir: Path | None,
    as_json: bool,
    **opts: Any,
) -> None:
    """Re-judge recorded calls under a candidate config; list every call whose decision would change.

    Exits 1 when any decision changes, so a policy change can be checked in CI against real traffic.

    \b
    Example:
      agent-mesh replay new-policy.yaml
      agent-mesh replay new-policy.yaml --traces traces.jsonl --since 7d
      agent-mesh replay new-policy.yaml --config agent-mesh.yaml --agent claude --json
    """
    policy_set, file = load_policy_set(candidate)
    # Judged as the live gate judges (Gate.preview: the state-dir guard first), on an empty state: a decision
    # does not depend on grants or memory, and nothing of the candidate's state dir is read or created.
    judge = replay_judge(load_loaded(candidate, announce=False))
    source = _source(config_path, state_dir, traces_file)
    result = replay(_read(source, _filters(opts)), judge)
    if as_json:
        for change in result.changes:
            click.echo(json.dumps(change.as_json(), ensure_ascii=False))
    else:
        click.echo(_replay_text(file, policy_set.policy_hash, result))
    if result.changes:
        raise click.exceptions.Exit(1)


def _replay_text(file: str, policy_hash: str, result: ReplayResult) -> str:
    lines = [f"replayed {result.replayed:,} recorded call(s) under {file} (policy hash {policy_hash})"]
    if result.changes:
        lines.append(f"{'TIME':<19}  {'AGENT':<12}  {'TOOL':<28}  {'BEFORE → AFTER':<30}  {'NEW RULE':<24}  ARGS")
    moves: dict[str, int] = {}
    for c in result.changes:
        ts = c.record.get("ts")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "-"
        move = f"{c.before} → {c.after.action.value}"
        moves[move] = moves.get(move, 0) + 1
        args = json.dumps(c.record.get("args"), ensure_ascii=False, separators=(",", ":"))
        lines.append(
            f"{when:<19}  {_cell(c.record.get('agent'), 12):<12}  {_cell(c.record.get('tool'), 28):<28}  "
            f"{move:<30}  {_cell(c.after.rule, 24):<24}  {_cell(args, 50)}"
        )
    if result.changes:
        summary = ", ".join(f"{m} {n}" for m, n in sorted(moves.items()))
        lines.append(f"{len(result.changes)} call(s) would change: {summary}")
        redacted = sum(c.redacted for c in result.changes)
        if redacted:
            lines.append(
                f"note: {redacted} changed call(s) have redacted arguments; "
                "a rule on a redacted field saw [REDACTED], not the live value"
            )
    else:
        lines.append("no decision would change")
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} record(s) that are not calls: {result.skipped[0]}")
    return "\n".join(lines)


for _command in evidence_commands:
    traces_group.add_command(_command)

# `search` and `export` take this module's filter options, so trace_export.py imports this module and adds them
# to traces_group itself: a plain import here, which holds whichever of the two modules is imported first.
import policy.cli.trace_export  # noqa: E402, F401

trace_commands = [traces_group, replay_cmd]
