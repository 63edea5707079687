"""Tool pins in the store: both twins compare a listing with the pin and record it in one step."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from policy.core.pins import PinState
from policy.store.base import Store
from policy.store.sqlite import SqliteStore


def test_a_tool_listed_for_the_first_time_is_new_and_reported_once(store: Store) -> None:
    first = store.observe_pin("s", "echo", "fp1", 1.0)
    again = store.observe_pin("s", "echo", "fp1", 2.0)
    assert (first.state, first.fresh) == (PinState.NEW, True)
    assert (again.state, again.fresh) == (PinState.NEW, False)
    assert store.get_pin("s", "echo") == again.pin
    assert again.pin.pinned is None
    assert again.pin.first_seen == 1.0


def test_an_accepted_form_is_the_same_and_another_form_is_a_change_reported_once_per_form(store: Store) -> None:
    store.observe_pin("s", "echo", "fp1", 1.0)
    store.accept_pin("s", "echo", "fp1", 2.0)
    assert store.observe_pin("s", "echo", "fp1", 3.0).state is PinState.SAME
    changed = store.observe_pin("s", "echo", "fp2", 4.0)
    assert (changed.state, changed.fresh, changed.pin.pinned, changed.pin.seen) == (
        PinState.CHANGED,
        True,
        "fp1",
        "fp2",
    )
    assert store.observe_pin("s", "echo", "fp2", 5.0).fresh is False
    assert store.observe_pin("s", "echo", "fp3", 6.0).fresh is True
    # Back to its pinned form: the same again, nothing to report.
    back = store.observe_pin("s", "echo", "fp1", 7.0)
    assert (back.state, back.fresh) == (PinState.SAME, False)


def test_pins_are_per_server_and_listed_in_order(store: Store) -> None:
    store.accept_pin("b", "t", "x", 1.0)
    store.accept_pin("a", "t", "y", 1.0)
    assert store.observe_pin("a", "t", "x", 2.0).state is PinState.CHANGED
    assert [(p.server, p.tool) for p in store.list_pins()] == [("a", "t"), ("b", "t")]
    assert [p.pinned for p in store.list_pins("b")] == ["x"]
    assert store.get_pin("c", "t") is None


def test_pins_outlive_the_process_in_state_db(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path), SqliteStore(tmp_path)
    first.accept_pin("s", "echo", "fp1", 1.0)
    assert second.observe_pin("s", "echo", "fp2", 2.0).state is PinState.CHANGED
    first.close()
    second.close()
    with closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        row = conn.execute("SELECT state, pinned, seen FROM pins").fetchone()
    assert row == ("changed", "fp1", "fp2")
