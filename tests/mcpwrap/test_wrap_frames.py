"""mcpwrap as a process, fed what its relay must survive: every call answered exactly once when stdin closes
(issue 14 item 2), and frames it cannot parse answered while the session and the server go on (item 6)."""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path
from typing import Any

from tests.mcpwrap.test_wrap_process import INIT, RUN_SECONDS, call, config, frames, mcpwrap, run

__all__ = ["config"]  # the fixture, shared with test_wrap_process


def answers(out: bytes) -> list[dict[str, Any]]:
    return [m for m in map(json.loads, out.splitlines()) if "id" in m and "method" not in m]


class Lines:
    """Lines of a process's stdout, each read within RUN_SECONDS (select on the raw descriptor, own buffer)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._buf = b""

    def next(self) -> Any:
        while b"\n" not in self._buf:
            ready, _, _ = select.select([self._fd], [], [], RUN_SECONDS)
            assert ready, "mcpwrap wrote nothing in time"
            chunk = os.read(self._fd, 65536)
            assert chunk, "mcpwrap closed its stdout"
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def rest(self) -> bytes:
        out = self._buf
        while chunk := os.read(self._fd, 65536):
            out += chunk
        return out


def test_every_call_is_answered_exactly_once_when_the_client_closes_stdin(config: Path) -> None:
    proc = subprocess.Popen(mcpwrap(config), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    lines = Lines(proc)
    try:
        proc.stdin.write(frames(INIT, call(1, "echo", text="lists the tools first")))
        proc.stdin.flush()
        first = [lines.next(), lines.next()]
        # The tools are known now: each of these is decided without suspending (a refusal, with no store wait).
        proc.stdin.write(frames(*[call(i, "forbidden") for i in range(2, 6)]))
        proc.stdin.flush()
        later = [lines.next() for _ in range(4)]
        proc.stdin.close()
        rest = lines.rest()
        proc.wait(timeout=RUN_SECONDS)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0
    ids = [m["id"] for m in [*first, *later, *answers(rest)]]
    assert sorted(ids) == [0, 1, 2, 3, 4, 5]  # no second answer ("the server exited ... before answering")


def test_frames_it_cannot_parse_get_errors_and_the_session_goes_on(config: Path) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    bad_utf8 = b'{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": {"x": "\xff"}}'
    not_rpc = json.dumps({"id": 8, "method": "ping"}).encode()
    stdin = frames(INIT) + deep + b"\n" + bad_utf8 + b"\n" + not_rpc + b"\n" + frames(call(1, "echo", text="after"))
    done = run(mcpwrap(config), stdin)
    assert done.returncode == 0, done.stderr
    got = answers(done.stdout)
    codes = [m["error"]["code"] for m in got if "error" in m]
    assert sorted(codes) == [-32700, -32700, -32600]
    [echo] = [m for m in got if m["id"] == 1]
    assert echo["result"]["content"][0]["text"] == '{"text": "after"}'
