"""CA bundles and proxy environments for clients under test (see TARGETS.md: each client reads its own variable).

A client trusts the mesh's CA only if the variable *it* reads points at a bundle holding that CA, so
tests build one combined bundle (system CAs + the extra CA) and point every variable at it.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from tests.support.targets import Targets

CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
DEBIAN_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def system_ca_bundle() -> Path:
    """The machine's CA bundle: $SSL_CERT_FILE if it exists, else OpenSSL's default, else Debian's file."""
    candidates = [os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile, str(DEBIAN_BUNDLE)]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise FileNotFoundError(f"no system CA bundle found (tried {[c for c in candidates if c]})")


def combined_ca_bundle(extra_ca: Path, dest: Path) -> Path:
    """Write system CAs followed by the PEM in `extra_ca` to `dest`; return `dest`.

    Example:
        bundle = combined_ca_bundle(state_dir / "mitmproxy-ca-cert.pem", tmp_path / "ca.pem")
    """
    pem = extra_ca.read_text("ascii")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError(f"{extra_ca} holds no PEM certificate")
    system = system_ca_bundle().read_text("ascii")
    dest.write_text(system.rstrip("\n") + "\n" + pem.strip("\n") + "\n", "ascii")
    return dest


def ca_env(bundle: Path) -> dict[str, str]:
    """Point every client's CA variable (curl, requests, httpx/httpx2, Node) at `bundle`."""
    return {name: str(bundle) for name in CA_VARIABLES}


def proxy_env(proxy_url: str, bundle: Path | None = None, *, targets: Targets | None = None) -> dict[str, str]:
    """Environment that sends every client's HTTP(S) through `proxy_url`, loopback included.

    Sets the four proxy variables, empties NO_PROXY (the machine may exempt localhost, and e2e
    upstreams live on 127.0.0.1), turns on Node 22's own proxy support (NODE_USE_ENV_PROXY=1) and,
    for Node 20 which ignores HTTPS_PROXY, preloads undici's EnvHttpProxyAgent through NODE_OPTIONS.
    With `bundle`, the CA variables point at it too.

    Example:
        env = proxy_env("http://claude:tok@127.0.0.1:8080", combined_ca_bundle(ca, tmp_path / "ca.pem"))
        run([targets.node20, script], env=env)
    """
    preload = (targets or Targets()).node_proxy_preload
    env = {name: proxy_url for name in PROXY_VARIABLES}
    env |= {name: "" for name in NO_PROXY_VARIABLES}
    env["NODE_USE_ENV_PROXY"] = "1"
    env["NODE_OPTIONS"] = f"--require={preload}"
    if bundle is not None:
        env |= ca_env(bundle)
    return env
