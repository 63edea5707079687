"""`agent-mesh traces verify|key` and `traces export --bundle`: check the trace against its signed checkpoints,
print the key that signs them, and export a bundle that scripts/verify_bundle.py checks offline."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import click

from policy.cli.trace_common import adopt, state_dir_of, state_option
from policy.trace.bundle import export_bundle
from policy.trace.checkpoint import load_key, read_public
from policy.trace.query import parse_when
from policy.trace.verify import ChainCheck, VerifyReport, verify_state


@click.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--key",
    "pinned",
    default=None,
    envvar="AGENT_MESH_TRACE_KEY",
    help="The public key you expect (64 hex digits from `traces key`, kept outside the state dir).",
)
@state_option
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
    folder = state_dir_of(config_path, state_dir)
    if pinned is not None and (len(pinned.strip()) != 64 or any(c not in "0123456789abcdef" for c in pinned.strip())):
        raise click.BadParameter("not 64 lowercase hex digits", param_hint="--key")
    adopt(folder)
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


@click.command("key")
@state_option
def key_cmd(config_path: str | None, state_dir: Path | None) -> None:
    """Print the public key that signs the trace's checkpoints (made on first use; the private half stays 0600).

    Keep a copy outside the state dir and pass it to `traces verify --key` or the bundle verifier: a key
    replaced by someone who can write the state dir is then caught.

    \b
    Example:
      agent-mesh traces key > ~/mesh-trace-key.pub
    """
    folder = state_dir_of(config_path, state_dir, must_exist=False)  # makes the key (and its state dir)
    try:
        public = read_public(folder)
        if public is None:
            made = load_key(folder)
            assert made is not None
            public = read_public(folder)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read or make the trace key in {folder}: {exc}") from None
    click.echo(public)


def export_bundle_cmd(config_path: str | None, state_dir: Path | None, since: str | None, out: Path) -> None:
    """`traces export --bundle DIR` (policy/cli/trace_export.py): write a bundle (records since a time, their
    signed checkpoints, the public key) to check offline.

    The bundle is verified anywhere with `python3 scripts/verify_bundle.py BUNDLE [--key HEX]` (the standard
    library and `cryptography`; nothing of the mesh).
    """
    folder = state_dir_of(config_path, state_dir)
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


evidence_commands = [verify, key_cmd]  # export (records or --bundle) is in trace_export.py
