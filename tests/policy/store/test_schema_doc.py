"""docs/schema.md names every table and every column of a state.db at the latest schema, each in its table's
section: a migration that adds one without documenting it fails here (sqlite-utils reads the schema)."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

import sqlite_utils

from policy.store.db import DB_NAME, connect

DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.md"


def sections() -> dict[str, str]:
    """Each `## heading` of the page and its text."""
    parts = re.split(r"^## (.+)$", DOC.read_text(), flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def section_of(table: str, found: dict[str, str]) -> str:
    """The section headed by the table's name, else the one that names it in backticks."""
    for heading, text in found.items():
        if table in re.split(r"\W+", heading):
            return text
    for text in found.values():
        if f"`{table}`" in text:
            return text
    raise AssertionError(f"docs/schema.md does not document the table {table}")


def test_every_table_and_column_of_state_db_is_documented(tmp_path: Path) -> None:
    with closing(connect(tmp_path / DB_NAME)):
        pass
    database = sqlite_utils.Database(tmp_path / DB_NAME)
    try:
        found = sections()
        missing = []
        for table in database.table_names():
            text = section_of(table, found)
            # table_xinfo: generated columns too (traces.reason); FTS5's hidden columns are its own
            for _cid, column, _type, _notnull, _default, _pk, hidden in database.execute(
                f"PRAGMA table_xinfo([{table}])"
            ).fetchall():
                if hidden == 1:
                    continue
                if f"`{column}`" not in text:
                    missing.append(f"{table}.{column}")
        assert missing == []
    finally:
        database.close()


def test_the_page_says_which_migration_added_the_search_index() -> None:
    text = section_of("traces_fts", sections())
    assert "migration 8" in text
    assert "traces_ai" in text
