"""Hot reload, emergency stops and heartbeats for one running process, from one watcher thread:

- every ~50 ms: the active stops in state.db (skipped while `PRAGMA data_version` says nothing changed) are
  handed to the gate's `Stops`, which wakes held calls;
- every ~0.25 s: the config file and its `policy_dir` are read; a change that two reads in a row agree on
  (an editor's write half done is never taken: an empty file is a valid config that denies everything) is
  validated and compiled here, off the event loop, and handed to `on_reload` (the process swaps it in); an
  invalid edit keeps the running policy and is reported (stderr, the process's row on the board, a trace
  event);
- every ~1 s: the process's heartbeat (pid, kind, policy hash, config, last reload error) on the board.

What cannot change in a running process (listen ports, state dir, TLS, the trace writer, the supervisor,
notifications) keeps its running value and is reported as "restart needed for: …"; the rest swaps.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy.core.config import Config, ConfigError, LoadedConfig
from policy.core.engine import PolicySet, compile_policies
from policy.core.textfile import read_bounded
from policy.gate.gate import Gate, new_trace_id
from policy.gate.stop import Stops
from policy.mesh.load import load_config
from policy.store.board import Board, MemoryBoard, Process, SqliteBoard, this_host
from policy.store.sqlite import SqliteStore
from policy.trace.sink import TraceSink

log = logging.getLogger("agent_mesh.reload")

STOP_SECONDS = 0.05
CONFIG_SECONDS = 0.25  # a change is taken once two reads in a row agree: within ~0.5 s
BEAT_SECONDS = 1.0

# Settings a running process cannot take on: it keeps its own value until restarted.
RESTART_ONLY: tuple[str, ...] = (
    "state_dir",
    "proxy.listen",
    "proxy.extra_ca",
    "control.listen",
    "control.token",
    "supervisor",
    "traces.jsonl",
    "traces.sqlite",
    "traces.otlp_endpoint",
    "traces.max_bytes",
    "traces.fsync",
    "traces.checkpoint_every",
    "approval.notify_url",
    "approval.notify_secret",
)


@dataclass(frozen=True, slots=True)
class Reloaded:
    """A validated new config for the process: swap `loaded` and `policy_set` in."""

    loaded: LoadedConfig
    policy_set: PolicySet
    restart_needed: tuple[str, ...]


def _get(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _with(model: Any, parts: list[str], value: Any) -> Any:
    head = parts[0]
    if len(parts) == 1:
        return model.model_copy(update={head: value})
    return model.model_copy(update={head: _with(getattr(model, head), parts[1:], value)})


def keep_running(running: Config, new: Config) -> tuple[Config, tuple[str, ...]]:
    """`new` with the restart-only settings of `running`, and the names of those that differ."""
    changed = tuple(name for name in RESTART_ONLY if _get(running, name) != _get(new, name))
    merged = new
    for name in changed:
        merged = _with(merged, name.split("."), _get(running, name))
    return merged, changed


def config_files(loaded: LoadedConfig) -> list[Path]:
    """The files a change of which changes the config: the file itself and its policy_dir's YAML files."""
    if loaded.file.startswith("<"):
        return []  # the built-in default: nothing on disk to watch
    path = Path(loaded.file)
    files = [path]
    if loaded.config.policy_dir:
        folder = Path(loaded.config.policy_dir).expanduser()
        folder = folder if folder.is_absolute() else path.parent / folder
        try:
            files += sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"})
        except OSError:
            files.append(folder)  # gone or unreadable: its absence is part of the fingerprint
    return files


def fingerprint(files: list[Path]) -> str:
    """A digest of the files' names and contents (contents, not mtimes: two edits within one mtime tick differ)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path).encode("utf-8", "surrogateescape") + b"\0")
        try:  # bounded: a FIFO, a link to /dev/zero or a huge file must not hang the watcher or fill memory
            digest.update(read_bounded(str(path)))
        except (OSError, ValueError) as exc:
            digest.update(f"<{type(exc).__name__}: {exc}>".encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(slots=True)
class ProcessInfo:
    """What the process says about itself on the board."""

    kind: str  # serve | proxy | mcpwrap
    server: str | None = None
    agent: str | None = None
    started: float = field(default_factory=time.time)
    # The server's name as the process learns it later (mcpwrap: the name the server gives in initialize).
    server_name: Callable[[], str | None] | None = None

    def current_server(self) -> str | None:
        return self.server_name() if self.server_name is not None else self.server


class MeshWatcher:
    """One per process. `start()` obeys the active stops before returning; `close()` leaves the board."""

    def __init__(
        self,
        loaded: LoadedConfig,
        policy_hash: str,
        info: ProcessInfo,
        *,
        board: Board | None,
        stops: Stops | None,
        on_reload: Callable[[Reloaded], None] | None,
        sink: TraceSink | None = None,
        loader: Callable[[str], LoadedConfig] = load_config,
        clock: Callable[[], float] = time.time,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.loaded = loaded
        self.policy_hash = policy_hash
        self.info = info
        self.reload_error: str | None = None
        self._board = board
        self._stops = stops
        self._on_reload = on_reload
        self._sink = sink
        self._loader = loader
        self._clock = clock
        self._alive = alive  # False once the process's event loop is gone: the thread has nothing to serve
        self._files = config_files(loaded)
        self._fingerprint = fingerprint(self._files)
        self._settling: str | None = None  # a changed fingerprint seen once: taken when the next read agrees
        self._version: int | None = None
        self._board_failing = False
        self._pid = os.getpid()
        self._host = this_host()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.poll_stops()
        self.beat()
        self._thread = threading.Thread(target=self._run, name="agent-mesh-watcher", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if self._board is not None:
            try:
                self._board.leave(self._host, self._pid)
            except Exception as exc:
                log.warning("agent-mesh: could not remove this process from the board: %s", exc)
            self._board.close()

    def _run(self) -> None:
        next_config = next_beat = time.monotonic()
        while not self._closing.wait(STOP_SECONDS):
            if not self._alive():
                return
            try:  # one failed job must not end the thread: stops would no longer reach the gate
                self.poll_stops()
                now = time.monotonic()
                if now >= next_config:
                    next_config = now + CONFIG_SECONDS
                    self.poll_config()
                if now >= next_beat:
                    next_beat = now + BEAT_SECONDS
                    self.beat()
            except Exception:
                log.exception("agent-mesh: the mesh watcher's job failed; it keeps watching")

    # -- the three jobs, each callable on its own (tests drive them one at a time) ------------------------

    def poll_stops(self) -> bool:
        """Hand the board's active stops to the gate when the board changed; True when the stops changed."""
        if self._board is None or self._stops is None:
            return False
        try:
            version = self._board.version()
            if version == self._version:
                return False
            stops = self._board.active_stops()
        except Exception as exc:
            if not self._board_failing:
                log.error(
                    "agent-mesh: cannot read emergency stops from the state store (keeping the last known): %s", exc
                )
            self._board_failing = True
            return False
        self._board_failing = False
        self._version = version
        return self._stops.replace(stops)

    def poll_config(self) -> Reloaded | None:
        """Reload when the config's files changed: the new config when valid (handed to `on_reload`)."""
        files = config_files(self.loaded)
        current = fingerprint(files)
        if current == self._fingerprint and files == self._files:
            self._settling = None
            return None
        if current != self._settling:
            self._settling = current  # still being written, maybe: look again next tick
            return None
        self._settling = None
        self._files, self._fingerprint = files, current
        try:
            fresh = self._loader(self.loaded.file)
            merged, restart = keep_running(self.loaded.config, fresh.config)
            loaded = LoadedConfig(merged, fresh.sources, fresh.file, fresh.lines)
            policy_set = compile_policies(loaded)
        except (ConfigError, ValueError, OSError) as exc:
            self._failed(str(exc))
            return None
        except Exception as exc:  # anything else (RecursionError, MemoryError): the running policy stays, and the
            # watcher's thread lives on to hand emergency stops to the gate
            log.exception("agent-mesh: the changed config could not be loaded")
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        reloaded = Reloaded(loaded, policy_set, restart)
        previous = self.policy_hash
        if self._on_reload is not None:
            try:
                self._on_reload(reloaded)
            except Exception as exc:  # the process could not take it: it still runs the old policy
                log.exception("agent-mesh: the new config could not be swapped in")
                self._failed(f"could not be swapped in: {type(exc).__name__}: {exc}")
                return None
        self.loaded, self.policy_hash, self.reload_error = loaded, policy_set.policy_hash, None
        self._files = config_files(loaded)  # a new policy_dir is watched from now on
        note = f"; restart needed for: {', '.join(restart)}" if restart else ""
        log.warning("agent-mesh: reloaded %s: policy %s -> %s%s", loaded.file, previous, self.policy_hash, note)
        self._event(
            "policy_reloaded",
            f"policy {previous} -> {self.policy_hash}{note}",
            previous_hash=previous,
            restart_needed=list(restart),
        )
        self.beat()
        return reloaded

    def _failed(self, error: str) -> None:
        self.reload_error = error
        log.error("agent-mesh: the changed config is invalid; still running policy %s: %s", self.policy_hash, error)
        self._event(
            "policy_reload_failed", f"the changed config is invalid; still running this policy: {error}", error=error
        )
        self.beat()

    def beat(self) -> bool:
        if self._board is None:
            return False
        info = self.info
        process = Process(
            host=self._host,
            pid=self._pid,
            kind=info.kind,
            server=info.current_server(),
            agent=info.agent,
            started=info.started,
            heartbeat=self._clock(),
            policy_hash=self.policy_hash,
            config=self.loaded.file if self.loaded.file.startswith("<") else str(Path(self.loaded.file).resolve()),
            reload_error=self.reload_error,
        )
        try:
            return self._board.beat(process)
        except Exception as exc:
            log.debug("agent-mesh: heartbeat not written: %s", exc)
            return False

    def _event(self, event: str, reason: str, **detail: Any) -> None:
        """A trace `event` record (not a call: never counted), shaped like the pin events: `args` holds the
        detail, `reason` the line a person reads."""
        if self._sink is None:
            return
        process = f"{self.info.kind} pid {self._pid} on {self._host}"
        record = {
            "kind": "event",
            "event": event,
            "ts": self._clock(),
            "trace_id": new_trace_id(),
            "agent": self.info.agent,
            "server": self.info.server,
            "rule": "reload",
            "reason": f"{process}: {reason}",
            "args": {"config": self.loaded.file, "process": process, **detail},
            "policy_hash": self.policy_hash,
        }
        try:
            self._sink.emit(record)
        except Exception as exc:
            log.warning("agent-mesh: could not record the %s event: %s", event, exc)


SWAP_SECONDS = 2.0


def swap_on_loop(loop: asyncio.AbstractEventLoop, *swaps: Callable[[Reloaded], None]) -> Callable[[Reloaded], None]:
    """An `on_reload` that runs `swaps` on the process's event loop (between two calls' steps, never inside
    one) and returns once they ran, so the watcher reports only a policy that is really in use."""

    def on_reload(reloaded: Reloaded) -> None:
        async def run() -> None:
            for swap in swaps:
                swap(reloaded)

        asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=SWAP_SECONDS)

    return on_reload


def watch_gate(
    gate: Gate,
    info: ProcessInfo,
    *,
    loop: asyncio.AbstractEventLoop,
    first: Callable[[Reloaded], None] | None = None,
    board: Board | None = None,
) -> MeshWatcher:
    """Start the watcher of a process whose calls `gate` judges: a reload runs `first` (the adapter's own
    settings; raising there keeps the old config whole), then swaps into the gate; stops reach `gate.stops`;
    heartbeats and events go to the gate's state dir and trace."""

    def into_gate(reloaded: Reloaded) -> None:
        gate.swap(reloaded.loaded, reloaded.policy_set)

    swaps = (into_gate,) if first is None else (first, into_gate)
    if board is None:
        board = SqliteBoard(gate.config.state_dir) if isinstance(gate.store, SqliteStore) else MemoryBoard()
    watcher = MeshWatcher(
        gate.loaded,
        gate.policy_set.policy_hash,
        info,
        board=board,
        stops=gate.stops,
        on_reload=swap_on_loop(loop, *swaps),
        sink=gate.sink,
        alive=lambda: not loop.is_closed(),
    )
    watcher.start()
    return watcher
