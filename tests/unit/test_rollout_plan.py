"""Provider rollout decisions (core/rollout.py): budgets, planning, version pins, history (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf_operator.core import rollout as ro

pytestmark = pytest.mark.unit


def members(*specs: tuple[str, str, bool]) -> list[ro.Member]:
    return [ro.Member(key, on, ready) for key, on, ready in specs]


# --------------------------------------------------------------------------- revisions and budgets


def test_revision_ignores_rollout_and_key_order() -> None:
    a = {"info": {"name": "x", "version": "1.0.0"}, "connections": {"api": {}}}
    b = {
        "connections": {"api": {}},
        "info": {"version": "1.0.0", "name": "x"},
        "rollout": {"maxUnavailable": 3},
    }
    assert ro.revision_of(a) == ro.revision_of(b)
    assert ro.revision_of(a) != ro.revision_of({**a, "vars": {"x": "1"}})
    assert ro.dictionary_of(b) == a
    assert len(ro.revision_of(a)) == ro.SHORT_HASH


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [(None, 10, 1), (3, 10, 3), ("2", 10, 2), ("25%", 10, 2), ("100%", 4, 4), ("10%", 3, 1), (0, 5, 1)],
)
def test_max_unavailable(value: object, total: int, expected: int) -> None:
    spec = {} if value is None else {"rollout": {"maxUnavailable": value}}
    assert ro.max_unavailable(spec, total) == expected


@pytest.mark.parametrize("value", ["half", "25 %", True, 1.5, "-1"])
def test_malformed_max_unavailable_is_refused(value: object) -> None:
    with pytest.raises(ro.RolloutSpecError, match="maxUnavailable"):
        ro.max_unavailable({"rollout": {"maxUnavailable": value}}, 10)


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("constraint", "version", "ok"),
    [
        ("1.2.0", "1.2.0", True),
        ("1.2.0", "1.2.1", False),
        ("1.2", "1.2.9", True),
        ("1.2.x", "1.3.0", False),
        ("1.x", "1.9.0", True),
        ("*", "7.0.0", True),
        (">=1.2.0 <2.0.0", "1.9.9", True),
        (">=1.2.0 <2.0.0", "2.0.0", False),
        (">= 1.2, < 2", "1.5.0", True),
        ("^1.2.0", "1.9.0", True),
        ("^1.2.0", "2.0.0", False),
        ("^0.2.1", "0.3.0", False),
        ("~1.2", "1.2.7", True),
        ("~1.2", "1.3.0", False),
        ("<1.0.0 || >=3.0.0", "3.1.0", True),
        ("<1.0.0 || >=3.0.0", "2.0.0", False),
        ("1.0.0", "1.0.0-rc.1", True),
        ("1.0.0", "not-a-version", False),
    ],
)
def test_version_matches(constraint: str, version: str, ok: bool) -> None:
    assert ro.version_matches(constraint, version) is ok


def test_newest_matching_and_bad_constraints() -> None:
    assert ro.newest_matching("1.x", ["1.0.0", "1.10.0", "1.9.0", "2.0.0"]) == "1.10.0"
    assert ro.newest_matching(">=3", ["1.0.0"]) is None
    with pytest.raises(ro.RolloutSpecError, match="latest"):
        ro.check_constraint("latest")
    ro.check_constraint(">=1.2 <2 || 3.x")


# --------------------------------------------------------------------------- planning


def test_one_at_a_time_moves_the_next_only_when_the_last_is_ready() -> None:
    start = members(("ns/a", "old", True), ("ns/b", "old", True), ("ns/c", "old", True))
    first = ro.plan("new", start, budget=1)
    assert first.admit == ("ns/a",) and not first.paused
    # admitted but not reconciled yet: it uses the budget
    waiting = ro.plan("new", start, admitted={"ns/a"}, budget=1)
    assert waiting.admit == () and waiting.unavailable == 1
    moved = members(("ns/a", "new", True), ("ns/b", "old", True), ("ns/c", "old", True))
    second = ro.plan("new", moved, admitted={"ns/a"}, budget=1)
    assert second.admit == ("ns/b",)
    assert second.status()["updated"] == 1 and second.status()["ready"] == 1
    done = ro.plan("new", members(("ns/a", "new", True), ("ns/b", "new", True), ("ns/c", "new", True)))
    assert done.complete and done.admit == ()


def test_a_failure_pauses_and_names_the_appliance() -> None:
    state = members(("ns/a", "new", False), ("ns/b", "old", True), ("ns/c", "old", True))
    result = ro.plan("new", state, admitted={"ns/a"}, budget=2)
    assert result.paused and result.failed == ("ns/a",) and result.admit == ()
    assert "ns/a" in ro.paused_message(result, "2.0.0")
    assert ro.RESUME_ANNOTATION in ro.paused_message(result, "2.0.0")
    # not settled yet (its status is from before the last spec change): not a failure
    pending = [ro.Member("ns/a", "new", False, settled=False), *state[1:]]
    assert not ro.plan("new", pending, budget=2).paused


def test_acknowledged_failures_resume_the_rollout() -> None:
    state = members(("ns/a", "new", False), ("ns/b", "old", True))
    ack = ro.Acknowledgement().update("1", "new", ["ns/a"])
    result = ro.plan("new", state, admitted={"ns/a"}, budget=1, acknowledged=ack.appliances)
    assert not result.paused and result.admit == ("ns/b",)
    assert ack.update("1", "new", ["ns/b"]) == ack  # the same value acknowledges nothing more
    assert ack.update("1", "newer", []).appliances == []  # a new target forgets old acknowledgements
    restored = ro.Acknowledgement.from_status({"rollout": {"acknowledged": ack.as_status()}})
    assert restored == ack


def test_not_ready_appliances_move_first() -> None:
    state = members(("ns/a", "old", True), ("ns/z", "old", False))
    assert ro.plan("new", state, budget=1).admit == ("ns/z",)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=5),
    st.randoms(use_true_random=False),
)
def test_never_more_than_the_budget_unavailable(outcomes: list[bool], budget: int, rnd: object) -> None:
    """Simulated rollout: admitted appliances reconcile in any order and end Ready or not (their
    outcome). At no step are more than `budget` moved appliances not Ready, and a failure stops it."""
    import random

    assert isinstance(rnd, random.Random)
    keys = [f"ns/a{i:02d}" for i in range(len(outcomes))]
    state = {k: ro.Member(k, "old", True) for k in keys}
    admitted: set[str] = set()
    for _ in range(4 * len(keys) + 4):
        result = ro.plan("new", list(state.values()), admitted=admitted, budget=budget)
        moved_not_ready = sum(1 for k in admitted if not (state[k].revision == "new" and state[k].ready))
        assert moved_not_ready <= budget
        assert result.unavailable + len(result.admit) <= budget
        admitted |= set(result.admit)
        if result.paused:
            assert any(not outcomes[keys.index(k)] for k in result.failed)
            break
        in_flight = sorted(k for k in admitted if state[k].revision != "new")
        if not in_flight:
            if result.complete:
                break
            continue
        k = rnd.choice(in_flight)
        state[k] = ro.Member(k, "new", outcomes[keys.index(k)])
    if all(outcomes):
        assert all(m.revision == "new" for m in state.values())


# --------------------------------------------------------------------------- which dictionary


CURRENT = ro.HistoryItem("p-new", "new", "2.0.0", 3)
HISTORY = [ro.HistoryItem("p-v1", "v1", "1.0.0", 1), ro.HistoryItem("p-v11", "v11", "1.1.0", 2)]


def test_choose_revision_follows_the_rollout() -> None:
    def choose(on: str, admitted: bool = False) -> str:
        return ro.choose_revision(current=CURRENT, history=HISTORY, on=on, admitted=admitted).revision

    assert choose("") == "new"  # a new appliance starts on the current dictionary
    assert choose("v11") == "v11"  # not moved yet
    assert choose("v11", admitted=True) == "new"
    assert choose("new") == "new"
    assert choose("forgotten") == "new"  # no longer stored: nothing else to use


def test_choose_revision_honours_pins() -> None:
    def choose(pin: str, on: str = "new") -> ro.Resolution:
        return ro.choose_revision(current=CURRENT, history=HISTORY, on=on, admitted=True, pin=pin)

    assert choose("1.x").revision == "v11"
    assert choose("1.0.0").revision == "v1"
    assert choose("2.0.0", on="v1").revision == "new"
    problem = choose("3.x").problem
    assert "3.x" in problem and "1.0.0, 1.1.0, 2.0.0" in problem


def test_prune_keeps_what_is_in_use() -> None:
    items = [ro.HistoryItem(f"p-{i}", f"r{i}", f"1.{i}.0", i) for i in range(1, 6)]
    assert [i.revision for i in ro.prune(items, 3, in_use={"r1"})] == ["r2", "r3"]
    assert ro.prune(items, 10, in_use=()) == []
    assert (
        ro.history_name("x" * 300, "abc").endswith("-abc") and len(ro.history_name("x" * 300, "abc")) == 253
    )
