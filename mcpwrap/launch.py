"""The `mcpwrap` entry point: start the server before loading the rest of mcpwrap, then check the config.

Most of `mcpwrap -- CMD`'s start-up is importing and checking the config (click, asyncio, YAML, pydantic,
the store and the trace writer). So the server is started first, with nothing heavier than `subprocess`
and `hashlib` loaded, and boots while mcpwrap loads, checks the config and opens the Gate; it is sent no
frame before that, and a failed check stops it (exit 2, the same `file:line: key: message`): a wrong config
never gets a call forwarded, though its server may have started. That holds for a config whose exact
inputs passed the check before (`mcpwrap.checked`) and for one never checked. The exception: when the
server's environment has proxy variables, they are tagged by comparing them with the config's
`proxy.listen`, so a config never checked (or changed since) is checked before the server starts
(`mcpwrap.startup.check_then_serve`), and a wrong one starts nothing. Anything else — another subcommand,
`--help`, an option this parser does not know — goes through the click CLI unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# mcpwrap.cli's other subcommands: a command line starting with one of them is not the default command.
SUBCOMMANDS = frozenset({"exec", "shims", "install"})
# The default command's options that take a value, as `mcpwrap.cli.run` declares them.
_VALUE_OPTIONS = {"--config": "config_path", "--agent": "agent", "--server": "server", "--state-dir": "state_dir"}


class RunArgs:
    """The default command's arguments (a plain class: `dataclasses` alone costs 10 ms to import)."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.config_path: str | None = None
        self.agent: str | None = None
        self.server: str | None = None
        self.state_dir: str | None = None


def parse_run(argv: Sequence[str]) -> RunArgs | None:
    """`[run] [--config F] [--agent A] [--server S] [--state-dir D] [--] CMD…`, or None for anything else.

    Deliberately narrow: when in doubt it answers None and click parses the command line instead.
    """
    args = list(argv)
    if args[:1] and args[0] in SUBCOMMANDS:
        return None
    if args[:1] == ["run"]:
        args = args[1:]
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-"):
            break
        name, eq, value = arg.partition("=")
        if name not in _VALUE_OPTIONS or name in values:
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        values[name] = value
        i += 1
    command = args[i:]
    if not command or not all(values.values()):
        return None
    run = RunArgs(command=command)
    for option, value in values.items():
        setattr(run, _VALUE_OPTIONS[option], value)
    return run


def main() -> None:
    run = parse_run(sys.argv[1:])
    if run is None:
        from mcpwrap.cli import main as cli_main

        cli_main()
        return
    from mcpwrap.checked import Checked, recall
    from mcpwrap.proxy_session import DEFAULT_AGENT, PROXY_VARS

    agent = run.agent or DEFAULT_AGENT
    checked = recall(run.config_path, run.state_dir)
    never_checked = checked is None
    if checked is None:
        if any(os.environ.get(name) for name in PROXY_VARS):
            # The server's proxy URLs are tagged by comparing them with the config's proxy.listen: that
            # needs the config, so it is checked first (a wrong one starts nothing).
            from mcpwrap.startup import check_then_serve

            check_then_serve(
                run.command, config_path=run.config_path, state_dir=run.state_dir, agent=agent, server=run.server
            )
        # Nothing the server is started with depends on the config: start it now and check the config
        # while it boots, as for a config checked before (a wrong one stops it before it hears a frame).
        checked = Checked(listen="")
    from mcpwrap.process import start_or_exit
    from mcpwrap.proxy_session import child_environment, new_session_id

    session_id = new_session_id()
    child = start_or_exit(run.command, child_environment(os.environ, agent, session_id, checked.listen))
    from mcpwrap.startup import serve_started

    serve_started(
        child,
        run.command,
        config_path=run.config_path,
        state_dir=run.state_dir,
        agent=agent,
        server=run.server,
        session_id=session_id,
        note_checked=never_checked,
    )
