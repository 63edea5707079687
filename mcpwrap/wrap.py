"""`mcpwrap -- CMD`: run one stdio MCP server under the Gate, from start to exit status.

Shutdown follows whichever side ends first. Client EOF: finish judging, let the server answer what it
was sent, then close its stdin. Server EOF: stop the child, answer every request still in flight.
mcpwrap exits with the child's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from mcpwrap.frame_judge import FrameJudge
from mcpwrap.process import Child, signal_group, stop
from mcpwrap.relay import Relay
from mcpwrap.streams import open_reader, open_writer
from policy import Gate

# After the client's EOF, how long the server may take to answer requests it was already sent.
DRAIN_AFTER_EOF_SECONDS = 5.0


def fallback_server_name(argv: Sequence[str]) -> str:
    """The server's name when neither --server nor the server itself gives one: the command's basename."""
    return Path(argv[0]).name if argv else "server"


async def wrap(
    proc: Child,
    argv: Sequence[str],
    gate: Gate,
    *,
    agent: str,
    server: str | None,
    session_id: str,
    on_judge: Callable[[FrameJudge], None] | None = None,
) -> int:
    """Relay stdin/stdout to the started server `proc` (`argv`) under `gate`; returns the status to exit with.

    `on_judge` is given the frame judge once made (startup reports the server's name it learns)."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    # A call the Gate allows at once is judged and forwarded without a trip through the event loop.
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
    try:
        frame_judge = FrameJudge(
            gate, agent=agent, session_id=session_id, server=server, fallback_server=fallback_server_name(argv)
        )
        if on_judge is not None:
            on_judge(frame_judge)
        relay = Relay(await open_reader(0), await open_writer(1), proc.stdin, proc.stdout, frame_judge)
        client = asyncio.ensure_future(relay.pump_client())
        server_side = asyncio.ensure_future(relay.pump_server())
        await asyncio.wait({client, server_side}, return_when=asyncio.FIRST_COMPLETED)
        if client.done() and not server_side.done():
            drained = asyncio.ensure_future(relay.drained(DRAIN_AFTER_EOF_SECONDS))
            await asyncio.wait({drained, server_side}, return_when=asyncio.FIRST_COMPLETED)
            drained.cancel()
            status = await stop(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server_side, DRAIN_AFTER_EOF_SECONDS)
        else:
            status = await stop(proc)
        gone = f"mcpwrap: the MCP server exited with status {status} before answering"
        relay.abandon_judging(gone)
        relay.fail_inflight(gone)
        for task in (client, server_side):
            task.cancel()
        await asyncio.gather(client, server_side, return_exceptions=True)
        return status
    finally:
        if proc.returncode is None:
            signal_group(proc, signal.SIGKILL)
            await proc.wait()
