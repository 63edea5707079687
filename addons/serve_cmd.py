"""`agent-mesh serve`: the HTTP(S) proxy (mitmproxy with the governance addon) and the control plane (API,
web page, metrics, notifications) in one process, one event loop and one shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import shlex
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import uvicorn

from addons.embedded_proxy import ProxyRunner
from addons.governance import parse_listen
from policy import LoadedConfig
from policy.cli.checking import echo_startup_warnings
from policy.cli.common import ConfigProblem, config_option, load_loaded
from policy.cli.look import held_line, runnable
from policy.cli.use import register_served, serve_choice
from policy.control import ControlPlane, OperatorAuth, check_token, create_app, load_or_create_token
from policy.control.auth import TOKEN_FILE
from policy.core.records import Approval, ApprovalState
from policy.core.secrets import SecretMissing, reveal
from policy.trace import configure_otel

log = logging.getLogger("agent_mesh.serve")

READY_SECONDS = 15.0
SHUTDOWN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Listen:
    proxy: tuple[str, int]
    control: tuple[str, int]

    @staticmethod
    def url(addr: tuple[str, int]) -> str:
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        return f"http://{host}:{addr[1]}"


def _listen(value: str, option: str) -> tuple[str, int]:
    try:
        return parse_listen(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _check_free(addr: tuple[str, int], what: str) -> None:
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            raise click.ClickException(f"cannot listen for the {what} on {addr[0]}:{addr[1]}: {exc.strerror}") from None


def _operator_token(loaded: LoadedConfig, given: str | None) -> tuple[str, str]:
    """(token, where it came from): --token, else control.token, else <state_dir>/operator.token."""
    config = loaded.config
    try:  # serve runs the proxy, the control plane and the notifier: the secrets they use are read here
        agent_tokens = [reveal(a.token) for a in config.agents.values()]
        control_token = reveal(config.control.token)
        for secret in (config.approval.notify_url, config.approval.notify_secret, config.supervisor.url):
            reveal(secret)  # a missing one stops serve here, named, not in a background thread later
    except SecretMissing as exc:
        raise ConfigProblem(str(exc)) from None
    try:
        if given:
            return check_token(given, agent_tokens), "--token"
        if control_token:
            return check_token(control_token, agent_tokens), "control.token in the config"
        token, created = load_or_create_token(Path(config.state_dir))
        path = Path(config.state_dir) / TOKEN_FILE
        return check_token(token, agent_tokens), f"{path} ({'new' if created else 'kept'}, mode 0600)"
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"operator token: {exc}") from None


def banner(loaded: LoadedConfig, listen: Listen, login_url: str, token_from: str, web_url: str | None = None) -> str:
    """The few lines an operator needs on start: where things are and how agents and clients join.

    The config is named by its absolute path: agents' shells and MCP clients start elsewhere (clients even
    strip the environment), and they must share this state dir.
    """
    cfg = "" if loaded.file.startswith("<") else f" --config {shlex.quote(str(Path(loaded.file).resolve()))}"
    control = Listen.url(listen.control)
    proxy = Listen.url(listen.proxy)
    env_flags = cfg
    if listen.proxy != parse_listen(loaded.config.proxy.listen):
        env_flags += f" --listen {listen.proxy[0]}:{listen.proxy[1]}"
    mesh, wrap = runnable("agent-mesh"), runnable("mcpwrap")  # full paths when PATH does not find them
    return "\n".join(
        [
            f"agent-mesh serve: governing with {loaded.file} (state in {loaded.config.state_dir})",
            f'  proxy        {proxy}   agents: eval "$({mesh} env{env_flags} --agent NAME)"',
            f"  MCP clients  {wrap} install{cfg} --client-config FILE --agent NAME   (e.g. ~/.claude.json)",
            f"  web page     {control}/   one-time login link: {login_url}",
            f"  API          {control}/openapi.json   operator token: {token_from}",
            *([f"  mitmweb      {web_url}   (held calls: Resume approves, Abort denies)"] if web_url else []),
            "  Ctrl-C stops everything; traces are flushed first.",
        ]
    )


async def run_serve(
    loaded: LoadedConfig,
    listen: Listen,
    token: str,
    token_from: str,
    operator: str,
    *,
    mitm_options: tuple[str, ...] = (),
    web: tuple[str, int] | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `stop`): the proxy, the control plane, the watcher; then shut all down."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    proxy = ProxyRunner(loaded, listen.proxy, control=listen.control, mitm_options=mitm_options, web=web)
    try:
        await proxy.start(READY_SECONDS)
    except (OSError, ValueError, RuntimeError, TimeoutError) as exc:
        await proxy.stop(SHUTDOWN_SECONDS)
        raise click.ClickException(f"the proxy did not start on {Listen.url(listen.proxy)}: {exc}") from None
    control_url = Listen.url(listen.control)
    plane = ControlPlane(
        loaded,
        OperatorAuth(token, operator),
        sink_stats=proxy.trace_stats,
        public_url=control_url,
        allowed_hosts=frozenset({listen.control[0]}),
    )
    # A hot-reloaded config reaches the page, dry runs and decisions too (the proxy's watcher hands it over).
    proxy.governance.reload_listeners.append(plane.reload)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(plane),
            host=listen.control[0],
            port=listen.control[1],
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
            access_log=False,
        )
    )
    server_task = asyncio.create_task(server._serve(), name="control-plane")
    plane.watcher.on_held.append(say_held)  # before the watcher runs: no call held after its first look is missed
    watcher_task = asyncio.create_task(plane.watcher.run(stop), name="watcher")
    try:
        await _wait_started(server, server_task)
        login = f"{control_url}/login?code={plane.auth.login_code()}"
        click.echo(banner(loaded, listen, login, token_from, proxy.web_url))
        waiting = len(plane.operator.approvals(ApprovalState.PENDING, limit=1000))
        if waiting:
            calls = f"{waiting} call{'s' if waiting != 1 else ''}"
            click.echo(f"{calls} already waiting for a human: {runnable('agent-mesh')} approvals list")
        if ready is not None:
            ready.set()
        stop_task = asyncio.create_task(stop.wait())
        await asyncio.wait([stop_task, server_task, proxy.task], return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
    finally:
        stop.set()
        click.echo("agent-mesh serve: stopping…", err=True)
        plane.hub.close()
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(server_task, watcher_task, return_exceptions=True), SHUTDOWN_SECONDS)
        await proxy.stop(SHUTDOWN_SECONDS)
        plane.close()
        click.echo("agent-mesh serve: stopped; traces flushed", err=True)


def say_held(approval: Approval, link: str | None) -> None:
    """One line per call that starts waiting for a human: who, what, the id to approve, the page's card."""
    a = approval
    click.echo(held_line(a.agent, a.full_name, a.id, link, a.request_line))


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(READY_SECONDS):
        while not server.started:
            if task.done():
                task.result()
                raise click.ClickException("the control plane stopped while starting")
            await asyncio.sleep(0.02)


def _login_name() -> str:
    try:
        return getpass.getuser() or "operator"
    except OSError:  # no USER/LOGNAME and no passwd entry (a container with an arbitrary uid)
        return "operator"


@click.command("serve")
@config_option
@click.option("--listen-proxy", default=None, metavar="HOST:PORT", help="Proxy address (default: proxy.listen).")
@click.option(
    "--listen-control", default=None, metavar="HOST:PORT", help="Control plane and web page (default: control.listen)."
)
@click.option("--token", default=None, help="Operator token (default: control.token, else <state_dir>/operator.token).")
@click.option("--operator", default=None, help="Name recorded as human:<name> for the page's decisions ($USER).")
@click.option(
    "--set",
    "mitm_options",
    multiple=True,
    metavar="OPTION=VALUE",
    help="A mitmproxy option for the proxy (repeatable), e.g. map_remote or modify_headers.",
)
@click.option("--web", is_flag=True, help="Run mitmweb as the proxy (flows, held calls and Resume/Abort in a browser).")
@click.option(
    "--listen-web", default="127.0.0.1:8081", show_default=True, metavar="HOST:PORT", help="mitmweb's address (--web)."
)
def serve(
    config_path: str | None,
    listen_proxy: str | None,
    listen_control: str | None,
    token: str | None,
    operator: str | None,
    mitm_options: tuple[str, ...],
    web: bool,
    listen_web: str,
) -> None:
    """Run the proxy and the control plane (API, web page, metrics) until Ctrl-C.

    Agents send HTTP(S) through the proxy; MCP clients run their servers under mcpwrap; humans approve on
    the web page (or with `agent-mesh approvals`), all on the same state dir.

    \b
    Example:
      agent-mesh serve                                  # ./agent-mesh.yaml, else the active mesh
      agent-mesh serve --config agent-mesh.yaml --listen-control 127.0.0.1:9181
      agent-mesh serve --web                            # mitmweb on 127.0.0.1:8081 (link in the banner)
      agent-mesh serve --set 'modify_headers=/~q/Accept/application/json'
      curl -H "Authorization: Bearer $(cat .agent-mesh/operator.token)" 127.0.0.1:8181/api/approvals
    """
    loaded = load_loaded(serve_choice(config_path), announce=False)
    echo_startup_warnings(loaded, "agent-mesh serve")
    config = loaded.config
    listen = Listen(
        _listen(listen_proxy or config.proxy.listen, "--listen-proxy"),
        _listen(listen_control or config.control.listen, "--listen-control"),
    )
    if listen.proxy == listen.control:
        raise click.ClickException("the proxy and the control plane need different ports")
    _check_free(listen.proxy, "proxy")
    _check_free(listen.control, "control plane")
    web_at = _listen(listen_web, "--listen-web") if web else None
    if web_at is not None:
        if web_at in (listen.proxy, listen.control):
            raise click.ClickException("mitmweb needs a port of its own (--listen-web)")
        _check_free(web_at, "mitmweb")
    secret, token_from = _operator_token(loaded, token)
    register_served(loaded)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    if config.traces.otlp_endpoint:
        try:
            configure_otel(config.traces.otlp_endpoint)
        except ValueError as exc:
            raise click.ClickException(f"traces.otlp_endpoint: {exc}") from None
    who = operator or _login_name()
    asyncio.run(run_serve(loaded, listen, secret, token_from, who, mitm_options=mitm_options, web=web_at))
