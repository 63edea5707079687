"""The mesh's certificate authority (mitmproxy's CA, kept in `<state_dir>/mitmproxy`) and the bundles made
from it: system CAs + mesh CA for agents, system CAs + `proxy.extra_ca` for verifying private upstreams."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from mitmproxy.certs import CertStore
from mitmproxy.options import CONF_BASENAME

from policy.store.statedir import StateDirExposed, make_private_dir, require_private

KEY_SIZE = 2048
AGENT_BUNDLE = "ca-bundle.pem"
UPSTREAM_BUNDLE = "upstream-ca.pem"


@dataclass(frozen=True, slots=True)
class CaFiles:
    """Where the CA lives: its certificate, the combined bundle agents trust, and the confdir."""

    confdir: Path
    cert: Path
    bundle: Path
    fingerprint: str
    subject: str
    not_after: str


def confdir_of(state_dir: str | Path) -> Path:
    return Path(state_dir) / "mitmproxy"


def system_ca_file() -> Path:
    """The OS trust store as one PEM file (OpenSSL's default), else certifi's bundle."""
    default = ssl.get_default_verify_paths().openssl_cafile
    for candidate in (default, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return Path(certifi.where())


def ensure_ca(state_dir: str | Path) -> CaFiles:
    """Create the CA on first use, (re)write the agent bundle, and describe both. Raises OSError, also when
    other users can reach the state dir (the CA key must stay the mesh's: whoever holds it can read all TLS)."""
    try:
        require_private(state_dir)
    except StateDirExposed as exc:
        raise PermissionError(str(exc)) from None
    make_private_dir(state_dir)
    confdir = make_private_dir(confdir_of(state_dir))
    key_file = confdir / f"{CONF_BASENAME}-ca.pem"
    if not key_file.exists():
        CertStore.create_store(confdir, CONF_BASENAME, KEY_SIZE)
    cert_file = confdir / f"{CONF_BASENAME}-ca-cert.pem"
    cert_pem = cert_file.read_bytes()
    bundle = Path(state_dir) / AGENT_BUNDLE
    _write_if_changed(bundle, _join(system_ca_file().read_bytes(), cert_pem))
    cert = x509.load_pem_x509_certificate(cert_pem)
    return CaFiles(
        confdir=confdir,
        cert=cert_file,
        bundle=bundle,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(":"),
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc.isoformat(),
    )


def upstream_bundle(state_dir: str | Path, extra_ca: list[str], base_dir: str | Path = ".") -> Path | None:
    """certifi + `proxy.extra_ca` as one file for verifying upstreams; None when there are no extras.

    Raises ValueError naming a CA file that cannot be read or holds no certificate.
    """
    if not extra_ca:
        return None
    parts = [Path(certifi.where()).read_bytes()]
    for name in extra_ca:
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = Path(base_dir) / path
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"proxy.extra_ca: cannot read {path}: {exc.strerror}") from None
        try:
            x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise ValueError(f"proxy.extra_ca: {path} holds no PEM certificate") from None
        parts.append(pem)
    out = Path(state_dir) / UPSTREAM_BUNDLE
    _write_if_changed(out, _join(*parts))
    return out


def _join(*pems: bytes) -> bytes:
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in pems)


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    make_private_dir(path.parent)  # the state dir: private even when a bundle is its first file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
