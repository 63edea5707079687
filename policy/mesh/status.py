"""What `agent-mesh status`, `GET /api/processes` and the page show of the mesh board: each process, alive or
gone, and whether it runs the policy its config file on disk gives now."""

from __future__ import annotations

from typing import Any

from policy.core.config import ConfigError
from policy.core.engine import compile_policies
from policy.mesh.load import load_config
from policy.store.board import Process, this_host


def disk_hashes(processes: list[Process]) -> dict[str, str]:
    """config path -> the hash of the policy that config gives now, or `error: …` when it does not load."""
    out: dict[str, str] = {}
    for config in {p.config for p in processes}:
        try:
            loaded = load_config(None if config.startswith("<") else config)
            out[config] = compile_policies(loaded).policy_hash
        except ConfigError as exc:
            out[config] = f"error: {exc}"
    return out


def describe_process(p: Process, now: float, on_disk: str | None) -> dict[str, Any]:
    """One process as `status --json` shows it: alive or gone, and whether it runs the policy on disk."""
    alive = p.alive(now, host=this_host())
    notes: list[str] = []
    current = on_disk is not None and on_disk == p.policy_hash
    if alive and on_disk is not None and not current:
        if on_disk.startswith("error: "):
            notes.append(f"its config on disk does not load ({on_disk.removeprefix('error: ')})")
        else:
            notes.append(
                f"runs policy {p.policy_hash}, not {on_disk} from {p.config} (reload pending or restart needed)"
            )
    if p.reload_error:
        notes.append(f"last reload failed: {p.reload_error}")
    return {
        "kind": p.kind,
        "pid": p.pid,
        "host": p.host,
        "server": p.server,
        "agent": p.agent,
        "state": "running" if alive else "gone",
        "started": p.started,
        "heartbeat": p.heartbeat,
        "policy_hash": p.policy_hash,
        "config": p.config,
        "config_policy_hash": on_disk,
        "current": current,
        "reload_error": p.reload_error,
        "notes": notes,
    }
