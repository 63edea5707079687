"""`agent-mesh stop` and `agent-mesh resume`: the emergency stop of one agent's calls, or of every agent's, in
every process on the mesh's state dir (serve, proxy, each mcpwrap), held calls included; and its lifting."""

from __future__ import annotations

import click

from policy.cli.common import config_option, load_loaded
from policy.cli.stateio import by_option, echo_json, json_option
from policy.core.config import LoadedConfig
from policy.core.errors import StoreUnavailable
from policy.core.invisible import one_line
from policy.mesh import emergency
from policy.store.board import ALL, SqliteBoard
from policy.trace.writer import TraceWriter


def _board_and_sink(loaded: LoadedConfig) -> tuple[SqliteBoard, TraceWriter]:
    config = loaded.config
    try:
        return SqliteBoard(config.state_dir), TraceWriter(config.state_dir, config.traces)
    except (StoreUnavailable, OSError, ValueError) as exc:
        raise click.ClickException(f"the state store is unavailable: {exc}") from None


def _scope(agent: str | None, everyone: bool) -> str:
    try:
        return emergency.parse_scope(agent, everyone)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.command("stop")
@config_option
@click.option("--agent", default=None, metavar="NAME", help="Stop this agent's calls.")
@click.option("--all", "everyone", is_flag=True, help="Stop every agent's calls.")
@click.option("--reason", required=True, help="Why: every refused call shows it.")
@by_option
@json_option
def stop_cmd(config_path: str | None, agent: str | None, everyone: bool, reason: str, by: str, as_json: bool) -> None:
    """Emergency stop: every running process refuses new and held calls of an agent (or all) at once.

    The stop is kept in state.db, so it holds across restarts until `agent-mesh resume`. Refused calls get
    code `stopped` with the reason, who stopped and when.

    \b
    Example:
      agent-mesh stop --all --reason "agent deleting files"
      agent-mesh stop --agent claude --reason "runaway loop"
    """
    scope = _scope(agent, everyone)
    loaded = load_loaded(config_path)
    board, sink = _board_and_sink(loaded)
    try:
        made = emergency.stop(board, sink, scope, reason, by)
        known = [*loaded.config.agents, *(p.agent for p in board.processes() if p.agent)]
        note = emergency.unknown_agent_note(scope, known)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--reason") from None
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        board.close()
        sink.close()
    if as_json:
        echo_json({"stop": emergency.to_json(made), "note": note})
        return
    who = "every agent" if scope == ALL else f"agent {scope!r}"
    click.echo(f"stopped {who} (stop {made.id}): running processes refuse their calls within a fraction of a second")
    click.echo(f"lift it with: agent-mesh resume {'--all' if scope == ALL else '--agent ' + scope}")
    if note:
        click.echo(one_line(note))


@click.command("resume")
@config_option
@click.option("--agent", default=None, metavar="NAME", help="Lift this agent's stop.")
@click.option("--all", "everyone", is_flag=True, help="Lift every stop (of all agents and of each one).")
@by_option
@json_option
def resume_cmd(config_path: str | None, agent: str | None, everyone: bool, by: str, as_json: bool) -> None:
    """Lift an emergency stop: calls of the agent (or all) are judged by the policy again.

    \b
    Example:
      agent-mesh resume --all
      agent-mesh resume --agent claude
    """
    scope = _scope(agent, everyone)
    loaded = load_loaded(config_path)
    board, sink = _board_and_sink(loaded)
    try:
        done = emergency.resume(board, sink, None if scope == ALL else scope, by)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        board.close()
        sink.close()
    still = done.still_stopped
    if as_json:
        echo_json(
            {
                "lifted": [emergency.to_json(s) for s in done.lifted],
                "still_stopped_by": emergency.to_json(still) if still is not None else None,
            }
        )
        return
    if not done.lifted:
        click.echo("nothing to resume: no such stop is active")
    for one in done.lifted:
        click.echo(f"resumed: {emergency.describe(one)}")
    if still is not None:
        click.echo(f"note: {scope!r} is still stopped by the stop of all agents ({still.id}): agent-mesh resume --all")
