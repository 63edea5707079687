"""`agent-mesh pins`: the tool pins every adapter's Gate keeps in state.db (policy/gate/pins.py).

`list` shows each tool's pin and whether its listed form still matches; `accept` makes the form a tool was
last listed with its pin, by hand (what an approved call does under `mcp.pin_changed: human_approval`; the
only way back for a tool hidden under `deny`).
"""

from __future__ import annotations

import time

import click

from policy.cli.common import config_option
from policy.cli.look import echo_table
from policy.cli.stateio import ago, by_option, echo_json, json_option, operator
from policy.core.pins import Pin


def _json(pin: Pin) -> dict[str, object]:
    return {
        "server": pin.server,
        "tool": pin.tool,
        "state": pin.state.value,
        "pinned": pin.pinned,
        "seen": pin.seen,
        "first_seen": pin.first_seen,
        "changed_at": pin.changed_at,
        "accepted_at": pin.accepted_at,
    }


@click.group()
def pins() -> None:
    """Tool pins: the fingerprint of each MCP tool's description and schema, and whether it changed.

    \b
    Example:
      agent-mesh pins list
      agent-mesh pins list --changed --json
      agent-mesh pins accept notes.read_note
    """


@pins.command("list")
@config_option
@click.option("--server", default=None, help="Only this server's tools.")
@click.option("--changed", is_flag=True, help="Only tools whose listed form is not their pin (new or changed).")
@json_option
def list_pins(config_path: str | None, server: str | None, changed: bool, as_json: bool) -> None:
    """List the pins, with each tool's state: same (as pinned), new (never pinned) or changed.

    \b
    Example:
      agent-mesh pins list --server notes
    """
    with operator(config_path) as gov:
        found = [p for p in gov.store.list_pins(server) if p.open or not changed]
    if as_json:
        echo_json([_json(p) for p in found])
        return
    if not found:
        click.echo("no pinned tools" if not changed else "no tool differs from its pin")
        return
    now = time.time()
    rows = [
        [f"{p.server}.{p.tool}", p.state.value, (p.pinned or "-")[:12], p.seen[:12], ago(p.changed_at, now)]
        for p in found
    ]
    echo_table(rows, ["TOOL", "STATE", "PINNED", "LISTED", "CHANGED"], coloured=["STATE"])


@pins.command()
@config_option
@click.argument("tool")
@by_option
@json_option
def accept(config_path: str | None, tool: str, by: str, as_json: bool) -> None:
    """Make the form TOOL (server.tool) was last listed with its pin: its calls are judged by the policy again.

    \b
    Example:
      agent-mesh pins accept notes.read_note
    """
    with operator(config_path) as gov:
        match = [p for p in gov.store.list_pins() if f"{p.server}.{p.tool}" == tool]
        if not match:
            raise click.ClickException(f"no pin for {tool!r}: `agent-mesh pins list` shows the pinned tools")
        pin = match[0]
        accepted = gov.store.accept_pin(pin.server, pin.tool, pin.seen, time.time()) if pin.open else pin
    if as_json:
        echo_json({**_json(accepted), "accepted_by": by})
    elif accepted is pin:
        click.echo(f"{tool} is listed as pinned already: nothing to accept")
    else:
        click.echo(f"{tool}: its listed form ({accepted.seen[:12]}) is its pin now (by {by})")
