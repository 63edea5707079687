"""The Store contract: the same behaviour from MemoryStore and SqliteStore."""

from __future__ import annotations

import pytest

from policy.store import ApprovalState, Limits, Store, StoreConflict
from tests.policy.store import factories as f


def test_a_pending_approval_can_be_found_by_a_six_character_prefix(store: Store) -> None:
    a = store.open_approval(f.approval())
    assert store.find_approval(a.id[:6]) == a
    assert store.get_approval(a.id) == a


def test_a_prefix_shorter_than_six_characters_is_refused(store: Store) -> None:
    a = store.open_approval(f.approval())
    with pytest.raises(StoreConflict, match="at least 6"):
        store.find_approval(a.id[:5])


def test_an_unknown_prefix_is_a_precise_error(store: Store) -> None:
    with pytest.raises(StoreConflict, match="no approval id starts with 'abcdef'"):
        store.find_approval("abcdef")


def test_an_ambiguous_prefix_asks_for_more_characters(store: Store) -> None:
    store.open_approval(f.approval("h1", id="abcdef001122"))
    store.open_approval(f.approval("h2", id="abcdef334455"))
    with pytest.raises(StoreConflict, match="several"):
        store.find_approval("abcdef")


def test_the_same_call_reuses_its_live_pending_approval(store: Store) -> None:
    first = store.open_approval(f.approval("h1"))
    again = store.open_approval(f.approval("h1", now=1010.0))
    other = store.open_approval(f.approval("h2"))
    assert again.id == first.id
    assert other.id != first.id


def test_an_expired_pending_approval_is_replaced_by_a_new_one(store: Store) -> None:
    first = store.open_approval(f.approval("h1", ttl=60))
    later = store.open_approval(f.approval("h1", now=1100.0))
    assert later.id != first.id
    assert [a.id for a in store.list_approvals(ApprovalState.EXPIRED, now=1100.0)] == [first.id]
    assert [a.id for a in store.list_approvals(ApprovalState.PENDING, now=1100.0)] == [later.id]


def test_approving_records_a_fact_and_makes_the_approval_usable_once(store: Store) -> None:
    a = store.open_approval(f.approval("h1"))
    done = store.resolve_approval(a.id, True, "alice", "looks fine", now=1001.0, usable_for=600)
    assert done.state is ApprovalState.APPROVED
    assert (done.resolved_by, done.resolution) == ("alice", "looks fine")
    [fact] = store.facts_for("claude", "fs.write_file", "k1", since=0)
    assert (fact.decision, fact.by, fact.reason, fact.approval_id) == ("approve", "alice", "looks fine", a.id)
    used = store.consume_approval("h1", "trace-1", now=1002.0)
    assert used is not None
    assert used.used_by == "trace-1"
    assert store.consume_approval("h1", "trace-2", now=1003.0) is None


def test_resolving_twice_is_an_error(store: Store) -> None:
    a = store.open_approval(f.approval())
    store.resolve_approval(a.id, False, "bob", "no", now=1001.0, usable_for=600)
    with pytest.raises(StoreConflict, match="already denied by bob"):
        store.resolve_approval(a.id, True, "alice", "yes", now=1002.0, usable_for=600)


def test_an_expired_approval_cannot_be_resolved(store: Store) -> None:
    a = store.open_approval(f.approval(ttl=60))
    with pytest.raises(StoreConflict, match="expired"):
        store.resolve_approval(a.id, True, "alice", "", now=1061.0, usable_for=600)


def test_an_approval_cannot_be_used_after_its_usable_window(store: Store) -> None:
    a = store.open_approval(f.approval("h1"))
    store.resolve_approval(a.id, True, "alice", "", now=1001.0, usable_for=60)
    assert store.consume_approval("h1", "t", now=1062.0) is None


def test_a_denied_approval_is_never_usable_but_counts_as_a_recent_denial(store: Store) -> None:
    a = store.open_approval(f.approval("h1"))
    store.resolve_approval(a.id, False, "bob", "never", now=1001.0, usable_for=600)
    assert store.consume_approval("h1", "t", now=1002.0) is None
    denial = store.recent_denial("h1", since=1000.0)
    assert denial is not None
    assert denial.resolution == "never"
    assert store.recent_denial("h1", since=1002.0) is None
    assert store.recent_denial("h2", since=0.0) is None


def test_consuming_by_id_takes_only_that_approval(store: Store) -> None:
    a = store.open_approval(f.approval("h1"))
    assert store.consume_approval_id(a.id, "t", now=1001.0) is None  # still pending
    store.resolve_approval(a.id, True, "alice", "", now=1001.0, usable_for=600)
    used = store.consume_approval_id(a.id, "t", now=1002.0)
    assert used is not None
    assert used.used_at == 1002.0
    assert store.consume_approval_id(a.id, "t", now=1003.0) is None


def test_grants_are_listed_while_active_and_used_up_by_max_uses(store: Store) -> None:
    g = store.add_grant(f.grant(max_uses=2))
    assert [x.id for x in store.list_grants(now=1001.0)] == [g.id]
    assert store.use_grant(g.id, now=1001.0)
    assert store.use_grant(g.id, now=1002.0)
    assert not store.use_grant(g.id, now=1003.0)
    assert store.list_grants(now=1003.0) == []
    [kept] = store.list_grants(now=1003.0, include_inactive=True)
    assert kept.uses == 2


def test_an_expired_grant_is_neither_listed_nor_usable(store: Store) -> None:
    g = store.add_grant(f.grant(ttl=60, when={"args.path": {"glob": "/tmp/**"}}))
    assert store.list_grants(now=1061.0) == []
    assert not store.use_grant(g.id, now=1061.0)
    [kept] = store.list_grants(now=1061.0, include_inactive=True)
    assert kept.when == {"args.path": {"glob": "/tmp/**"}}


def test_a_revoked_grant_stops_working_and_cannot_be_revoked_twice(store: Store) -> None:
    g = store.add_grant(f.grant())
    done = store.revoke_grant(g.id[:6], "alice", now=1001.0)
    assert done.revoked_by == "alice"
    assert not store.use_grant(g.id, now=1002.0)
    with pytest.raises(StoreConflict, match="already revoked"):
        store.revoke_grant(g.id, "alice", now=1003.0)


def test_facts_are_matched_by_agent_tool_key_and_window(store: Store) -> None:
    store.add_fact(f.fact(ts=900.0))
    store.add_fact(f.fact(ts=1000.0))
    store.add_fact(f.fact(ts=1000.0, memory_key="other"))
    store.add_fact(f.fact(ts=1000.0, agent="cursor"))
    assert len(store.facts_for("claude", "fs.write_file", "k1", since=950.0)) == 1
    assert len(store.facts_for("claude", "fs.write_file", "k1", since=0.0)) == 2


def test_forgetting_facts_by_prefix_or_by_agent(store: Store) -> None:
    one = store.add_fact(f.fact())
    store.add_fact(f.fact(agent="cursor"))
    store.add_fact(f.fact(agent="cursor", tool="fs.other"))
    assert store.forget_facts([one.id[:8]]) == 1
    assert store.forget_facts(agent="cursor", tool="fs.other") == 1
    assert [x.agent for x in store.list_facts()] == ["cursor"]
    with pytest.raises(StoreConflict, match="name what to forget"):
        store.forget_facts()


def test_no_limits_admit_everything(store: Store) -> None:
    assert all(store.admit("a", "h", Limits("p"), now=1000.0).admitted for _ in range(100))


def test_the_fourth_identical_call_in_ten_seconds_is_a_loop(store: Store) -> None:
    limits = Limits("p", loop_max=3, loop_window=10.0)
    assert all(store.admit("a", "h", limits, now=1000.0 + i).admitted for i in range(3))
    refused = store.admit("a", "h", limits, now=1003.0)
    assert (refused.admitted, refused.limit) == (False, "loop")
    assert refused.retry_after == pytest.approx(7.0)
    assert store.admit("a", "other-call", limits, now=1003.0).admitted
    assert store.admit("b", "h", limits, now=1003.0).admitted
    assert store.admit("a", "h", limits, now=1010.5).admitted


def test_the_per_minute_window_slides(store: Store) -> None:
    limits = Limits("p", per_minute=2)
    assert store.admit("a", "h1", limits, now=1000.0).admitted
    assert store.admit("a", "h2", limits, now=1030.0).admitted
    refused = store.admit("a", "h3", limits, now=1040.0)
    assert (refused.admitted, refused.limit, refused.count) == (False, "per_minute", 2)
    assert refused.retry_after == pytest.approx(20.0)
    assert store.admit("a", "h3", limits, now=1060.5).admitted


def test_a_total_budget_is_never_refilled_and_is_per_scope(store: Store) -> None:
    limits = Limits("p", total=2)
    assert store.admit("a", "h1", limits, now=1000.0).admitted
    assert store.admit("a", "h2", limits, now=5000.0).admitted
    refused = store.admit("a", "h3", limits, now=9000.0)
    assert (refused.admitted, refused.limit, refused.retry_after) == (False, "total", None)
    assert store.admit("a", "h3", Limits("q", total=2), now=9000.0).admitted


def test_try_admit_counts_like_admit_while_nothing_else_writes(store: Store) -> None:
    limits = Limits("p", per_minute=2, loop_max=3)
    assert store.try_admit("a", "h1", limits, now=1000.0) == store.admit("a", "h2", limits, now=1000.5)
    refused = store.try_admit("a", "h3", limits, now=1001.0)
    assert refused is not None
    assert (refused.admitted, refused.limit) == (False, "per_minute")
