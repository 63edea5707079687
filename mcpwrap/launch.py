"""The `mcpwrap` entry point: start a server whose config is known good before loading the rest of mcpwrap.

Most of `mcpwrap -- CMD`'s start-up is importing and checking the config (click, asyncio, YAML, pydantic,
the store and the trace writer). When the config's exact inputs already passed that check
(`mcpwrap.checked`), the server is started first, with nothing heavier than `subprocess` and `hashlib`
loaded, and boots while mcpwrap loads, checks the config again and opens the Gate; it is sent no frame
before that, and a failed check stops it. Anything else — another subcommand, `--help`, an option this
parser does not know — goes through the click CLI unchanged. A config never checked, or changed since, is
checked before the server starts (`mcpwrap.startup.check_then_serve`): a wrong one still starts nothing.
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
    from mcpwrap.checked import recall
    from mcpwrap.proxy_session import DEFAULT_AGENT

    agent = run.agent or DEFAULT_AGENT
    checked = recall(run.config_path, run.state_dir)
    if checked is None:
        from mcpwrap.startup import check_then_serve

        check_then_serve(
            run.command, config_path=run.config_path, state_dir=run.state_dir, agent=agent, server=run.server
        )
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
    )
