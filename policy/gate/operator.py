"""The Operator: what humans (the CLI, the control plane) do to governance state — resolve approvals, add and
revoke grants, read and forget decision memory. Adapters get a Gate, never a Operator: agents cannot approve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from policy.core.config import Config, LoadedConfig
from policy.gate.grants import compile_grant, literal_glob
from policy.store.base import Approval, ApprovalState, Fact, Grant, Store, new_id
from policy.store.sqlite import SqliteStore


class Operator:
    """Human-side operations on one store, with the config's approval settings."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self._clock = clock

    @classmethod
    def open(cls, loaded: LoadedConfig, *, store: Store | None = None) -> Operator:
        config = loaded.config
        return cls(config, SqliteStore(Path(config.state_dir)) if store is None else store)

    def approvals(self, state: ApprovalState | None = ApprovalState.PENDING, limit: int = 100) -> list[Approval]:
        return self.store.list_approvals(state, self._clock(), limit)

    def show(self, prefix: str) -> Approval:
        return self.store.find_approval(prefix)

    def approve(
        self, prefix: str, *, by: str, reason: str = "", for_seconds: float | None = None
    ) -> tuple[Approval, Grant | None]:
        """Approve one pending call; with `for_seconds`, also grant the agent that tool for that long."""
        if for_seconds is not None and for_seconds <= 0:
            raise ValueError("--for must be a positive duration")
        target = self.store.find_approval(prefix)
        now = self._clock()
        done = self.store.resolve_approval(target.id, True, by, reason, now, self.config.approval.expire_after)
        grant = None
        if for_seconds is not None:
            # The grant covers what the human saw: a call approved against one host never lets the same
            # operation through on another (staging approved, production spent).
            host = (done.http or {}).get("host")
            grant = self.add_grant(
                literal_glob(done.agent),
                literal_glob(done.full_name),
                for_seconds,
                when={"http.host": {"eq": host}} if host else None,
                by=by,
                reason=f"approve --for with approval {done.id}" + (f": {reason}" if reason else ""),
            )
            self.store.link_grant(done.id, grant.id)
        return done, grant

    def deny(self, prefix: str, *, by: str, reason: str = "") -> Approval:
        target = self.store.find_approval(prefix)
        return self.store.resolve_approval(target.id, False, by, reason, self._clock(), 0.0)

    def add_grant(
        self,
        agent: str,
        tool: str,
        seconds: float,
        *,
        by: str,
        when: Mapping[str, Any] | None = None,
        max_uses: int | None = None,
        reason: str = "",
    ) -> Grant:
        """Create a grant; raises ValueError when a pattern or condition is wrong or a number is not positive."""
        if seconds <= 0:
            raise ValueError("a grant's duration must be positive")
        if max_uses is not None and max_uses < 1:
            raise ValueError("max uses must be at least 1")
        compile_grant(agent, tool, when)
        now = self._clock()
        grant = Grant(
            id=new_id(),
            agent=agent,
            tool=tool,
            created_at=now,
            expires_at=now + seconds,
            created_by=by,
            when=dict(when) if when is not None else None,
            max_uses=max_uses,
            reason=reason,
        )
        return self.store.add_grant(grant)

    def grants(self, include_inactive: bool = False) -> list[Grant]:
        return self.store.list_grants(self._clock(), include_inactive)

    def revoke_grant(self, prefix: str, *, by: str) -> Grant:
        return self.store.revoke_grant(prefix, by, self._clock())

    def facts(self, agent: str | None = None, tool: str | None = None, limit: int = 100) -> list[Fact]:
        return self.store.list_facts(agent, tool, limit)

    def forget(self, ids: Sequence[str] = (), agent: str | None = None, tool: str | None = None) -> int:
        return self.store.forget_facts(ids, agent, tool)

    def close(self) -> None:
        self.store.close()
