"""`agent-mesh traces tail|query|sessions|verify` and `agent-mesh replay`: read, check and re-judge the trace."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import click

from policy.cli.common import config_option, load_loaded, load_policy_set
from policy.trace.ahead import AHEAD_DIR, recover
from policy.trace.bundle import export_bundle
from policy.trace.checkpoint import load_key, read_public
from policy.trace.query import VERDICTS, Filters, TraceSource, open_source, parse_when
from policy.trace.replay import ReplayResult, replay
from policy.trace.verify import ChainCheck, VerifyReport, verify_state

FOLLOW_POLL_SECONDS = 0.5
_WIDTHS = (("time", 19), ("agent", 12), ("tool", 28), ("verdict", 13), ("by", 22), ("outcome", 14), ("ms", 7))


def _state_option[F: Callable[..., Any]](f: F) -> F:
    f = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Read this state dir instead of the config's state_dir.",
    )(f)
    return config_option(f)


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
    return _state_option(f)


def _filters(opts: dict[str, Any]) -> Filters:
    now = time.time()
    try:
        since = parse_when(opts["since"], now) if opts.get("since") else None
        until = parse_when(opts["until"], now) if opts.get("until") else None
        return Filters(
            opts.get("agent"), opts.get("tool"), tuple(opts.get("verdicts") or ()), since, until, opts.get("session")
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _state_dir(config_path: str | None, state_dir: Path | None) -> Path:
    return state_dir if state_dir is not None else Path(load_loaded(config_path).config.state_dir)


def _source(config_path: str | None, state_dir: Path | None, traces_file: Path | None = None) -> TraceSource:
    """--traces FILE, else --state-dir, else the config's state dir (its table unless `traces.sqlite` is off)."""
    if traces_file is not None:
        return open_source(Path("."), traces_file)
    if state_dir is not None:
        _adopt(state_dir)
        return open_source(state_dir)
    config = load_loaded(config_path).config
    _adopt(Path(config.state_dir), config.traces.jsonl, config.traces.sqlite, config.traces.max_bytes)
    return open_source(Path(config.state_dir), table=config.traces.sqlite)


def _adopt(folder: Path, jsonl: bool = True, sqlite: bool = True, max_bytes: int = 64 << 20) -> None:
    """Chain the decisions a stopped mesh process wrote ahead but never recorded (policy.trace.ahead), so the
    trace read next shows every call that ran; a state dir this user cannot write is read as it is."""
    if (folder / AHEAD_DIR).is_dir():
        with contextlib.suppress(OSError, sqlite3.Error):
            recover(folder, jsonl=jsonl, sqlite=sqlite, max_bytes=max_bytes)


def _cell(value: Any, width: int) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(record: dict[str, Any]) -> str:
    ts = record.get("ts")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "-"
    outcome = record.get("outcome")
    if record.get("status") is not None:
        outcome = f"{outcome} {record['status']}"
    latency = record.get("latency_ms")
    values = {
        "time": when,
        "agent": record.get("agent"),
        "tool": record.get("tool"),
        "verdict": record.get("verdict"),
        "by": record.get("decided_by"),
        "outcome": outcome,
        "ms": f"{latency:.1f}" if isinstance(latency, int | float) else None,
    }
    cells = [_cell(values[name], width).ljust(width) for name, width in _WIDTHS]
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
      agent-mesh traces export --since 7d --out audit
    """


@traces_group.command("tail")
@click.option("-n", "--lines", "count", default=20, show_default=True, help="How many recent records to show first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records as they arrive (Ctrl-C stops).")
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


@traces_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--key",
    "pinned",
    default=None,
    envvar="AGENT_MESH_TRACE_KEY",
    help="The public key you expect (64 hex digits from `traces key`, kept outside the state dir).",
)
@_state_option
def verify(config_path: str | None, state_dir: Path | None, as_json: bool, pinned: str | None) -> None:
    """Check the trace against its signed checkpoints and its hash chain; name each thing that does not hold.

    Exits 0 when the chain holds and reaches the last signed checkpoint, 1 when a record was changed, removed
    or inserted, a store was emptied or deleted, the chain was resealed, or checkpoints were removed.

    \b
    Example:
      agent-mesh traces verify
      agent-mesh traces verify --key "$(cat ~/mesh-trace-key.pub)"
      agent-mesh traces verify --state-dir /srv/mesh/.agent-mesh --json
    """
    folder = _state_dir(config_path, state_dir)
    if pinned is not None and (len(pinned.strip()) != 64 or any(c not in "0123456789abcdef" for c in pinned.strip())):
        raise click.BadParameter("not 64 lowercase hex digits", param_hint="--key")
    _adopt(folder)
    try:
        report = verify_state(folder, key=pinned.strip() if pinned else None)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot read the trace in {folder}: {exc}") from None
    if as_json:
        click.echo(json.dumps(_report_json(folder, report), indent=2))
    else:
        click.echo(_report_text(folder, report))
    if not report.ok:
        raise click.exceptions.Exit(1)


@traces_group.command("key")
@_state_option
def key_cmd(config_path: str | None, state_dir: Path | None) -> None:
    """Print the public key that signs the trace's checkpoints (made on first use; the private half stays 0600).

    Keep a copy outside the state dir and pass it to `traces verify --key` or the bundle verifier: a key
    replaced by someone who can write the state dir is then caught.

    \b
    Example:
      agent-mesh traces key > ~/mesh-trace-key.pub
    """
    folder = _state_dir(config_path, state_dir)
    try:
        public = read_public(folder)
        if public is None:
            made = load_key(folder)
            assert made is not None
            public = read_public(folder)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read or make the trace key in {folder}: {exc}") from None
    click.echo(public)


@traces_group.command("export")
@click.option("--since", default=None, help="From the first record at or after: 10m, 2h, 7d ago, or an ISO time.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="The bundle folder to write.")
@_state_option
def export_cmd(config_path: str | None, state_dir: Path | None, since: str | None, out: Path) -> None:
    """Write a bundle (records since a time, their signed checkpoints, the public key) to check offline.

    The bundle is verified anywhere with `python3 scripts/verify_bundle.py BUNDLE [--key HEX]` (the standard
    library and `cryptography`; nothing of the mesh).

    \b
    Example:
      agent-mesh traces export --since 7d --out audit-2026-05
      python3 scripts/verify_bundle.py audit-2026-05 --key "$(cat ~/mesh-trace-key.pub)"
    """
    folder = _state_dir(config_path, state_dir)
    try:
        start = parse_when(since, time.time()) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        done = export_bundle(folder, out, since=start)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot export the trace of {folder}: {exc}") from None
    click.echo(
        f"wrote {done.records:,} records (from chain position {done.first:,}) and {done.checkpoints} "
        f"checkpoint(s) to {done.out}"
    )
    if not done.signed:
        click.echo(
            "note: the private key is not readable here: the bundle ends at the last checkpoint signed", err=True
        )


def _report_json(folder: Path, report: VerifyReport) -> dict[str, Any]:
    def check(c: ChainCheck | None) -> dict[str, Any] | None:
        if c is None:
            return None
        return {"records": c.records, "tip": c.tip, "broken": None if c.broken is None else str(c.broken)}

    last = report.anchoring.last
    files = check(report.jsonl)
    if files is not None:
        files["files"] = [name for name, _ in report.files]
    return {
        "ok": report.ok,
        "state_dir": str(folder),
        "jsonl": files,
        "table": check(report.table),
        "problems": report.problems,
        "checkpoints": len(report.anchoring.checkpoints),
        "last_checkpoint": None if last is None else {"count": last.count, "head": last.head, "ts": last.ts},
        "key": report.anchoring.key,
    }


def _report_text(folder: Path, report: VerifyReport) -> str:
    empty = all(c is None or c.records == 0 for c in (report.jsonl, report.table))
    if report.ok and empty and report.anchoring.last is None:
        return f"nothing to verify: no traces in {folder}"
    if not report.ok:
        return "\n".join(f"BROKEN: {p}" for p in report.problems)
    parts = []
    if report.jsonl is not None:
        names = [n for n, _ in report.files]
        span = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
        parts.append(f"{report.jsonl.records:,} records in {len(names)} file(s) ({span})")
    if report.table is not None:
        parts.append(f"{report.table.records:,} rows in state.db")
    chain = report.jsonl or report.table
    tip = chain.tip if chain is not None else ""
    text = f"OK: {' and '.join(parts)}: the chain is unbroken (last hash {tip[:16]}…)"
    last = report.anchoring.last
    if last is None:
        return text
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.ts))
    return f"{text}; it reaches the last signed checkpoint ({last.count:,} records, {when})"


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
    source = _source(config_path, state_dir, traces_file)
    result = replay(_read(source, _filters(opts)), policy_set)
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


trace_commands = [traces_group, replay_cmd]
