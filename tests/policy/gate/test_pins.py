"""Pins: fingerprints of description and schema, compared and accepted in a shared JSON file."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.gate.pins import PinBook, PinState, fingerprint


def test_a_fingerprint_changes_with_the_description_or_the_schema_but_not_with_annotations() -> None:
    base = {"name": "t", "description": "d", "inputSchema": {"type": "object"}}
    assert fingerprint(base) == fingerprint({**base, "annotations": {"readOnlyHint": True}})
    assert fingerprint(base) != fingerprint({**base, "description": "d2"})
    assert fingerprint(base) != fingerprint({**base, "inputSchema": {"type": "object", "required": ["x"]}})


def test_tools_compare_as_new_same_or_changed_against_their_pins(tmp_path: Path) -> None:
    book = PinBook(tmp_path / "pins.json")
    assert book.compare("s", {"a": "1"}) == {"a": PinState.NEW}
    book.accept("s", "a", "1")
    assert book.compare("s", {"a": "1", "b": "2"}) == {"a": PinState.SAME, "b": PinState.NEW}
    assert book.compare("s", {"a": "9"}) == {"a": PinState.CHANGED}
    assert PinBook(tmp_path / "pins.json").pinned("s") == {"a": "1"}
    assert book.compare("other", {"a": "1"}) == {"a": PinState.NEW}


def test_an_unreadable_pin_file_is_an_error_not_an_empty_book(tmp_path: Path) -> None:
    (tmp_path / "pins.json").write_text("{broken")
    with pytest.raises(ValueError, match="unreadable pin file"):
        PinBook(tmp_path / "pins.json").pinned("s")
