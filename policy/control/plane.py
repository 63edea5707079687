"""The control plane's state: config, policies, the Operator (the same human-side operations the CLI uses),
the trace feed, metrics, live events, notifications and operator auth; plus who a request acts as.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request

from policy.control.auth import CSRF_HEADER, SESSION_COOKIE, OperatorAuth, parse_bearer, same_secret
from policy.control.metrics import Metrics
from policy.control.notify import Notifier
from policy.control.problems import ApiError
from policy.control.watch import Hub, Watcher
from policy.core.config import LoadedConfig
from policy.core.engine import PolicySet, compile_policies
from policy.gate.operator import Operator
from policy.store.base import Store
from policy.store.board import Board, MemoryBoard, SqliteBoard
from policy.store.sqlite import SqliteStore
from policy.trace.feed import TraceFeed
from policy.trace.sink import SinkStats, TraceSink

if TYPE_CHECKING:
    from policy.mesh.reload import Reloaded

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the operator, through the bearer token or a browser session."""

    operator: str
    via: str  # "token" | "session"
    csrf: str | None = None


class ControlPlane:
    """Everything the routes need; built once by `agent-mesh serve` (or a test) and shared by all requests."""

    def __init__(
        self,
        loaded: LoadedConfig,
        auth: OperatorAuth,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        sink_stats: Callable[[], SinkStats | None] | None = None,
        notifier: Notifier | None = None,
        public_url: str | None = None,
        allowed_hosts: frozenset[str] | None = None,
        board: Board | None = None,
        event_sink: TraceSink | None = None,
    ) -> None:
        config = loaded.config
        self.loaded = loaded
        self.config = config
        self.policy_set: PolicySet = compile_policies(loaded)
        self.state_dir = Path(config.state_dir)
        self.store: Store = SqliteStore(self.state_dir) if store is None else store
        # The mesh board (processes, emergency stops): state.db's unless a twin is given (or the store is one).
        if board is None:
            board = SqliteBoard(self.state_dir) if isinstance(self.store, SqliteStore) else MemoryBoard()
        self.board: Board = board
        self.event_sink = event_sink  # where stop/resume events go; None: the state dir's trace, per event
        self.operator = Operator(config, self.store, clock)
        self.clock = clock
        self.auth = auth
        self.feed = TraceFeed(self.state_dir)
        self.metrics = Metrics()
        self.hub = Hub()
        self.public_url = public_url
        self.allowed_hosts = allowed_hosts
        self.sink_stats = sink_stats
        if notifier is None and config.approval.notify_url:
            notifier = Notifier(config.approval.notify_url, config.approval.notify_secret)
        self.notifier = notifier
        self.watcher = Watcher(
            self.store,
            self.feed,
            self.metrics,
            self.hub,
            notifier=notifier,
            clock=clock,
            redact_keys=list(config.traces.redact),
            page_url=public_url,
        )

    def reload(self, reloaded: Reloaded) -> None:
        """A hot-reloaded config (serve's watcher, on its event loop): the page, dry runs and decisions use it."""
        self.loaded = reloaded.loaded
        self.config = reloaded.loaded.config
        self.policy_set = reloaded.policy_set
        self.operator = Operator(self.config, self.store, self.clock)

    @property
    def redact_keys(self) -> list[str]:
        return list(self.config.traces.redact)

    def now(self) -> float:
        return self.clock()

    def principal(self, request: Request) -> Principal:
        """Authenticate a request: the bearer token, else the session cookie (plus CSRF when it changes state).

        A presented Authorization header that is not the operator's bearer token is refused outright:
        an agent's proxy credentials (Basic) or a wrong token never fall back to a cookie.
        """
        header = request.headers.get("authorization")
        if header is not None:
            if self.auth.token_ok(parse_bearer(header)):
                return Principal(self.auth.operator, "token")
            raise ApiError(401, "unauthorized", "the operator token is wrong: send `Authorization: Bearer <token>`")
        session = self.auth.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise ApiError(
                401, "unauthorized", "the control plane needs the operator token (`Authorization: Bearer <token>`)"
            )
        if request.method not in SAFE_METHODS and not same_secret(request.headers.get(CSRF_HEADER), session.csrf):
            raise ApiError(403, "csrf", "missing or wrong X-CSRF-Token header: reload the page")
        return Principal(session.operator, "session", session.csrf)

    def host_allowed(self, host_header: str | None) -> bool:
        """Refuse Host names other than loopback and the listen address (DNS rebinding)."""
        if self.allowed_hosts is None:
            return True
        if not host_header:
            return False
        host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return host in self.allowed_hosts or host in LOOPBACK_NAMES

    def trace_queue(self) -> SinkStats | None:
        return self.sink_stats() if self.sink_stats is not None else None

    def close(self) -> None:
        self.hub.close()
        if self.notifier is not None:
            self.notifier.close()
        self.feed.close()
        self.board.close()
        self.store.close()
