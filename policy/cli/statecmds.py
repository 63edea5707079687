"""`agent-mesh grants` (temporary permissions) and `agent-mesh memory` (the precedents humans set)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from policy.cli.common import config_option
from policy.cli.look import echo_table
from policy.cli.stateio import ago, as_dict, by_option, duration, echo_json, json_option, operator, short_args


@click.group()
def grants() -> None:
    """Temporary permissions that lift human_approval (never deny): add, list, revoke.

    \b
    Example:
      agent-mesh grants add --agent claude --tool 'github.create_*' --for 2h
      agent-mesh grants list
      agent-mesh grants revoke 7d01e4
    """


@grants.command("add")
@config_option
@click.option("--agent", required=True, help="Agent glob (claude, 'ci-*').")
@click.option("--tool", required=True, help="Tool glob on the full name (filesystem.write_file, 'github.*').")
@click.option("--for", "for_", required=True, metavar="DURATION", help="How long it lasts (30m, 2h, 1d).")
@click.option(
    "--when", "when", metavar="JSON", help='Argument conditions, e.g. \'{"args.path": {"glob": "/tmp/**"}}\'.'
)
@click.option("--max-uses", type=click.IntRange(1), default=None, help="Stop after this many calls.")
@click.option("--reason", default="", help="Why (shown in traces and lists).")
@by_option
@json_option
def add(
    config_path: str | None,
    agent: str,
    tool: str,
    for_: str,
    when: str | None,
    max_uses: int | None,
    reason: str,
    by: str,
    as_json: bool,
) -> None:
    """Grant matching calls that would wait for a human; calls the policy denies stay denied.

    \b
    Example:
      agent-mesh grants add --agent claude --tool filesystem.write_file --for 30m \\
        --when '{"args.path": {"glob": "/srv/site/**"}}' --max-uses 20 --reason "site rebuild"
    """
    seconds = duration(for_, "--for")
    conditions: dict[str, Any] | None = None
    if when is not None:
        try:
            conditions = json.loads(when)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--when") from None
        if not isinstance(conditions, dict):
            raise click.BadParameter("must be a JSON object of conditions", param_hint="--when")
    with operator(config_path) as gov:
        g = gov.add_grant(agent, tool, seconds, by=by, when=conditions, max_uses=max_uses, reason=reason)
    if as_json:
        echo_json(as_dict(g))
    else:
        click.echo(f"grant {g.id}: {g.agent} may call {g.tool} without asking (expires {ago(g.expires_at)})")


@grants.command("list")
@config_option
@click.option("--all", "include_all", is_flag=True, help="Include expired, used-up and revoked grants.")
@json_option
def list_grants(config_path: str | None, include_all: bool, as_json: bool) -> None:
    """List active grants (with --all, every grant ever made).

    \b
    Example:
      agent-mesh grants list --all --json
    """
    with operator(config_path) as gov:
        found = gov.grants(include_inactive=include_all)
    if as_json:
        echo_json([as_dict(g) for g in found])
        return
    if not found:
        click.echo("no active grants" if not include_all else "no grants")
        return
    now = time.time()
    rows = []
    for g in found:
        status = "active" if g.active(now) else ("revoked" if g.revoked_at else "ended")
        uses = f"{g.uses}/{g.max_uses}" if g.max_uses else str(g.uses)
        when = short_args(g.when, 32) if g.when else "-"
        rows.append([g.id, status, g.agent, g.tool, when, uses, ago(g.expires_at, now), g.created_by])
    echo_table(rows, ["ID", "STATUS", "AGENT", "TOOL", "WHEN", "USES", "EXPIRES", "BY"], coloured=["STATUS"])


@grants.command()
@config_option
@click.argument("grant_id")
@by_option
@json_option
def revoke(config_path: str | None, grant_id: str, by: str, as_json: bool) -> None:
    """Revoke a grant by id or a prefix of 6+ characters.

    \b
    Example:
      agent-mesh grants revoke 7d01e4
    """
    with operator(config_path) as gov:
        g = gov.revoke_grant(grant_id, by=by)
    if as_json:
        echo_json(as_dict(g))
    else:
        click.echo(f"revoked grant {g.id} ({g.agent} calling {g.tool})")


@click.group()
def memory() -> None:
    """Decision memory: the human and supervisor decisions that auto-approve repeats.

    \b
    Example:
      agent-mesh memory list --agent claude
      agent-mesh memory forget --agent claude --tool filesystem.write_file
    """


@memory.command("list")
@config_option
@click.option("--agent", default=None, help="Only this agent.")
@click.option("--tool", default=None, help="Only this tool (full name).")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@json_option
def list_facts(config_path: str | None, agent: str | None, tool: str | None, limit: int, as_json: bool) -> None:
    """List remembered decisions, newest first.

    \b
    Example:
      agent-mesh memory list --tool github.merge_pull_request
    """
    with operator(config_path) as gov:
        found = gov.facts(agent, tool, limit)
    if as_json:
        echo_json([as_dict(f) for f in found])
        return
    if not found:
        click.echo("no remembered decisions")
        return
    now = time.time()
    rows = [
        [f.id, f.decision, f.agent, f.tool, short_args(f.arguments, 40), f.by, ago(f.ts, now), f.reason or "-"]
        for f in found
    ]
    echo_table(rows, ["ID", "DECISION", "AGENT", "TOOL", "ARGUMENTS", "BY", "WHEN", "REASON"], coloured=["DECISION"])


@memory.command()
@config_option
@click.argument("fact_ids", nargs=-1)
@click.option("--agent", default=None, help="Forget every decision about this agent.")
@click.option("--tool", default=None, help="Forget every decision about this tool (with --agent: both must match).")
@json_option
def forget(
    config_path: str | None, fact_ids: tuple[str, ...], agent: str | None, tool: str | None, as_json: bool
) -> None:
    """Forget decisions by id prefix (6+ characters), or all of an agent's and/or a tool's.

    \b
    Example:
      agent-mesh memory forget 5be0c1a2
      agent-mesh memory forget --agent claude --tool filesystem.write_file
    """
    with operator(config_path) as gov:
        n = gov.forget(fact_ids, agent, tool)
    if as_json:
        echo_json({"forgotten": n})
    else:
        click.echo(f"forgot {n} decision{'s' if n != 1 else ''}")
