"""`agent-mesh doctor`: can the agent's OS user read or change the mesh's state (token, database, CA key)?

Permissions are the fence that keeps an agent from approving its own calls; the argument guard is only a
seatbelt. Run as the agent's user (or as root with `--as-user AGENT`): exit 0 when that user can reach
nothing, 1 when it can, with what and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from policy.cli.common import config_option, load_loaded
from policy.store.reach import Access, User, may, state_access

REACHABLE_STATUS = 1


@click.command()
@config_option
@click.option(
    "--as-user", "as_user", metavar="NAME", default=None, help="Check this OS user (name or uid) instead of yourself."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(config_path: str | None, as_user: str | None, as_json: bool) -> None:
    """Report whether the agent's OS user can read or write the mesh's state.

    Checks the state dir, state.db (and its -wal/-shm), the operator token, the CA private key, the trace files
    and keys in it, the folder above it, and the config file. Exits 1 when that user can reach any of them:
    run the mesh as its own OS user (docs/state.md, "The mesh's state") so that agents cannot.

    \b
    Example:
      agent-mesh doctor                          # as the agent's user
      sudo agent-mesh doctor --as-user claude --config /etc/agent-mesh/agent-mesh.yaml
      agent-mesh doctor --json | jq .reachable
    """
    loaded = load_loaded(config_path)
    try:
        user = User.me() if as_user is None else User.named(as_user)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-user") from None
    state_dir = Path(loaded.config.state_dir)
    found = state_access(user, state_dir)
    if not loaded.file.startswith("<"):
        config = Path(loaded.file).absolute()
        found.append(_config_access(user, config))
    reach = [a for a in found if a.reachable]
    owner = found[0].owner
    own_user = owner is not None and owner != user.name
    report = {
        "user": {"name": user.name, "uid": user.uid},
        "state_dir": str(state_dir),
        "state_owner": owner,
        "mesh_runs_as_its_own_user": own_user,
        "checked": [_row(a) for a in found],
        "reachable": [_row(a) for a in reach],
        "ok": not reach,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(_text(user, state_dir, owner, own_user, found, reach))
    if reach:
        raise SystemExit(REACHABLE_STATUS)


def _config_access(user: User, path: Path) -> Access:
    exists = path.exists()
    write = exists and may(user, path, os.W_OK)
    mode = path.stat().st_mode & 0o7777 if exists else None
    return Access("config file (the policy)", path, exists, mode, None, may(user, path, os.R_OK), write, False)


def _row(a: Access) -> dict[str, Any]:
    return {
        "what": a.what,
        "path": str(a.path),
        "exists": a.exists,
        "mode": None if a.mode is None else f"{a.mode:04o}",
        "owner": a.owner,
        "read": a.read,
        "write": a.write,
        "reachable": a.reachable,
    }


def _text(
    user: User, state_dir: Path, owner: str | None, own_user: bool, found: list[Access], reach: list[Access]
) -> str:
    lines = [f"agent-mesh doctor: can OS user {user.name!r} (uid {user.uid}) reach the mesh's state?"]
    if owner is None:
        lines.append(f"state dir {state_dir}: not there (yet), or hidden from this user")
    else:
        where = f"its own OS user {owner!r}" if own_user else f"user {owner!r}, the same user"
        lines.append(f"state dir {state_dir}: owned by {where}")
    width = max(len(a.what) for a in found)
    for a in found:
        if a.exists is False and not a.reachable:
            continue
        can = " and ".join(x for x, y in (("read", a.read), ("write", a.write)) if y) or "no access"
        if a.exists is None:
            can = "cannot see it"
        mode = f"{a.mode:04o}" if a.mode is not None else "----"
        mark = "REACH" if a.reachable else "ok   "
        lines.append(f"  {mark} {a.what:<{width}}  {mode}  {can:<14} {a.path}")
    if not reach:
        lines.append(f"OK: {user.name!r} can neither read nor change the mesh's state.")
        return "\n".join(lines)
    lines.append(f"REACHABLE: {user.name!r} can reach {len(reach)} of these; an agent running as it could read")
    lines.append("the operator token or edit approvals. Fix:")
    if user.uid == 0:
        lines.append("  root reaches every file: run agents as an unprivileged user, never as root.")
    elif owner == user.name:
        lines.append('  run the mesh as its own OS user and the agent as another (docs/state.md: "The mesh\'s state",')
        lines.append("  contrib/systemd/agent-mesh.service): permissions cannot keep a user from its own files.")
    else:
        lines.append(f"  chmod 700 {state_dir}   (files inside: chmod 600)")
    if any(a.what.startswith("config") for a in reach):
        lines.append("  make the config file writable only by the operator (chmod 644, owned by root or the mesh user)")
    if any(a.what == "folder above it" for a in reach):
        parent = state_dir.parent
        lines.append(f"  keep {parent} writable only by root or the mesh's user (else the state dir can be swapped)")
    return "\n".join(lines)
