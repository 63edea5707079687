"""The tools the mesh's adapters have discovered: the pins in state.db, read-only, for `agent-mesh check`.

Each MCP server an adapter listed (mcpwrap, the proxy) left a pin per tool (policy/gate/pins.py), so its tool
names are known to the linter's catalogue (policy/core/catalogue.py) even when `servers:` does not list it
(a stdio server wrapped by mcpwrap). Nothing is created: with no state dir or no state.db the catalogue is the
config's alone, and a database that cannot be read is skipped with a note (check must work without a mesh).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from policy.core.catalogue import ToolCatalogue
from policy.wire.kinds import JUDGED_METHODS

DB_NAME = "state.db"  # policy/store/db.py: not imported, so check does not load the store


def add_discovered(catalogue: ToolCatalogue, state_dir: str | Path) -> str | None:
    """Add the pinned tools under `state_dir` to the catalogue; a note when state.db exists but cannot be read."""
    db = Path(state_dir) / DB_NAME
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error as exc:
        return f"note: the discovered tools in {db} were not read: {exc}"
    try:
        rows = conn.execute("SELECT server, tool FROM pins").fetchall()
    except sqlite3.Error as exc:
        return f"note: the discovered tools in {db} were not read: {exc}"
    finally:
        conn.close()
    by_server: dict[str, set[str]] = {}
    for server, tool in rows:
        by_server.setdefault(str(server), set()).add(str(tool))
    for server, tools in sorted(by_server.items()):
        # an MCP server's other requests (resources/read, prompts/get, ...) are judged under their method's name
        catalogue.add(server, tools | JUDGED_METHODS, f"the tools pinned in {db}")
    return None
