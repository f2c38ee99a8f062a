"""Property tests: plan + simulate reach the declared state under every policy, minimally.

The oracle below is written independently of the code under test: it knows the generated
schema (a port, a boolean, a comment carrying the ownership marker, server-added fields) and
checks results with plain Python, not with `diff.compare`.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vnf_operator.core.diff import ComparisonRules, Plan, Policy, plan, simulate
from vnf_operator.core.normalize import FieldRule

pytestmark = pytest.mark.unit

MARK = "vnf-operator:"
KEYS = ["a", "b", "c", "d", "e", "f", "p1", "p2"]
ID = ".id"
IGNORED = "counter"


# --------------------------------------------------------------------------- generated data

ports = st.integers(1, 65535).flatmap(lambda p: st.sampled_from([p, str(p)]))
booleans = st.booleans().flatmap(
    lambda b: st.sampled_from([b, "true" if b else "false", "1" if b else "0", "yes" if b else "no"])
)
comments = st.one_of(
    st.none(),
    st.sampled_from(["", "hand made", "x"]),
    st.sampled_from(["a", "b", ""]).map(lambda t: f"{MARK} {t}".strip()),
)


@st.composite
def desired_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=7))
    items = []
    for name in chosen:
        item: dict[str, Any] = {"name": name}
        if draw(st.booleans()):
            item["port"] = draw(ports)
        if draw(st.booleans()):
            item["enabled"] = draw(booleans)
        if draw(st.booleans()):
            item["comment"] = draw(comments)
        items.append(item)
    return items


@st.composite
def actual_lists(draw: st.DrawFn, with_ids: bool) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 9))
    items = []
    for n in range(count):
        item: dict[str, Any] = {ID: f"*{n + 1}"} if with_ids else {}
        if draw(st.integers(0, 11)) > 0:  # now and then an item lacking its key
            item["name"] = draw(st.sampled_from(KEYS))
        if draw(st.booleans()):
            item["port"] = draw(ports)
        if draw(st.booleans()):
            item["enabled"] = draw(booleans)
        if draw(st.booleans()):
            item["comment"] = draw(comments)
        if draw(st.booleans()):
            item["zone"] = draw(st.sampled_from(["mgmt", "lan"]))
        if draw(st.booleans()):
            item[IGNORED] = draw(st.integers(0, 99))
        items.append(item)
    return items


@dataclass(frozen=True)
class Case:
    desired: list[dict[str, Any]]
    actual: list[dict[str, Any]]
    rules: ComparisonRules
    policy: Policy
    managed_keys: frozenset[tuple[str, ...]]
    protected: list[dict[str, Any]]

    @property
    def with_ids(self) -> bool:
        return self.rules.id_field is not None


@st.composite
def cases(draw: st.DrawFn, ordered: bool | None = None, with_ids: bool | None = None) -> Case:
    ids = draw(st.booleans()) if with_ids is None else with_ids
    rules = ComparisonRules(
        key_fields=("name",),
        id_field=ID if ids else None,
        field_rules={"port": FieldRule("port"), "enabled": FieldRule("boolean", default=False)},
        ignore_fields=frozenset({IGNORED}),
        mode=draw(st.sampled_from(["subset", "exact"])),
        ordered=draw(st.booleans()) if ordered is None else ordered,
        owner_field="comment",
        owner_marker=MARK,
        collection="rules",
    )
    return Case(
        desired=draw(desired_lists()),
        actual=draw(actual_lists(ids)),
        rules=rules,
        policy=draw(st.sampled_from(list(Policy))),
        managed_keys=frozenset((k,) for k in draw(st.sets(st.sampled_from(KEYS), max_size=4))),
        protected=draw(
            st.sampled_from([[], [{"name": "p*"}], [{"zone": "mgmt"}], [{"zone": "mgmt", "name": "?"}]])
        ),
    )


# --------------------------------------------------------------------------- oracle


def key(item: dict[str, Any]) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) and name else None


def owned(item: dict[str, Any]) -> bool:
    comment = item.get("comment")
    return isinstance(comment, str) and MARK in comment


def protected(item: dict[str, Any], patterns: list[dict[str, Any]]) -> bool:
    return any(
        all(isinstance(item.get(f), str) and fnmatch.fnmatchcase(item[f], g) for f, g in p.items())
        for p in patterns
    )


def port(value: Any) -> Any:
    return None if value is None else int(value)


def flag(value: Any) -> Any:
    if value is None:
        return None
    return str(value).lower() in ("true", "1", "yes")


def canonical(item: dict[str, Any], *, defaults: bool) -> dict[str, Any]:
    out = {}
    for name, value in item.items():
        if name in (ID, IGNORED) or value is None:
            continue
        out[name] = port(value) if name == "port" else flag(value) if name == "enabled" else value
    if defaults and "enabled" not in out:
        out["enabled"] = False
    return out


def equal(desired: dict[str, Any], item: dict[str, Any], mode: str) -> bool:
    if mode == "exact":
        return canonical(desired, defaults=True) == canonical(item, defaults=True)
    have = canonical(item, defaults=True)
    return all(have.get(name) == value for name, value in canonical(desired, defaults=False).items()) and all(
        name in have or desired[name] is None for name in desired
    )


def lis_length(values: list[int]) -> int:
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] < values[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


@dataclass(frozen=True)
class Facts:
    desired_keys: dict[str, int]
    protected_only: set[str]
    participants: dict[str, int]


def facts(case: Case) -> Facts:
    desired_keys = {key(d) or "": i for i, d in enumerate(case.desired)}
    copies: dict[str, list[dict[str, Any]]] = {}
    for a in case.actual:
        k = key(a)
        if k is not None:
            copies.setdefault(k, []).append(a)
    protected_only = {
        k for k in desired_keys if copies.get(k) and all(protected(a, case.protected) for a in copies[k])
    }
    participants = {k: i for k, i in desired_keys.items() if k not in protected_only}
    return Facts(desired_keys, protected_only, participants)


def is_managed(item: dict[str, Any], case: Case) -> bool:
    k = key(item)
    return owned(item) or (k is not None and (k,) in case.managed_keys)


def remove_each(pool: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`pool` minus one equal element per element of `wanted` (each must be present)."""
    rest = list(pool)
    for item in wanted:
        assert item in rest, f"{item} vanished"
        rest.remove(item)
    return rest


def run(case: Case) -> tuple[Plan, list[dict[str, Any]]]:
    p = plan(
        case.desired,
        case.actual,
        case.rules,
        case.policy,
        managed_keys=case.managed_keys,
        protected=case.protected,
    )
    return p, simulate(case.actual, p, case.rules)


# --------------------------------------------------------------------------- properties

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cases())
def test_every_desired_item_ends_present_and_equal(case: Case) -> None:
    _, result = run(case)
    f = facts(case)
    for d in case.desired:
        k = key(d)
        if k in f.protected_only:
            continue
        assert any(key(r) == k and equal(d, r, case.rules.mode) for r in result), f"{k} missing or different"


@SETTINGS
@given(cases())
def test_protected_items_are_never_touched(case: Case) -> None:
    _, result = run(case)
    remove_each(result, [a for a in case.actual if protected(a, case.protected)])


@SETTINGS
@given(cases().filter(lambda c: c.policy is Policy.MERGED))
def test_merged_removes_nothing(case: Case) -> None:
    p, result = run(case)
    assert p.deletes == ()
    assert len(result) == len(case.actual) + len(p.creates)
    f = facts(case)
    untouched = [a for a in case.actual if key(a) not in f.desired_keys]
    remove_each(result, untouched)
    if case.with_ids:
        assert {a[ID] for a in case.actual} <= {r[ID] for r in result}


@SETTINGS
@given(cases().filter(lambda c: c.policy is Policy.REPLACED))
def test_replaced_removes_exactly_managed_leftovers(case: Case) -> None:
    _, result = run(case)
    f = facts(case)
    foreign = [
        a
        for a in case.actual
        if key(a) not in f.desired_keys and not is_managed(a, case) and not protected(a, case.protected)
    ]
    remove_each(result, foreign)  # unmanaged items survive unchanged
    originals_protected = [a for a in case.actual if protected(a, case.protected)]
    rest = remove_each(result, originals_protected)
    for r in rest:
        if key(r) not in f.desired_keys:
            assert not is_managed(r, case), f"managed leftover {r} survived"
    counts = Counter(key(r) for r in rest)
    for k in f.participants:
        assert counts[k] == 1, f"{k} present {counts[k]} times"


@SETTINGS
@given(cases().filter(lambda c: c.policy is Policy.OVERRIDDEN))
def test_overridden_result_is_desired_plus_protected(case: Case) -> None:
    _, result = run(case)
    f = facts(case)
    rest = remove_each(result, [a for a in case.actual if protected(a, case.protected)])
    assert sorted(key(r) or "" for r in rest) == sorted(f.participants)
    by_key = {key(d): d for d in case.desired}
    for r in rest:
        assert equal(by_key[key(r)], r, case.rules.mode)


@SETTINGS
@given(cases())
def test_plan_is_idempotent(case: Case) -> None:
    first, result = run(case)
    again = plan(
        case.desired,
        result,
        case.rules,
        case.policy,
        managed_keys=case.managed_keys | set(first.managed),
        protected=case.protected,
    )
    assert again.is_empty, again.summary()
    # Without recording the managed keys too: adoption makes it converge as well.
    assert plan(
        case.desired,
        result,
        case.rules,
        case.policy,
        managed_keys=case.managed_keys,
        protected=case.protected,
    ).is_empty


@SETTINGS
@given(cases(ordered=True))
def test_ordered_collections_end_in_desired_order(case: Case) -> None:
    _, result = run(case)
    f = facts(case)
    originals_protected = [a for a in case.actual if protected(a, case.protected)]
    # Drop the untouched protected originals; everything else carrying a desired key must
    # contain one copy per key in desired order.
    rest = remove_each(result, originals_protected)
    positions = [f.participants[k] for r in rest if (k := key(r)) in f.participants]
    assert lis_length(positions) == len(f.participants)


@SETTINGS
@given(cases(ordered=True))
def test_moves_are_minimal(case: Case) -> None:
    p, _ = run(case)
    f = facts(case)
    existing = [
        f.participants[k]
        for a in case.actual
        if (k := key(a)) in f.participants and not protected(a, case.protected)
    ]
    assert len(p.moves) == len(set(existing)) - lis_length(existing)
    # Creates are exactly the desired keys with no copy at all on the device.
    present = {key(a) for a in case.actual}
    assert sorted(c.key[0] for c in p.creates) == sorted(k for k in f.desired_keys if k not in present)


@SETTINGS
@given(cases(ordered=False))
def test_unordered_plans_have_no_moves_or_positions(case: Case) -> None:
    p, _ = run(case)
    assert p.moves == ()
    assert all(c.position is None and c.before is None and c.after is None for c in p.creates)


@SETTINGS
@given(cases())
def test_plan_does_not_modify_its_inputs(case: Case) -> None:
    import copy

    desired, actual = copy.deepcopy(case.desired), copy.deepcopy(case.actual)
    run(case)
    assert case.desired == desired and case.actual == actual


@settings(max_examples=200, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_plan_result_does_not_depend_on_actual_order_for_unordered(case: Case, rnd: Any) -> None:
    assume(not case.rules.ordered)
    shuffled = list(case.actual)
    rnd.shuffle(shuffled)
    # Which items end up present and equal does not depend on the listing order.
    _, result = run(case)
    _, result2 = run(Case(case.desired, shuffled, case.rules, case.policy, case.managed_keys, case.protected))
    assert len(result) == len(result2)
    assert Counter(key(r) for r in result) == Counter(key(r) for r in result2)


@st.composite
def reordered_cases(draw: st.DrawFn) -> Case:
    """Ordered collections whose device holds (most of) the desired items in another order."""
    base = draw(cases(ordered=True, with_ids=draw(st.booleans())))
    chosen = draw(st.permutations([key(d) for d in base.desired]))
    keep = draw(st.lists(st.booleans(), min_size=len(chosen), max_size=len(chosen)))
    actual: list[dict[str, Any]] = []
    for n, (name, kept) in enumerate(zip(chosen, keep, strict=True)):
        if kept or n % 3:
            item: dict[str, Any] = {"name": name, "comment": f"{MARK} {name}"}
            if base.with_ids:
                item[ID] = f"*{n + 1}"
            actual.append(item)
    extras = [dict(a, **({ID: f"*x{n}"} if base.with_ids else {})) for n, a in enumerate(base.actual)]
    position = draw(st.integers(0, len(actual)))
    actual[position:position] = extras[:2]
    return Case(base.desired, actual, base.rules, base.policy, base.managed_keys, base.protected)


@SETTINGS
@given(reordered_cases())
def test_reordering_is_minimal_ordered_and_idempotent(case: Case) -> None:
    p, result = run(case)
    f = facts(case)
    existing = [
        f.participants[k]
        for a in case.actual
        if (k := key(a)) in f.participants and not protected(a, case.protected)
    ]
    assert len(p.moves) == len(set(existing)) - lis_length(existing)
    rest = remove_each(result, [a for a in case.actual if protected(a, case.protected)])
    positions = [f.participants[k] for r in rest if (k := key(r)) in f.participants]
    assert lis_length(positions) == len(f.participants)
    again = plan(
        case.desired,
        result,
        case.rules,
        case.policy,
        managed_keys=case.managed_keys | set(p.managed),
        protected=case.protected,
    )
    assert again.is_empty, again.summary()
