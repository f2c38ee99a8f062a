"""Position values of ordered collections (`ordering.positionField`): an item inserted between
existing ones gets a value between its neighbours', so it lands in place in one sync, and items
that stay in place keep their value (no renumbering)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf_operator.core.diff import (
    ComparisonRules,
    Create,
    Move,
    Policy,
    insert_positions,
    plan,
    plan_positions,
)

pytestmark = pytest.mark.unit

RULES = ComparisonRules(
    key_fields=("name",), id_field="uuid", ignore_fields=frozenset({"sequence"}), ordered=True
)


def k(name: str) -> tuple[str]:
    return (name,)


def device(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    """Device items sorted by sequence, as the device lists them."""
    return [{"name": n, "sequence": str(s), "uuid": f"u-{n}"} for n, s in pairs]


def named(*names: str) -> list[dict[str, Any]]:
    return [{"name": n} for n in names]


def test_an_insert_between_two_items_gets_a_value_between_theirs() -> None:
    out = insert_positions([k("a"), k("b"), k("c")], {k("a"): 10, k("c"): 20}, {k("b")}, 10)
    assert out == {k("b"): 15}


def test_several_inserts_share_the_gap_in_order() -> None:
    keys = [k("a"), k("x"), k("y"), k("z"), k("c")]
    out = insert_positions(keys, {k("a"): 10, k("c"): 20}, {k("x"), k("y"), k("z")}, 10)
    assert 10 < out[k("x")] < out[k("y")] < out[k("z")] < 20  # type: ignore[operator]


def test_no_room_or_unknown_neighbours_or_moves_in_the_gap_give_none() -> None:
    assert insert_positions([k("a"), k("b"), k("c")], {k("a"): 10, k("c"): 11}, {k("b")}, 10) == {
        k("b"): None
    }
    assert insert_positions([k("a"), k("b"), k("c")], {k("a"): None, k("c"): 20}, {k("b")}, 10) == {
        k("b"): None
    }
    # `m` moves into the same gap: its value changes as it moves, so `b` is placed by a move.
    out = insert_positions([k("a"), k("m"), k("b"), k("c")], {k("a"): 10, k("c"): 20}, {k("b")}, 10)
    assert out == {k("b"): None}


def test_first_and_last_places() -> None:
    out = insert_positions([k("x"), k("a"), k("y")], {k("a"): 10}, {k("x"), k("y")}, 10, ceiling=40)
    assert 0 < out[k("x")] < 10  # type: ignore[operator]
    assert out[k("y")] == 50  # past every value on the device (hand-made items included)


def test_plan_positions_keeps_values_of_items_in_place() -> None:
    actual = device(("a", 10), ("c", 20), ("hand", 30))
    desired = named("a", "b", "c")
    p = plan(desired, actual, RULES, Policy.MERGED)
    assert [c.key for c in p.creates] == [k("b")] and not p.moves
    assert plan_positions(p, desired, actual, RULES, "sequence", 10) == {k("a"): 10, k("b"): 15, k("c"): 20}


def test_plan_positions_leaves_moved_items_to_their_move() -> None:
    actual = device(("a", 10), ("b", 20), ("c", 30))
    desired = named("c", "a", "b")
    p = plan(desired, actual, RULES, Policy.MERGED)
    out = plan_positions(p, desired, actual, RULES, "sequence", 10)
    assert [m.key for m in p.moves] == [k("c")]
    assert out == {k("c"): None, k("a"): 10, k("b"): 20}


# --------------------------------------------------------------------------- property

NAMES = [f"r{i}" for i in range(12)]


@st.composite
def inserts(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """A device list (sequences ascending, random gaps, maybe hand-made items) and a desired order
    that keeps the device order of the items it keeps and inserts new ones anywhere."""
    names = draw(st.permutations(NAMES))
    on_device = names[: draw(st.integers(0, 8))]
    extra = names[len(on_device) :][: draw(st.integers(0, 4))]
    value = 0
    actual = []
    for name in on_device:
        value += draw(st.integers(1, 60))
        actual.append({"name": name, "sequence": str(value), "uuid": f"u-{name}"})
    kept = [n for n in on_device if draw(st.booleans())]
    desired_names = list(kept)
    for name in extra:
        desired_names.insert(draw(st.integers(0, len(desired_names))), name)
    step = draw(st.sampled_from([1, 10, 100]))
    return actual, [{"name": n} for n in desired_names], step


@settings(max_examples=300, deadline=None)
@given(inserts())
def test_applying_the_positions_gives_the_desired_order(case: Any) -> None:
    actual, desired, step = case
    p = plan(desired, actual, RULES, Policy.REPLACED, managed_keys=[[a["name"]] for a in actual])
    assert not p.moves  # the desired order keeps the device order of kept items
    positions = plan_positions(p, desired, actual, RULES, "sequence", step)
    created = {c.key for c in p.creates}
    # Execute: deletes go, kept items keep their value, creates are written with theirs.
    deleted = {d.index for d in p.deletes}
    after = {k(a["name"]): int(a["sequence"]) for i, a in enumerate(actual) if i not in deleted}
    placed = {key: v for key, v in positions.items() if key in created and v is not None}
    after.update(placed)
    order = [key for key, _ in sorted(after.items(), key=lambda kv: kv[1])]
    wanted = [k(d["name"]) for d in desired]
    # Every create that got a value lands between its desired neighbours.
    assert [x for x in order if x in set(wanted) and (x not in created or x in placed)] == [
        x for x in wanted if x not in created or x in placed
    ]
    assert len(set(after.values())) == len(after), "no two items share a value"
    # Creates go without a value only when their gap is too small for their run of creates.
    for key in created - set(placed):
        i = wanted.index(key)
        start = max((j + 1 for j in range(i) if wanted[j] not in created), default=0)
        end = next((j for j in range(i + 1, len(wanted)) if wanted[j] not in created), None)
        assert end is not None, "an append always gets a value"
        low = after[wanted[start - 1]] if start > 0 else 0
        assert after[wanted[end]] - low - 1 < end - start


@st.composite
def reorders(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Any device list and any desired order (kept items reordered, new ones anywhere)."""
    names = draw(st.permutations(NAMES))
    on_device = names[: draw(st.integers(0, 8))]
    actual = [{"name": n, "uuid": f"u-{n}"} for n in on_device]
    wanted = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=9))
    return actual, [{"name": n} for n in wanted]


@settings(max_examples=300, deadline=None)
@given(reorders())
def test_appending_creates_then_moving_them_before_their_anchor_gives_the_desired_order(case: Any) -> None:
    """The engine's placement on devices that append every new item (FortiGate): create at the end,
    then one move before the create's `before` anchor when it has one; moves as planned."""
    actual, desired = case
    rules = ComparisonRules(key_fields=("name",), id_field="uuid", ordered=True)
    p = plan(desired, actual, rules, Policy.REPLACED, managed_keys=[[a["name"]] for a in actual])
    deleted = {d.index for d in p.deletes}
    device = [k(a["name"]) for i, a in enumerate(actual) if i not in deleted]

    def put(key: tuple[str], before: Any, after: Any) -> None:
        if key in device:
            device.remove(key)
        if before is not None:
            device.insert(device.index(before.key), key)
        elif after is not None:
            device.insert(device.index(after.key) + 1, key)
        else:
            device.append(key)

    moves = 0
    for step in p.steps():
        if isinstance(step, Create):
            device.append(step.key)
            if step.before is not None:
                put(step.key, step.before, None)
                moves += 1
        elif isinstance(step, Move):
            put(step.key, step.before, step.after)
            moves += 1
    wanted = [k(d["name"]) for d in desired]
    assert [x for x in device if x in set(wanted)] == wanted
    # Fewest moves: existing items outside the longest run already in desired order move, nothing else.
    ranks = [wanted.index(k(a["name"])) for a in actual if k(a["name"]) in set(wanted)]
    longest = [1] * len(ranks)
    for j in range(len(ranks)):
        for i in range(j):
            if ranks[i] < ranks[j]:
                longest[j] = max(longest[j], longest[i] + 1)
    assert len(p.moves) == len(ranks) - max(longest, default=0)
    # ...and each insert the device appends costs at most one move.
    assert moves <= len(p.moves) + len(p.creates)
