"""The soak's processes: the upstreams that note what ran (never killed), and the mesh processes it kills and
restarts — `Managed` (`agent-mesh proxy`, `agent-mesh serve`) and `Wrapped` (one mcpwrap and its client)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.net import free_port, port_is_open

BIN = Path(sys.executable).parent
UPSTREAM_STDIO = Path(__file__).with_name("upstream_stdio.py")
START_SECONDS = 60.0
CALL_SECONDS = 10.0
RESTARTS = 20


class _Upstream(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self._note()

    def do_DELETE(self) -> None:
        self._note()

    def _note(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:
            return  # the proxy died mid-send: an incomplete request is not run (nor answered)
        try:
            nonce = str(json.loads(raw)["nonce"])
        except (ValueError, KeyError, TypeError):
            nonce = f"no nonce in {self.command} {self.path} {raw[:80]!r} {dict(self.headers)}"
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.executed.append((self.command, nonce, time.time()))  # type: ignore[attr-defined]
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, format: str, *args: Any) -> None:
        return


class Managed:
    """One restartable process: started in its own session, killed with SIGKILL, restarted by `ensure`."""

    def __init__(self, name: str, argv: list[str], *, cwd: Path, port: int | None = None, log: Path) -> None:
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.up = threading.Event()
        self.restarting: threading.Thread | None = None
        self.failed: str | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.port is not None:
            deadline = time.monotonic() + START_SECONDS
            while not port_is_open(self.port):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before listening: see {self.log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not listening on {self.port} after {START_SECONDS:g}s: {self.log}")
                time.sleep(0.05)  # a bounded poll for the port (no event to wait on across processes)
        self.up.set()

    def kill(self) -> bool:
        """SIGKILL the process group (not while it is still starting) and restart it on a thread of its own."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None or not self.up.is_set():
                return False
            self.up.clear()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.restarting = threading.Thread(target=self._restart, name=f"restart-{self.name}", daemon=True)
            self.restarting.start()
            return True

    def _restart(self) -> None:
        with self.lock:
            try:
                self.start()
            except (OSError, RuntimeError) as exc:
                self.failed = f"{self.name} did not restart: {exc}"

    def stop(self) -> None:
        if self.restarting is not None:
            self.restarting.join(START_SECONDS)
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Wrapped:
    """One mcpwrap process and its client: sends calls, restarts mcpwrap when it was killed."""

    def __init__(self, index: int, config: Path, folder: Path) -> None:
        self.index = index
        self.config = config
        self.log = folder / f"stdio-{index}.log"
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.next_id = 0
        self.ready = False
        self.stopping = False
        self.hangs: list[str] = []

    def start(self) -> None:
        """Start mcpwrap and initialize a session; raises OSError when it died (was killed) meanwhile."""
        argv = [str(BIN / "python"), "-m", "mcpwrap", "--config", str(self.config), "--server", "soak",
                "--", str(BIN / "python"), str(UPSTREAM_STDIO), "--log", str(self.log)]  # fmt: skip
        with (self.log.parent / f"mcpwrap-{self.index}.err").open("ab") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, start_new_session=True
            )
        answer = self.request({"jsonrpc": "2.0", "id": self._id(), "method": "initialize",
                               "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                          "clientInfo": {"name": "soak", "version": "1"}}})  # fmt: skip
        if answer is None:
            raise OSError("mcpwrap stopped before it answered initialize")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.ready = True

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """Send and read the answer; None when mcpwrap is gone (killed). A live mcpwrap that does not answer
        within START_SECONDS is a finding: noted in `hangs`, then killed."""
        try:
            self.send(msg)
            assert self.proc is not None
            assert self.proc.stdout is not None
            ready, _, _ = select.select([self.proc.stdout], [], [], START_SECONDS)
            if not ready:
                self.hangs.append(f"mcpwrap {self.index} did not answer {msg.get('method')} in {START_SECONDS:g}s")
                self.kill()
                return None
            line = self.proc.stdout.readline()
        except (OSError, ValueError):
            return None
        return json.loads(line) if line else None

    def call(self, tool: str, nonce: str) -> None:
        with self.lock:
            if self.stopping:
                return
            if self.proc is None or self.proc.poll() is not None:
                self._restart()
            msg = {"jsonrpc": "2.0", "id": self._id(), "method": "tools/call",
                   "params": {"name": tool, "arguments": {"nonce": nonce}}}  # fmt: skip
            if self.request(msg) is None:
                self._restart()

    def _restart(self) -> None:
        for _ in range(RESTARTS):
            if self.proc is not None:
                self._reap()
            if self.stopping:
                return
            try:
                self.start()
                return
            except OSError:
                continue  # killed while starting: a kill point too
        self.hangs.append(f"mcpwrap {self.index} did not start in {RESTARTS} attempts")

    def _reap(self) -> None:
        assert self.proc is not None
        self.ready = False
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> bool:
        """SIGKILL mcpwrap alone (its server dies with it: parent-death signal); not while it is starting."""
        proc = self.proc
        if proc is None or proc.poll() is not None or not self.ready:
            return False
        self.ready = False
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        return True

    def stop(self) -> None:
        """End the session by closing mcpwrap's input (it writes its last records and checkpoint, then exits)."""
        self.stopping = True
        with self.lock:
            if self.proc is not None:
                self._reap()

    def executed(self) -> list[str]:
        try:
            return [line for line in self.log.read_text().splitlines() if line]
        except FileNotFoundError:
            return []


@contextlib.contextmanager
def upstream() -> Iterator[tuple[int, ThreadingHTTPServer]]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Upstream)
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.executed = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def http_call(port: int, up: int, method: str, nonce: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CALL_SECONDS)
    try:
        body = json.dumps({"nonce": nonce})
        path = "/items" if method == "POST" else f"/items/{nonce}"
        conn.request(method, f"http://127.0.0.1:{up}{path}", body, {"content-type": "application/json"})
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass  # killed mid-call: what ran is what the upstream noted
    finally:
        conn.close()
