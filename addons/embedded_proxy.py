"""Runs mitmproxy in-process with the governance addon, on the caller's event loop, for `agent-mesh serve`
(mitmdump's master, or mitmweb's with `serve --web`: flows, held calls and Resume/Abort in a browser).

The addon refuses agent traffic to the control plane; `ControlAddress` keeps the address it protects equal
to the one serve actually listens on, even when `--listen-control` overrides the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence
from pathlib import Path

from mitmproxy import exceptions, options
from mitmproxy.master import Master
from mitmproxy.tools.dump import DumpMaster
from mitmproxy.tools.web.master import WebMaster

from addons.governance import Governance
from addons.mesh_ca import ensure_ca, upstream_bundle
from policy import LoadedConfig
from policy.trace import SinkStats

POLL_SECONDS = 0.02


class ControlAddress:
    """Runs after Governance on every configure, so its view of the control plane is serve's real address."""

    def __init__(self, governance: Governance, control: tuple[str, int]) -> None:
        self._governance = governance
        self._control = control

    def configure(self, updated: set[str]) -> None:
        self._governance.set_control(self._control)


def _all_listening(addrs: Sequence[tuple[str, int]]) -> bool:
    return all(_listening(a) for a in addrs)


def run_where_scripts_run(master: Master, ours: Sequence[object]) -> None:
    """Put our addons where `mitmdump -s` puts a script (right after the ScriptLoader), as `agent-mesh proxy`
    runs them: every hook of ours comes before the operator's rewrites (map_remote, map_local, modify_body,
    modify_headers), so serve and proxy judge the same request the agent sent, then apply the same rewrites."""
    chain = [a for a in master.addons.chain if not any(a is o for o in ours)]
    loader = master.addons.get("scriptloader")  # type: ignore[no-untyped-call]
    at = next((i + 1 for i, a in enumerate(chain) if a is loader), 0)
    master.addons.chain = [*chain[:at], *ours, *chain[at:]]


def _listening(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=0.2):
            return True
    except OSError:
        return False


class ProxyRunner:
    """One mitmproxy master (DumpMaster, or WebMaster when `web` is where mitmweb listens): `start()` returns
    once the proxy (and mitmweb) accept connections; `stop()` flushes the traces."""

    def __init__(
        self,
        loaded: LoadedConfig,
        listen: tuple[str, int],
        *,
        control: tuple[str, int],
        mitm_options: Sequence[str] = (),
        web: tuple[str, int] | None = None,
    ) -> None:
        self.loaded = loaded
        self.web = web
        self.mitm_options = tuple(mitm_options)
        builtin = loaded.file.startswith("<")
        # The addon loads the config itself: the same file, or "" for the same discovery (built-in default).
        self.config_file = "" if builtin else str(Path(loaded.file).resolve())
        self.base_dir = Path(".") if builtin else Path(loaded.file).parent
        self.listen = listen
        self.control = control
        self.governance = Governance(config_file=self.config_file, kind="serve")
        self.master: DumpMaster | WebMaster | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None]:
        assert self._task is not None, "start() first"
        return self._task

    async def start(self, seconds: float) -> None:
        """Configure the addon (ValueError when it refuses the config), listen, return once connectable."""
        config = self.loaded.config
        ca = ensure_ca(config.state_dir)
        trusted = upstream_bundle(config.state_dir, config.proxy.extra_ca, self.base_dir)
        opts = options.Options(listen_host=self.listen[0], listen_port=self.listen[1], confdir=str(ca.confdir))
        master: DumpMaster | WebMaster
        if self.web is None:
            master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        else:
            master = WebMaster(opts, with_termlog=False)
            opts.update(web_host=self.web[0], web_port=self.web[1], web_open_browser=False)  # type: ignore[no-untyped-call]
        ours = (self.governance, ControlAddress(self.governance, self.control))
        master.addons.add(*ours)  # type: ignore[no-untyped-call]
        run_where_scripts_run(master, ours)
        try:
            opts.set(*self.mitm_options)
            opts.update(mesh_config=self.config_file)  # type: ignore[no-untyped-call]
        except exceptions.OptionsError as exc:
            raise ValueError(str(exc).removeprefix("agent-mesh: ")) from None
        if trusted is not None:
            opts.update(ssl_verify_upstream_trusted_ca=str(trusted))  # type: ignore[no-untyped-call]
        self.master = master
        self._task = asyncio.create_task(master.run(), name="proxy")
        async with asyncio.timeout(seconds):
            while not await asyncio.to_thread(_all_listening, [self.listen, *([self.web] if self.web else [])]):
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("the proxy stopped while starting")
                await asyncio.sleep(POLL_SECONDS)

    @property
    def web_url(self) -> str | None:
        """mitmweb's address with its login token (None without --web)."""
        return self.master.web_url if isinstance(self.master, WebMaster) else None

    def trace_stats(self) -> SinkStats | None:
        judge = self.governance.judge
        return judge.gate.sink.stats() if judge is not None else None

    async def stop(self, seconds: float) -> None:
        """Stop accepting, let mitmproxy run its `done` hooks (the addon closes its gate: traces flushed)."""
        if self.master is None or self._task is None:
            return
        self.master.shutdown()  # type: ignore[no-untyped-call]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), seconds)
