"""The pieces the proxy e2e tests share: a private CA and a real TLS upstream on loopback, a running
`agent-mesh proxy` (mitmdump, in its own process group), and the agent environment from `agent-mesh env`."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.net import free_port, wait_for_port
from tests.support.proc import Proc, run

AGENT_MESH = Path(sys.executable).with_name("agent-mesh")
PROXY_START_SECONDS = 30.0


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_private_ca(folder: Path) -> tuple[Path, Path]:
    """A CA the proxy is told to trust (proxy.extra_ca) and a leaf for 127.0.0.1/localhost: (ca.pem, leaf.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("upstream test CA"))
        .issuer_name(_name("upstream test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = folder / "upstream-ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaf_pem = folder / "upstream-leaf.pem"
    leaf_pem.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_pem, leaf_pem


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON describing it; records what reached it."""

    seen: list[tuple[str, str]]

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path))  # type: ignore[attr-defined]
        out = json.dumps({"method": self.command, "path": self.path, "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def tls_upstream(leaf_pem: Path) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A threaded HTTPS echo server on 127.0.0.1: (base URL, requests it received)."""
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Echo)
    server.seen = []  # type: ignore[attr-defined]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf_pem)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=5)
        yield f"https://127.0.0.1:{port}", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class RunningProxy:
    proc: Proc
    port: int
    config: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, agent: str) -> dict[str, str]:
        """What `agent-mesh env --agent NAME --shell json` prints: the only way tests learn the CA bundle."""
        out = run([AGENT_MESH, "env", "--config", self.config, "--agent", agent, "--shell", "json",
                   "--listen", f"127.0.0.1:{self.port}"])  # fmt: skip
        env: dict[str, str] = json.loads(out.stdout)
        return env


@contextmanager
def running_proxy(config: Path, *extra: str, web: bool = False) -> Iterator[RunningProxy]:
    """`agent-mesh proxy --config CONFIG --listen 127.0.0.1:<free>`, stopped (SIGTERM) on exit."""
    port = free_port()
    argv: list[str | Path] = [AGENT_MESH, "proxy", "--config", config, "--listen", f"127.0.0.1:{port}", *extra]
    if web:
        argv.append("--web")
    with Proc(argv, name="agent-mesh-proxy", cwd=config.parent, stop_timeout=10) as proc:
        proc.wait_for_port(port, timeout=PROXY_START_SECONDS)
        yield RunningProxy(proc, port, config)
    # Every proxy run checks its trace writer too: no record dropped, no worker process lost.
    assert "agent-mesh trace:" not in proc.output(), proc.output()


def client_env(base: dict[str, str], mesh: dict[str, str]) -> dict[str, str]:
    """The machine's environment minus every CA/proxy variable it presets, plus exactly what the mesh gave."""
    drop = {k for k in base if k.upper() in {*(m.upper() for m in mesh), "SSL_CERT_DIR", "NODE_OPTIONS"}}
    return {k: v for k, v in base.items() if k not in drop} | mesh
