"""`agent-mesh proxy`, `agent-mesh env` and `agent-mesh ca`: run the governing proxy, and give agents what
they need to use it (proxy URL with credentials, a CA bundle that trusts the mesh)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from addons.agent_env import SHELLS, agent_env, parse_session, proxy_url, render
from addons.governance import parse_listen
from addons.mesh_ca import CaFiles, ensure_ca, upstream_bundle
from policy import LoadedConfig
from policy.cli.checking import echo_startup_warnings
from policy.cli.common import config_option, load_loaded

ADDON_SCRIPT = Path(__file__).resolve().with_name("mesh_addon.py")


def _ca(loaded: LoadedConfig) -> CaFiles:
    try:
        return ensure_ca(loaded.config.state_dir)
    except OSError as exc:
        raise click.ClickException(f"cannot create the CA in {loaded.config.state_dir}: {exc}") from None


def _listen(value: str | None, loaded: LoadedConfig) -> tuple[str, int]:
    try:
        return parse_listen(value or loaded.config.proxy.listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None


def _base_dir(loaded: LoadedConfig) -> Path:
    return Path(loaded.file).parent if not loaded.file.startswith("<") else Path(".")


def reverse_modes(entries: tuple[str, ...], host: str, port: int) -> tuple[list[str], list[str]]:
    """`NAME=URL[@PORT]` -> (mitmproxy modes, mesh_reverse entries); ports default to the proxy port + 1, +2…"""
    modes: list[str] = []
    names: list[str] = []
    for i, entry in enumerate(entries, 1):
        name, eq, rest = entry.partition("=")
        url, at, rport = rest.rpartition("@") if "@" in rest.split("://", 1)[-1] else (rest, "", "")
        if not eq or not name or not url.startswith(("http://", "https://")) or (at and not rport.isdigit()):
            raise click.BadParameter(f"{entry!r} is not NAME=URL or NAME=URL@PORT", param_hint="--reverse")
        listen_port = int(rport) if at else port + i
        modes.append(f"reverse:{url}@{host}:{listen_port}")
        names.append(f"{name}={url}")
    return modes, names


@click.command()
@config_option
@click.option("--listen", metavar="HOST:PORT", help="Where the proxy listens (default: proxy.listen, 127.0.0.1:8080).")
@click.option("--web", is_flag=True, help="Run mitmweb (flows, held calls and Resume/Kill in a browser).")
@click.option("--web-port", type=int, default=8081, show_default=True, help="mitmweb's port (with --web).")
@click.option("--reverse", multiple=True, metavar="NAME=URL[@PORT]", help="Also serve URL as server NAME.")
@click.option("--quiet", is_flag=True, help="Do not print each flow.")
@click.option("--set", "mitm_options", multiple=True, metavar="OPTION=VALUE", help="A mitmproxy option (repeatable).")
@click.option("--addon-path", is_flag=True, help="Print the addon script's path (for mitmdump -s) and exit.")
def proxy(
    config_path: str | None,
    listen: str | None,
    web: bool,
    web_port: int,
    reverse: tuple[str, ...],
    quiet: bool,
    mitm_options: tuple[str, ...],
    addon_path: bool,
) -> None:
    """Run the governing HTTP(S) proxy: REST (OpenAPI) and MCP over HTTP, judged by the policy.

    Agents point HTTPS_PROXY at it (see `agent-mesh env`). The mesh's CA lives in the state directory.

    \b
    Example:
      agent-mesh proxy --config agent-mesh.yaml --listen 127.0.0.1:8080
      agent-mesh proxy --web                     # mitmweb on http://127.0.0.1:8081
      agent-mesh proxy --reverse notes=https://notes.internal@9000
      agent-mesh proxy --set 'modify_headers=/~q/Accept/application/json'   # any mitmproxy option
      mitmdump -s "$(agent-mesh proxy --addon-path)" --set mesh_config=agent-mesh.yaml
    """
    if addon_path:
        click.echo(ADDON_SCRIPT)
        return
    loaded = load_loaded(config_path)
    echo_startup_warnings(loaded, "agent-mesh proxy")
    host, port = _listen(listen, loaded)
    ca = _ca(loaded)
    try:
        trusted = upstream_bundle(loaded.config.state_dir, loaded.config.proxy.extra_ca, _base_dir(loaded))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    modes, names = reverse_modes(reverse, host, port)
    args = [
        "--listen-host", host,
        "--listen-port", str(port),
        "--set", f"confdir={ca.confdir}",
        "--set", f"mesh_config={Path(loaded.file).resolve() if not loaded.file.startswith('<') else ''}",
        "-s", str(ADDON_SCRIPT),
    ]  # fmt: skip
    if modes:
        args += ["--mode", f"regular@{host}:{port}"]
        for mode in modes:
            args += ["--mode", mode]
        for name in names:
            args += ["--set", f"mesh_reverse={name}"]
    if trusted is not None:
        args += ["--set", f"ssl_verify_upstream_trusted_ca={trusted}"]
    if quiet:
        args += ["--quiet"]
    for option in mitm_options:
        if "=" not in option:
            raise click.BadParameter(f"{option!r} is not OPTION=VALUE", param_hint="--set")
        args += ["--set", option]
    click.echo(f"agent-mesh proxy on http://{host}:{port} ({loaded.file}); CA bundle for agents: {ca.bundle}", err=True)
    from mitmproxy.tools import main as mitm

    if web:
        mitm.mitmweb([*args, "--web-host", "127.0.0.1", "--web-port", str(web_port), "--set", "web_open_browser=false"])
    else:
        mitm.mitmdump(args)


@click.command()
@config_option
@click.option("--agent", required=True, help="The agent's name (from agents:, or any name without agents:).")
@click.option("--shell", type=click.Choice(SHELLS), default="bash", show_default=True, help="Output format.")
@click.option("--listen", metavar="HOST:PORT", help="The proxy's address (default: proxy.listen).")
@click.option(
    "--session", metavar="NAME", help="Tag every call of this run with session NAME (in traces and approvals)."
)
def env(config_path: str | None, agent: str, shell: str, listen: str | None, session: str | None) -> None:
    """Print the environment an agent needs to go through the proxy and trust the mesh CA.

    Sets HTTPS_PROXY/HTTP_PROXY (with the agent's credentials), a combined CA bundle (system CAs + mesh CA) in
    SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and NODE_EXTRA_CA_CERTS, and NODE_USE_ENV_PROXY=1.

    \b
    Example:
      eval "$(agent-mesh env --agent claude)"
      agent-mesh env --agent claude --shell fish | source
      agent-mesh env --agent claude --shell json
      eval "$(agent-mesh env --agent claude --session nightly-42)"   # traces show session nightly-42
    """
    if session is not None:
        try:
            parse_session(session)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--session") from None
    loaded = load_loaded(config_path)
    host, port = _listen(listen, loaded)
    try:
        proxy_url(loaded.config, agent, f"{host}:{port}", session)  # an unknown agent or a missing token secret
        variables = agent_env(loaded.config, agent, f"{host}:{port}", _ca(loaded).bundle, session)
    except ValueError as exc:  # before the CA is made: a wrong call creates no state
        raise click.ClickException(str(exc)) from None
    click.echo(render(variables, shell))


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def ca(config_path: str | None, as_json: bool) -> None:
    """Create (on first use) and show the mesh CA and the combined bundle agents trust.

    \b
    Example:
      agent-mesh ca
      agent-mesh ca --json | jq -r .bundle
    """
    loaded = load_loaded(config_path)
    files = _ca(loaded)
    info = {
        "cert": str(files.cert),
        "bundle": str(files.bundle),
        "confdir": str(files.confdir),
        "subject": files.subject,
        "sha256": files.fingerprint,
        "not_after": files.not_after,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        click.echo(f"{key:<{width}}  {value}")
    if sys.stdout.isatty():
        click.echo("\nAgents trust it through `agent-mesh env --agent NAME` (SSL_CERT_FILE and friends).")
