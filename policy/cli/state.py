"""`agent-mesh approvals`: list, show, approve, deny and watch the calls waiting for a human."""

from __future__ import annotations

import time

import click

from policy.cli.common import config_option
from policy.cli.look import echo_lines, echo_table, paint
from policy.cli.statecmds import grants, memory
from policy.cli.stateio import (
    ago,
    approval_card,
    as_dict,
    by_option,
    duration,
    echo_json,
    json_option,
    operator,
    short_args,
)
from policy.gate.operator import Operator
from policy.store.base import Approval, ApprovalState, StoreConflict

_STATES = [s.value for s in ApprovalState] + ["all"]


@click.group()
def approvals() -> None:
    """Calls waiting for a human: list, show, approve, deny, watch.

    \b
    Example:
      agent-mesh approvals list
      agent-mesh approvals approve 3f9c2a --reason "routine deploy" --for 30m
      agent-mesh approvals watch
    """


@approvals.command("list")
@config_option
@click.option("--state", "state", type=click.Choice(_STATES), default="pending", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@json_option
def list_(config_path: str | None, state: str, limit: int, as_json: bool) -> None:
    """List approvals, newest first (pending ones by default).

    \b
    Example:
      agent-mesh approvals list
      agent-mesh approvals list --state all --json
    """
    with operator(config_path) as gov:
        found = gov.approvals(None if state == "all" else ApprovalState(state), limit)
    if as_json:
        echo_json([as_dict(a) for a in found])
        return
    if not found:
        click.echo(f"no {'' if state == 'all' else state + ' '}approvals")
        return
    now = time.time()
    rows = [
        [a.id, a.effective_state(now).value, a.agent, _tool(a), short_args(a.arguments), ago(a.created_at, now)]
        for a in found
    ]
    echo_table(rows, ["ID", "STATE", "AGENT", "TOOL", "ARGUMENTS", "ASKED"], coloured=["STATE"])


@approvals.command()
@config_option
@click.argument("approval_id")
@json_option
def show(config_path: str | None, approval_id: str, as_json: bool) -> None:
    """Show one approval (id or a prefix of 6+ characters) with its full arguments.

    \b
    Example:
      agent-mesh approvals show 3f9c2a
    """
    with operator(config_path) as gov:
        a = gov.show(approval_id)
    if as_json:
        echo_json(as_dict(a))
    else:
        echo_lines([approval_card(a)], states=_STATES)


@approvals.command()
@config_option
@click.argument("approval_id")
@click.option("--reason", default="", help="Why (recorded in decision memory).")
@click.option("--for", "for_", metavar="DURATION", help="Also grant this agent this tool for DURATION (30m, 2h).")
@by_option
@json_option
def approve(config_path: str | None, approval_id: str, reason: str, for_: str | None, by: str, as_json: bool) -> None:
    """Approve a waiting call: the agent's identical call (held or retried) passes once.

    \b
    Example:
      agent-mesh approvals approve 3f9c2a --reason "expected release step"
      agent-mesh approvals approve 3f9c2a --for 30m      # and the same tool for 30 minutes
    """
    seconds = duration(for_, "--for") if for_ is not None else None
    with operator(config_path) as gov:
        done, grant = gov.approve(approval_id, by=by, reason=reason, for_seconds=seconds)
    if as_json:
        echo_json({"approval": as_dict(done), "grant": as_dict(grant) if grant else None})
        return
    click.echo(f"{paint('approved')} {done.id}: {done.agent} may call {done.full_name} once with these arguments")
    if grant is not None:
        expires = ago(grant.expires_at)
        where = f" on {done.http['host']}" if done.http and done.http.get("host") else ""
        click.echo(f"grant {grant.id}: {grant.agent} may call {grant.tool}{where} without asking (expires {expires})")


@approvals.command()
@config_option
@click.argument("approval_id")
@click.option("--reason", default="", help="Why (shown to the agent, recorded in decision memory).")
@by_option
@json_option
def deny(config_path: str | None, approval_id: str, reason: str, by: str, as_json: bool) -> None:
    """Deny a waiting call; identical calls are refused at once for approval.deny_cooldown.

    \b
    Example:
      agent-mesh approvals deny 3f9c2a --reason "not on a Friday"
    """
    with operator(config_path) as gov:
        done = gov.deny(approval_id, by=by, reason=reason)
    if as_json:
        echo_json(as_dict(done))
    else:
        click.echo(f"{paint('denied')} {done.id}: {done.agent} calling {done.full_name}")


@approvals.command()
@config_option
@by_option
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after deciding this many.")
@click.option("--poll", type=click.FloatRange(0.05), default=0.5, show_default=True, help="Seconds between checks.")
def watch(config_path: str | None, by: str, count: int | None, poll: float) -> None:
    """Prompt for each call as it starts waiting: approve, deny or skip. Ctrl-C to stop.

    \b
    Example:
      agent-mesh approvals watch
      agent-mesh approvals watch --by alice --count 1
    """
    seen: set[str] = set()
    decided = 0
    click.echo("watching for calls that wait for a human (Ctrl-C to stop)")
    with operator(config_path) as gov:
        try:
            while count is None or decided < count:
                fresh = [a for a in reversed(gov.approvals(ApprovalState.PENDING)) if a.id not in seen]
                for a in fresh:
                    seen.add(a.id)
                    if _prompt(gov, a.id, by):
                        decided += 1
                    if count is not None and decided >= count:
                        return
                if not fresh:
                    time.sleep(poll)
        except (KeyboardInterrupt, click.Abort, EOFError):
            click.echo("\nstopped watching")


def _prompt(gov: Operator, approval_id: str, by: str) -> bool:
    """Ask about one approval; True when this human decided it."""
    a = gov.show(approval_id)
    echo_lines(["", approval_card(a)], states=_STATES)
    choice = click.prompt("approve, deny or skip?", type=click.Choice(["a", "d", "s"]), default="s")
    if choice == "s":
        return False
    reason = click.prompt("reason", default="", show_default=False)
    try:
        if choice == "a":
            gov.approve(a.id, by=by, reason=reason)
        else:
            gov.deny(a.id, by=by, reason=reason)
    except StoreConflict as exc:
        click.echo(f"not recorded: {exc}")
        return False
    click.echo(f"{'approved' if choice == 'a' else 'denied'} {a.id}")
    return True


state_commands: list[click.Command] = [approvals, grants, memory]


def _tool(a: Approval) -> str:
    """The tool, and for an HTTP call the request line it was asked for (the host tells staging from prod)."""
    return f"{a.full_name} ({a.request_line})" if a.request_line else a.full_name
