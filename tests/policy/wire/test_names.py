"""Names that imitate others are found, for both adapters: methods against MCP's own, tools against those a
server listed. A name that is exactly a known one, or imitates none, is not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.wire.kinds import KNOWN_METHODS
from policy.wire.names import fold, imitated, misspelled_method


@pytest.mark.parametrize(
    ("method", "imitates"),
    [
        ("TOOLS/CALL", "tools/call"),
        ("tools/call ", "tools/call"),
        ("tools/\u200bcall", "tools/call"),
        ("ｔｏｏｌｓ/call", "tools/call"),  # fullwidth letters
        ("Sampling/CreateMessage", "sampling/createMessage"),
        ("PING", "ping"),  # plain ASCII letters once skipped the folding: upper case imitates too
        ("Initialize", "initialize"),
        ("tools/call", None),
        ("vendor/thing", None),
        ("ping", None),
    ],
)
def test_a_method_spelled_like_an_mcp_method_but_not_exactly_is_found(method: str, imitates: str | None) -> None:
    assert misspelled_method(method) == imitates


@given(
    known=st.sampled_from(sorted(KNOWN_METHODS)),
    noise=st.lists(st.sampled_from([" ", "\t", "\u200b", "\u2060", "\x00", "\ufeff"]), min_size=0, max_size=3),
    where=st.integers(0, 40),
    upper=st.booleans(),
)
def test_every_case_space_or_invisible_variant_of_an_mcp_method_is_found(
    known: str, noise: list[str], where: int, upper: bool
) -> None:
    i = where % (len(known) + 1)
    variant = known[:i] + "".join(noise) + known[i:]
    variant = variant.upper() if upper else variant
    assert misspelled_method(variant) == (None if variant == known else known)


def test_a_tool_name_imitating_a_listed_one_is_found_and_the_listed_one_itself_is_not() -> None:
    listed = {"delete_note", "read_note"}
    assert imitated("Delete_Note", listed) == "delete_note"
    assert imitated("delete_note\u200b", listed) == "delete_note"
    assert imitated("delete_note", listed) is None
    assert imitated("write_note", listed) is None
    assert fold("ＡＢ c") == "abc"
