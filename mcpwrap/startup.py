"""`mcpwrap -- CMD` from a parsed command line to the exit status, in the two orders start-up can take.

`check_then_serve`: the config is loaded and checked, then the server starts (a wrong config starts
nothing). `serve_started`: the server was started early on a config whose inputs passed the check before
(mcpwrap.launch); the config is checked again while it boots, and a failure stops it unheard. Either way
the store and trace writer open while the server boots, and it is sent no frame before the Gate is ready.
No click here, and asyncio loads only once the server is started: `mcpwrap.launch` comes straight here.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from mcpwrap.process import Child, forwarding_signals, signal_group, start_or_exit
from mcpwrap.proxy_session import child_environment, new_session_id

if TYPE_CHECKING:
    from policy import LoadedConfig


def setup_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="mcpwrap: %(message)s")


def check_then_serve(
    command: Sequence[str], *, config_path: str | None, state_dir: str | None, agent: str, server: str | None
) -> NoReturn:
    """Check the config (exit 2 when wrong, having started nothing), then start and serve the server."""
    setup_logging()
    from mcpwrap.gateway import load

    loaded = load(config_path, state_dir, note_checked=True)
    session_id = new_session_id()
    child = start_or_exit(command, child_environment(os.environ, agent, session_id, loaded.config.proxy.listen))
    sys.exit(_run(_serve(child, command, loaded, agent, server, session_id)))


def serve_started(
    child: Child,
    command: Sequence[str],
    *,
    config_path: str | None,
    state_dir: str | None,
    agent: str,
    server: str | None,
    session_id: str,
    note_checked: bool = False,
) -> NoReturn:
    """Serve a server started early (on a config that passed the check before, or one whose check nothing
    the server was started with depends on): check the config first, and stop the server unheard when it
    is wrong. With `note_checked`, a clean check is recorded (mcpwrap.checked)."""
    setup_logging()
    from mcpwrap.gateway import load

    try:
        loaded = load(config_path, state_dir, note_checked=note_checked)
    except BaseException:
        child.abandon()
        raise
    sys.exit(_run(_serve(child, command, loaded, agent, server, session_id)))


def _run(main: Coroutine[Any, Any, int]) -> int:
    import asyncio

    return asyncio.run(main)


async def _serve(
    child: Child, command: Sequence[str], loaded: LoadedConfig, agent: str, server: str | None, session_id: str
) -> int:
    try:
        await child.attach()
    except BaseException:
        child.abandon()
        raise
    with forwarding_signals(child):
        try:
            import asyncio

            from mcpwrap.gateway import open_gate
            from mcpwrap.wrap import fallback_server_name, wrap
            from policy.mesh.reload import ProcessInfo, watch_gate

            gate = open_gate(loaded)
        except BaseException:
            signal_group(child, signal.SIGKILL)
            await child.wait()
            raise
        # Hot reload, emergency stops and the heartbeat (`agent-mesh status`), before the first frame is judged.
        info = ProcessInfo("mcpwrap", server=server or fallback_server_name(command), agent=agent)
        watcher = watch_gate(gate, info, loop=asyncio.get_running_loop())
        try:
            return await wrap(
                child,
                command,
                gate,
                agent=agent,
                server=server,
                session_id=session_id,
                on_judge=lambda judge: setattr(info, "server_name", lambda: judge.server),
            )
        finally:
            watcher.close()
            await gate.aclose()
