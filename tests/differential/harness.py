"""The running pieces of the differential harness: one upstream process per framework (Starlette/uvicorn,
Flask/Werkzeug, Express, and the MCP SDK's Streamable HTTP server), the real proxy (`agent-mesh proxy`,
mitmdump with the addon) in front of them, and a reader of the proxy's trace log. `Mesh.run` sends a batch
of generated requests and collects, per request, the proxy's answer, what the upstream saw and the trace
records of the request's session."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.differential.mutations import AGENT, Case
from tests.differential.wire import RawRequest, RawResponse, proxy_auth, send, send_tunnelled
from tests.e2e.proxy_harness import make_private_ca, running_proxy
from tests.support.net import free_port
from tests.support.proc import Proc

APPS = Path(__file__).resolve().parent / "apps"
SPEC = APPS / "notes.openapi.json"
FRAMEWORKS = ("starlette", "flask", "express")
MCP = "mcp"  # the MCP SDK's own Streamable HTTP server, configured by mcp_url
TLS = "starlette_tls"  # the Starlette app over HTTPS, reached through CONNECT tunnels
UNLISTED = "unlisted"  # the Starlette app on a port no server entry names: judged as plain HTTP
UPSTREAM_START_SECONDS = 30.0
RECORD_WAIT_SECONDS = 30.0

# One server per framework, all described by the same spec; the policy allows reads and updates (not by
# root), denies purges and deletes, and allows plain HTTP: a request judged as plain HTTP that an upstream
# runs as an operation is then a visible mismatch, not hidden behind a default deny.
CONFIG = """\
version: 1
state_dir: state
proxy: {{extra_ca: ["{ca}"]}}
servers:
{servers}
policies:
  - name: diff
    agent: "*"
    loop_detection: {{enabled: false}}  # generated requests repeat on purpose; a loop refusal would hide them
    rules:
      - {{name: no-root-writes, tools: ["mcp.write_note"], when: {{args.name: {{eq: root}}}}, action: deny}}
      - {{name: mcp-reads-writes, tools: ["mcp.read_note", "mcp.write_note"], action: allow}}
      - {{name: mcp-deletes, tools: ["mcp.delete_note"], action: deny}}
      - {{name: no-root-updates, tools: ["*.updateNote"], when: {{args.owner: {{eq: root}}}}, action: deny}}
      - {{name: reads, tools: ["*.getNote"], action: allow}}
      - {{name: updates, tools: ["*.updateNote"], action: allow}}
      - {{name: no-purges, tools: ["*.purgeNote", "*.deleteNote"], action: deny}}
      - {{name: plain-http, tools: ["*"], when: {{surface: {{eq: http}}}}, action: allow}}
"""


@dataclass
class TraceLog:
    """Reads `traces.jsonl` as it grows and indexes call records (not events) by session id (following a rotation:
    the file read so far is then `traces.N.jsonl`, found by its inode)."""

    path: Path
    offset: int = 0
    inode: int | None = None
    by_session: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def poll(self) -> None:
        if not self.path.exists():
            return
        inode = self.path.stat().st_ino
        if self.inode is not None and inode != self.inode:
            rotated = [p for p in self.path.parent.glob("traces.*.jsonl") if p.stat().st_ino == self.inode]
            if rotated:
                self._read(rotated[0])
            self.offset = 0
        self.inode = inode
        self._read(self.path)

    def _read(self, path: Path) -> None:
        with path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            record = json.loads(line)
            session = record.get("session_id")
            if session and record.get("kind", "call") == "call":  # events (tool first seen, …) are not calls
                self.by_session.setdefault(session, []).append(record)
        self.offset += end

    def wait_for(self, session: str, timeout: float = RECORD_WAIT_SECONDS) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if session in self.by_session:
                return self.by_session[session]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no trace record for session {session} within {timeout:g}s")
            time.sleep(0.01)


@dataclass(frozen=True)
class Outcome:
    """One generated request, what the proxy answered, what the upstream saw, what the trace holds."""

    framework: str
    case: Case
    request: RawRequest
    response: RawResponse | None
    error: str | None
    seen: list[dict[str, Any]]
    records: list[dict[str, Any]]


@dataclass(repr=False)
class Mesh:
    proxy_port: int
    ports: dict[str, int]
    trace: TraceLog
    sent: int = 0

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example: keep it short
        return f"<Mesh proxy :{self.proxy_port} upstreams {self.ports}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer, which skips __repr__
        printer.text(repr(self))

    def seen(self, framework: str, nonce: str) -> list[dict[str, Any]]:
        """What the upstream recorded for this nonce, asked directly (never through the proxy)."""
        port = self.ports[framework]
        request = RawRequest("GET", f"/__diff/seen/{nonce}", [("Host", f"127.0.0.1:{port}")])
        answer = send(port, request, tls=framework == TLS)
        out: list[dict[str, Any]] = answer.json()
        return out

    def run(self, framework: str, cases: list[Case]) -> list[Outcome]:
        port = self.ports[framework]
        sent: list[tuple[Case, RawRequest, RawResponse | None, str | None, list[dict[str, Any]], str]] = []
        for case in cases:
            nonce = uuid.uuid4().hex
            request = case.raw(port, nonce)
            response, error = None, None
            try:
                response = self._send(case, port, nonce, request)
            except (OSError, ValueError) as exc:  # a dropped connection is a refusal if the upstream saw nothing
                error = f"{type(exc).__name__}: {exc}"
            sent.append((case, request, response, error, self.seen(framework, nonce), nonce))
        self.sent += len(cases)
        self._flush(framework)
        return [
            Outcome(framework, case, request, response, error, seen, self.trace.by_session.get(nonce, []))
            for case, request, response, error, seen, nonce in sent
        ]

    def _send(self, case: Case, port: int, nonce: str, request: RawRequest) -> RawResponse:
        if case.sni is None:
            return send(self.proxy_port, request)
        auth = proxy_auth(AGENT, nonce)
        return send_tunnelled(self.proxy_port, f"{case.host}:{port}", auth, case.sni or None, request)

    def _flush(self, framework: str) -> None:
        """Wait until the trace holds a sentinel call sent after the batch: records are written in order."""
        port = self.ports[framework]
        nonce = "sentinel-" + uuid.uuid4().hex
        if framework == MCP:
            call = {"name": "read_note", "arguments": {"name": nonce}}
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}).encode()
            headers = (("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream"))
            sentinel = Case("POST", "127.0.0.1", "/mcp", headers, body, "same", ())
        else:
            sni = "127.0.0.1" if framework == TLS else None
            sentinel = Case("GET", "127.0.0.1", f"/v1/notes/{nonce}", (), b"", "same", (), sni=sni)
        answer = self._send(sentinel, port, nonce, sentinel.raw(port, nonce))
        assert answer.status == 200, answer
        self.seen(framework, nonce)
        self.trace.wait_for(nonce)


@contextmanager
def running_mesh(folder: Path, node: Path, node_modules: Path) -> Iterator[Mesh]:
    """The three upstreams and the proxy in front of them, all on loopback with free ports; stopped on exit."""
    ports = {name: free_port() for name in (*FRAMEWORKS, MCP, TLS, UNLISTED)}
    ca, leaf = make_private_ca(folder)
    argv = {
        TLS: [sys.executable, APPS / "starlette_app.py", str(ports[TLS]), leaf],
        UNLISTED: [sys.executable, APPS / "starlette_app.py", str(ports[UNLISTED])],
        MCP: [sys.executable, APPS / "mcp_app.py", str(ports[MCP])],
        "starlette": [sys.executable, APPS / "starlette_app.py", str(ports["starlette"])],
        "flask": [sys.executable, APPS / "flask_app.py", str(ports["flask"])],
        "express": [node, APPS / "express_app.cjs", str(ports["express"])],
    }
    servers = "\n".join(
        [f'  {name}: {{openapi: "{SPEC}", base_url: "http://127.0.0.1:{ports[name]}"}}' for name in FRAMEWORKS]
        + [f'  {TLS}: {{openapi: "{SPEC}", base_url: "https://127.0.0.1:{ports[TLS]}"}}']
        + [f'  {MCP}: {{mcp_url: "http://127.0.0.1:{ports[MCP]}/mcp"}}']
    )
    config = folder / "agent-mesh.yaml"
    config.write_text(CONFIG.format(servers=servers, ca=ca))
    with ExitStack() as stack:
        for name in (*FRAMEWORKS, MCP, TLS, UNLISTED):
            env = {"NODE_PATH": str(node_modules)} if name == "express" else {}
            proc = stack.enter_context(Proc(argv[name], name=name, env=env))
            proc.wait_for_port(ports[name], timeout=UPSTREAM_START_SECONDS)
        proxy = stack.enter_context(running_proxy(config))
        yield Mesh(proxy.port, ports, TraceLog(folder / "state" / "traces.jsonl"))
