"""Property tests (hypothesis): whatever stops are on the board and whatever an agent calls itself, a call is
refused by a stop exactly when a stop of all agents, or of that exact agent name, is in force."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policy.gate.stop import Stops
from policy.store.board import ALL, Stop

# Names an agent could give itself (no `agents:` tokens): look-alikes, padding, case, the scope marker itself.
names = st.sampled_from(["claude", "Claude", "claude ", " claude", "clau\u200bde", "*", "", "cursor", "ｃｌａｕｄｅ"])
stops = st.lists(
    st.builds(
        Stop,
        id=st.text("0123456789abcdef", min_size=12, max_size=12),
        scope=st.one_of(st.just(ALL), names.filter(lambda n: n not in ("*", ""))),
        reason=st.text(max_size=20),
        by=st.just("alice"),
        at=st.floats(0, 1e9),
        lifted_at=st.one_of(st.none(), st.floats(0, 1e9)),
        lifted_by=st.none(),
    ),
    max_size=8,
)


@given(stops, names)
def test_a_call_is_stopped_exactly_when_a_stop_of_all_or_of_its_exact_name_is_in_force(
    board: list[Stop], agent: str
) -> None:
    view = Stops()
    view.replace(board)
    in_force = [s for s in board if s.lifted_at is None]
    expected = any(s.scope == ALL for s in in_force) or any(s.scope == agent for s in in_force)
    assert (view.stopping(agent) is not None) == expected
    assert view.active == bool(in_force)


@given(stops, stops, names)
def test_the_view_depends_only_on_the_stops_last_handed_over(first: list[Stop], second: list[Stop], agent: str) -> None:
    fresh, reused = Stops(), Stops()
    reused.replace(first)
    reused.replace(second)
    fresh.replace(second)
    assert (reused.stopping(agent) is None) == (fresh.stopping(agent) is None)
