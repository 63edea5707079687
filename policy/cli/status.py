"""`agent-mesh status`: every process on the mesh's state dir (serve, proxy, each mcpwrap) with the policy it
runs, flagged when that is not the policy its config file on disk gives now; and the active emergency stops.
Read-only: with no state yet, nothing is created."""

from __future__ import annotations

import time
from pathlib import Path

import click

from policy.cli.common import ConfigProblem, config_option, load_loaded, where_used
from policy.cli.look import echo_table, paint
from policy.cli.stateio import ago, echo_json, json_option, no_state_message
from policy.core.errors import StoreUnavailable
from policy.core.invisible import one_line
from policy.mesh import emergency
from policy.mesh.status import describe_process, disk_hashes
from policy.store.board import Process, SqliteBoard, Stop
from policy.store.db import DB_NAME


def read_board(state_dir: Path) -> tuple[list[Process], list[Stop]]:
    board = SqliteBoard(state_dir)
    try:
        return board.processes(), board.active_stops()
    finally:
        board.close()


@click.command("status")
@config_option
@click.option(
    "--state-dir", default=None, metavar="DIR", help="Read this state dir (when the config on disk does not load)."
)
@click.option("--all", "show_gone", is_flag=True, help="Also list processes that are gone.")
@json_option
def status(config_path: str | None, state_dir: str | None, show_gone: bool, as_json: bool) -> None:
    """Which processes govern calls, which policy each runs, and any emergency stop.

    A process is flagged when it runs another policy than its config file gives now (a reload that failed,
    or a setting that needs a restart). Gone processes (no heartbeat for 10 s) are hidden unless --all.
    When the config on disk does not load, the running processes keep their policy: `--state-dir` shows them.

    \b
    Example:
      agent-mesh status
      agent-mesh status --json | jq '.processes[] | select(.current | not)'
      agent-mesh status --state-dir ~/.local/share/agent-mesh/.agent-mesh
    """
    config_error: str | None = None
    try:
        state = Path(load_loaded(config_path).config.state_dir)
    except ConfigProblem as exc:
        if state_dir is None:
            hint = "the running processes keep their policy; see them with `agent-mesh status --state-dir DIR`"
            raise ConfigProblem(f"{exc.message}\n({hint})") from None
        config_error = exc.message
    if state_dir is not None:
        state = Path(state_dir).expanduser().absolute()
    if not (state / DB_NAME).is_file():
        click.echo(no_state_message(state, where_used().get("config")), err=True)
        processes: list[Process] = []
        stops: list[Stop] = []
    else:
        try:
            processes, stops = read_board(state)
        except StoreUnavailable as exc:
            raise click.ClickException(str(exc)) from None
    now = time.time()
    hashes = disk_hashes(processes)
    rows = [describe_process(p, now, hashes.get(p.config)) for p in processes]
    if not show_gone:
        rows = [r for r in rows if r["state"] == "running"]
    if as_json:
        out = {"processes": rows, "stops": [emergency.to_json(s) for s in stops], "config_error": config_error}
        echo_json({**out, "state_dir": str(state)})
        return
    if config_error is not None:
        click.echo(paint(f"the config does not load: {config_error}", "denied"), err=True)
    for one in stops:
        click.echo(paint(f"STOPPED: {emergency.describe(one)}", "denied"))
    if not rows:
        click.echo("no running processes on this state dir")
        return
    table = [
        [
            r["kind"],
            str(r["pid"]),
            r["server"] or "-",
            r["agent"] or "-",
            r["policy_hash"] + ("" if r["current"] else " *"),
            r["state"],
            ago(r["heartbeat"], now),
        ]
        for r in rows
    ]
    echo_table(table, ["KIND", "PID", "SERVER", "AGENT", "POLICY", "STATE", "SEEN"], coloured=["STATE"])
    for r in rows:
        for note in r["notes"]:
            click.echo(f"* {r['kind']} pid {r['pid']}: {one_line(note)}")  # a reload error quotes the file
