"""A plain Python agent governed through HTTPS_PROXY: `agent-mesh serve` judges each REST call to an HTTPS
API described by OpenAPI — reads pass, deletes are refused with problem+json, a create is held until the
operator approves it through the control API, then completes. Nothing in the agent knows about the mesh
except the environment `agent-mesh env` prints.

    .venv/bin/python recipes/python_agent_via_proxy.py      # offline on loopback; checks itself
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BIN = Path(sys.executable).parent
TOKEN = "recipe-operator-token-0123456789"
WAIT_SECONDS = 30.0

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "notes", "version": "1"},
    "paths": {
        "/notes": {
            "get": {"operationId": "listNotes", "responses": {"200": {"description": "ok"}}},
            "post": {"operationId": "createNote", "responses": {"201": {"description": "created"}}},
        },
        "/notes/{id}": {
            "delete": {
                "operationId": "deleteNote",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"204": {"description": "deleted"}},
            }
        },
    },
}

CONFIG = """
version: 1
state_dir: {state}
agents: {{notes-bot: {{token: recipe-agent-token}}}}
servers:
  notes: {{openapi: {spec}, base_url: "{base}"}}
proxy: {{extra_ca: [{ca}]}}
approval: {{hold_seconds: 20}}
policies:
  - name: notes-bot
    agent: notes-bot
    rules:
      - {{name: reads, tools: ["notes.list*"], action: allow}}
      - {{name: no-deletes, tools: ["notes.delete*"], action: deny, reason: the agent never deletes notes}}
      - {{name: creates-ask, tools: ["notes.create*"], action: human_approval, reason: a human reads new notes}}
"""


def agent(base: str) -> None:
    """The agent: ordinary httpx calls; HTTPS_PROXY and SSL_CERT_FILE come from its environment."""
    with httpx.Client(base_url=base, timeout=60) as client:
        for method, path, body in (("GET", "/notes", None), ("DELETE", "/notes/1", None), ("POST", "/notes", {"t": 1})):
            r = client.request(method, path, json=body)
            print(json.dumps({"call": f"{method} {path}", "status": r.status_code, "body": r.json()}), flush=True)


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA (which the mesh trusts through proxy.extra_ca) and a 127.0.0.1 leaf: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: str, issuer: str, public: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    paths[0].write_bytes(cert("recipe CA", "recipe CA", ca_key.public_key(), ca_key, True).public_bytes(
        serialization.Encoding.PEM))  # fmt: skip
    paths[1].write_bytes(cert("127.0.0.1", "recipe CA", key.public_key(), ca_key, False).public_bytes(
        serialization.Encoding.PEM))  # fmt: skip
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return paths


@contextmanager
def notes_api(cert: Path, key: Path) -> Iterator[str]:
    """The upstream: a tiny HTTPS notes API on a free loopback port."""

    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, value: Any) -> None:
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._json(200, [{"id": "1", "text": "buy milk"}])

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._json(201, {"id": "2", "created": True})

        def do_DELETE(self) -> None:
            self._json(200, {"deleted": True})

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(config: Path, proxy: int, control: int) -> Iterator[subprocess.Popen[str]]:
    argv = [str(BIN / "agent-mesh"), "serve", "--config", str(config), "--listen-proxy", f"127.0.0.1:{proxy}",
            "--listen-control", f"127.0.0.1:{control}", "--token", TOKEN, "--operator", "recipe"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  serve | {line.rstrip()}")
            if "Ctrl-C stops" in line:
                break
        else:
            raise RuntimeError(f"agent-mesh serve exited ({proc.wait()})")
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does: flush the traces, stop both listeners
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def story(out: list[str]) -> list[str]:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="am-agent-") as tmp:
        folder = Path(tmp)
        ca, cert, key = make_tls(folder)
        (folder / "notes.json").write_text(json.dumps(SPEC))
        proxy, control = free_port(), free_port()
        with notes_api(cert, key) as base:
            config = folder / "agent-mesh.yaml"
            config.write_text(CONFIG.format(state=folder / "state", spec=folder / "notes.json", base=base, ca=ca))
            with serve(config, proxy, control):
                env_cmd = [str(BIN / "agent-mesh"), "env", "--config", str(config), "--agent", "notes-bot",
                           "--listen", f"127.0.0.1:{proxy}", "--shell", "json"]  # fmt: skip
                env = {**os.environ, **json.loads(subprocess.run(env_cmd, capture_output=True, check=True).stdout)}
                out.append(f"agent env: HTTPS_PROXY={env['HTTPS_PROXY'].replace('recipe-agent-token', '***')}")
                run = subprocess.Popen([sys.executable, __file__, "agent", base], env=env, stdout=subprocess.PIPE,
                                       text=True)  # fmt: skip
                api = httpx.Client(base_url=f"http://127.0.0.1:{control}", headers={"Authorization": f"Bearer {TOKEN}"})
                approval = wait_for(api, "/api/approvals", "approvals", 1)[0]
                out.append(f"operator: {approval['tool']} by {approval['agent']} is waiting (rule {approval['rule']})")
                api.post(f"/api/approvals/{approval['id']}/approve", json={"reason": "fine"}).raise_for_status()
                stdout, _ = run.communicate(timeout=WAIT_SECONDS)
                results = [json.loads(line) for line in stdout.splitlines()]
                for r in results:
                    out.append(f"agent: {r['call']} -> {r['status']} {json.dumps(r['body'])[:120]}")
                traces = wait_for(api, "/api/traces", "traces", 3, {"agent": "notes-bot"})
                api.close()
    statuses = [r["status"] for r in results]
    if statuses != [200, 403, 201]:
        problems.append(f"expected 200, 403, 201; got {statuses}")
    elif results[1]["body"].get("code") != "denied":
        problems.append(f"the delete was not refused as denied: {results[1]['body']}")
    seen = sorted((t["tool"], t["decided_by"]) for t in traces)
    wanted = sorted([("notes.listNotes", "policy:notes-bot/reads"), ("notes.deleteNote", "policy:notes-bot/no-deletes"),
                     ("notes.createNote", "human:recipe")])  # fmt: skip
    if seen != wanted:
        problems.append(f"trace: expected {wanted}, got {seen}")
    return problems


def wait_for(api: httpx.Client, path: str, key: str, count: int, params: dict[str, str] | None = None) -> list[Any]:
    """Poll the control API until `count` items are listed (pending approvals, or traces once written)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        items: list[Any] = api.get(path, params=params).json()[key]
        if len(items) >= count:
            return items
        time.sleep(0.1)
    raise TimeoutError(f"{path} did not list {count} {key} within {WAIT_SECONDS:g}s")


def main() -> int:
    out: list[str] = []
    problems = story(out)
    print("\n".join(out))
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["agent"]:
        agent(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
