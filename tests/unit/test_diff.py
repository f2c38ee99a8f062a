"""Diff/plan of desired against actual items: rules, policies, ownership, ordering, simulation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf_operator.core.diff import (
    Anchor,
    ComparisonRules,
    Create,
    Delete,
    DuplicateKeyError,
    FieldChange,
    MissingKeyError,
    Move,
    Plan,
    PlanError,
    PlanMismatchError,
    Policy,
    Update,
    compare,
    format_key,
    is_owned,
    item_key,
    longest_increasing_subsequence,
    matches_protected,
    plan,
    simulate,
    with_owner_marker,
)
from vnf_operator.core.errors import VnfError
from vnf_operator.core.normalize import FieldRule

pytestmark = pytest.mark.unit

MARK = "vnf-operator:"

FW = ComparisonRules(
    key_fields=("name",),
    id_field=".id",
    field_rules={
        "port": FieldRule("port"),
        "disabled": FieldRule("boolean", default=False),
        "src": FieldRule("cidr", any_values=("any",)),
    },
    ignore_fields=frozenset({"bytes", "stats.hits"}),
    owner_field="comment",
    owner_marker=MARK,
    collection="firewall_rules",
)


def rules(**changes: Any) -> ComparisonRules:
    base: dict[str, Any] = {
        "key_fields": FW.key_fields,
        "id_field": FW.id_field,
        "field_rules": FW.field_rules,
        "ignore_fields": FW.ignore_fields,
        "owner_field": FW.owner_field,
        "owner_marker": FW.owner_marker,
        "collection": FW.collection,
    }
    base.update(changes)
    return ComparisonRules(**base)


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [i.get("name") for i in items]


# --------------------------------------------------------------------------- rules


def test_comparison_rules_validate() -> None:
    with pytest.raises(ValueError, match="key_fields"):
        ComparisonRules(key_fields=())
    with pytest.raises(ValueError, match="repeats"):
        ComparisonRules(key_fields=("a", "a"))
    with pytest.raises(ValueError, match="go together"):
        ComparisonRules(key_fields=("a",), owner_field="comment")
    with pytest.raises(ValueError, match="mode"):
        ComparisonRules(key_fields=("a",), mode="fuzzy")  # type: ignore[arg-type]
    assert ComparisonRules(key_fields="name").key_fields == ("name",)  # type: ignore[arg-type]


def test_errors_are_value_errors_in_the_hierarchy() -> None:
    assert issubclass(DuplicateKeyError, ValueError)
    assert issubclass(MissingKeyError, PlanError)
    assert issubclass(PlanError, VnfError)


# --------------------------------------------------------------------------- keys


def test_key_is_normalised_both_sides() -> None:
    r = ComparisonRules(
        key_fields=("prefix", "vrf"),
        field_rules={
            "prefix": FieldRule("cidr", network=True),
            "vrf": FieldRule("string", default="default"),
        },
    )
    assert item_key({"prefix": "10.1.2.3/8"}, r) == ("10.0.0.0/8", "default")
    assert item_key({"prefix": "10.0.0.0/255.0.0.0", "vrf": "default"}, r) == ("10.0.0.0/8", "default")


def test_host_prefix_and_bare_address_are_one_key() -> None:
    r = ComparisonRules(key_fields=("dst",), field_rules={"dst": FieldRule("cidr")})
    p = plan([{"dst": "192.0.2.1/32", "gw": "x"}], [{"dst": "192.0.2.1", "gw": "x"}], r, Policy.MERGED)
    assert p.is_empty


def test_numeric_keys_match_device_strings_without_a_rule() -> None:
    r = ComparisonRules(key_fields=("seq",))
    assert item_key({"seq": 10}, r) == item_key({"seq": "10"}, r) == ("10",)
    p = plan([{"seq": 10, "action": "permit"}], [{"seq": "10", "action": "permit"}], r, "merged")
    assert p.is_empty


def test_nested_dotted_key() -> None:
    r = ComparisonRules(key_fields=("source.network", "proto"))
    assert item_key({"source": {"network": "a"}, "proto": "tcp"}, r) == ("a", "tcp")
    assert item_key({"source": {}, "proto": "tcp"}, r) is None


def test_case_insensitive_key() -> None:
    r = ComparisonRules(
        key_fields=("name",), field_rules={"name": FieldRule("string", case_insensitive=True)}
    )
    p = plan([{"name": "WEB", "x": 1}], [{"name": "web", "x": 1}], r, "merged")
    assert p.is_empty and not p.creates


def test_missing_key_names_index_and_field() -> None:
    with pytest.raises(MissingKeyError, match=r"firewall_rules\[1\].*'name'") as info:
        plan([{"name": "a"}, {"port": 1}], [], FW, Policy.MERGED)
    assert info.value.index == 1 and info.value.field == "name"
    with pytest.raises(MissingKeyError):
        plan([{"name": ""}], [], FW, Policy.MERGED)


def test_duplicate_desired_key_names_both_positions() -> None:
    with pytest.raises(DuplicateKeyError, match=r"items 0 and 2 .*name=a") as info:
        plan([{"name": "a"}, {"name": "b"}, {"name": "a"}], [], FW, Policy.MERGED)
    assert (info.value.first, info.value.second, info.value.key) == (0, 2, ("a",))


def test_duplicate_detection_uses_normalised_keys() -> None:
    r = ComparisonRules(key_fields=("dst",), field_rules={"dst": FieldRule("cidr")})
    with pytest.raises(DuplicateKeyError):
        plan([{"dst": "10.0.0.1"}, {"dst": "10.0.0.1/32"}], [], r, Policy.MERGED)


def test_desired_must_be_mappings() -> None:
    with pytest.raises(PlanError, match="not a mapping"):
        plan(["nope"], [], FW, Policy.MERGED)  # type: ignore[list-item]


# --------------------------------------------------------------------------- comparison


def test_subset_ignores_server_added_fields_and_routeros_strings() -> None:
    desired = {"name": "a", "port": 22, "disabled": False}
    actual = {".id": "*1", "name": "a", "port": "22", "disabled": "false", "bytes": "123", "dynamic": "false"}
    assert compare(desired, actual, FW) == ()


def test_exact_flags_extra_fields_but_not_ids_ignored_or_nulls() -> None:
    r = rules(mode="exact")
    desired = {"name": "a", "port": 22}
    assert compare(desired, {".id": "*1", "name": "a", "port": "22", "bytes": 5, "note": None}, r) == ()
    changes = compare(desired, {"name": "a", "port": "22", "log": "yes"}, r)
    assert changes == (FieldChange("log", "yes", None),)


def test_defaults_fill_what_the_device_omits() -> None:
    # The device omits `disabled` (default false): not drift in either mode.
    assert compare({"name": "a", "disabled": False}, {"name": "a"}, FW) == ()
    assert compare({"name": "a", "disabled": False}, {"name": "a"}, rules(mode="exact")) == ()


def test_subset_compares_only_what_the_spec_sets_exact_applies_defaults() -> None:
    actual = {"name": "a", "disabled": "true"}
    assert compare({"name": "a"}, actual, FW) == ()
    assert compare({"name": "a"}, actual, rules(mode="exact")) == (FieldChange("disabled", True, False),)


def test_loose_scalar_equality_without_rules() -> None:
    r = ComparisonRules(key_fields=("k",))
    assert (
        compare(
            {"k": 1, "mtu": 1500, "on": True, "w": 1.0}, {"k": "1", "mtu": "1500", "on": "true", "w": 1}, r
        )
        == ()
    )
    assert compare({"k": 1, "on": True}, {"k": 1, "on": 1}, r) == (FieldChange("on", 1, True),)
    assert compare({"k": 1, "v": None}, {"k": 1}, r) == ()
    assert compare({"k": 1, "v": ""}, {"k": 1}, r) == (FieldChange("v", None, ""),)


def test_nested_subset_diff_reports_dotted_paths() -> None:
    r = ComparisonRules(key_fields=("name",), field_rules={"src.port": FieldRule("port")})
    desired = {"name": "a", "src": {"port": 22, "net": "lan"}}
    actual = {"name": "a", "src": {"port": "2222", "net": "lan", "added": 1}, "stats": {"hits": 9}}
    assert compare(desired, actual, r) == (FieldChange("src.port", 2222, 22),)


def test_lists_compare_elementwise_subset() -> None:
    r = ComparisonRules(key_fields=("name",))
    desired = {"name": "p", "srcaddr": [{"name": "lan"}]}
    assert compare(desired, {"name": "p", "srcaddr": [{"name": "lan", "q_origin_key": "lan"}]}, r) == ()
    assert compare(desired, {"name": "p", "srcaddr": [{"name": "wan"}]}, r)
    assert compare(desired, {"name": "p", "srcaddr": []}, r)


def test_ignore_fields_dotted_and_rule_ignore() -> None:
    r = rules(field_rules={**FW.field_rules, "secret": FieldRule("string", ignore=True)}, mode="exact")
    desired = {"name": "a", "secret": "s3cret"}
    actual: dict[str, Any] = {"name": "a", "stats": {"hits": 10}, "secret": "hash"}
    assert compare(desired, actual, r) == ()
    actual["stats"]["other"] = 1
    assert compare(desired, actual, r) == (FieldChange("stats", {"other": 1}, None),)
    assert compare(desired, {"name": "a", "secret": "hash", "bytes": 1}, r) == ()


def test_any_word_matches_any_spelling() -> None:
    assert compare({"name": "a", "src": "ANY"}, {"name": "a", "src": "any"}, FW) == ()
    assert compare({"name": "a", "src": "10.0.0.1"}, {"name": "a", "src": "10.0.0.1/32"}, FW) == ()


# --------------------------------------------------------------------------- ownership and protection


def test_ownership_contains_or_prefix() -> None:
    assert is_owned({"comment": f"{MARK} web"}, FW)
    assert is_owned({"comment": f"web {MARK}"}, FW)
    assert not is_owned({"comment": "web"}, FW)
    assert not is_owned({"comment": 5}, FW)
    assert not is_owned({}, FW)
    prefix = rules(owner_match="prefix")
    assert is_owned({"comment": f"{MARK} web"}, prefix)
    assert not is_owned({"comment": f"web {MARK}"}, prefix)
    assert not is_owned({"comment": MARK}, ComparisonRules(key_fields=("name",)))


def test_with_owner_marker() -> None:
    assert with_owner_marker({"name": "a"}, FW) == {"name": "a", "comment": MARK}
    assert with_owner_marker({"name": "a", "comment": "web"}, FW) == {"name": "a", "comment": f"{MARK} web"}
    assert with_owner_marker({"comment": "web"}, FW, placement="suffix") == {"comment": f"web {MARK}"}
    marked = {"comment": f"{MARK} web"}
    assert with_owner_marker(marked, FW) == marked
    assert with_owner_marker({"a": 1}, ComparisonRules(key_fields=("a",))) == {"a": 1}


def test_protected_patterns() -> None:
    r = rules(field_rules={**FW.field_rules, "iface": FieldRule("string", case_insensitive=True)})
    item = {"name": "mgmt-ssh", "port": "22", "iface": "ETHER1", "disabled": "false"}
    assert matches_protected(item, [{"name": "mgmt-*"}], r)
    assert matches_protected(item, [{"name": "x"}, {"port": 22}], r)
    assert matches_protected(item, [{"iface": "ether*"}], r)
    assert matches_protected(item, [{"disabled": False, "name": "*ssh"}], r)
    assert matches_protected(item, [{"missing": None}], r)
    assert not matches_protected(item, [{"name": "mgmt-*", "port": 23}], r)
    assert not matches_protected(item, [{"missing": "*"}], r)
    assert not matches_protected(item, [], r)
    with pytest.raises(TypeError):
        matches_protected(item, {"name": "x"}, r)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        matches_protected(item, ["name"], r)  # type: ignore[list-item]


# --------------------------------------------------------------------------- policies

DEVICE = [
    {".id": "*1", "name": "mgmt-ssh", "port": "22", "comment": "management"},
    {".id": "*2", "name": "web", "port": "80", "comment": f"{MARK} web"},
    {".id": "*3", "name": "old", "port": "25", "comment": f"{MARK} old"},
    {".id": "*4", "name": "foreign", "port": "21"},
    {".id": "*5", "name": "dns", "port": "53"},
    {".id": "*6", "comment": "no name at all"},
]
DESIRED = [
    {"name": "web", "port": 443, "comment": f"{MARK} web"},
    {"name": "dns", "port": 53},
    {"name": "ntp", "port": 123, "comment": f"{MARK} ntp"},
]
PROTECT = [{"name": "mgmt-*"}]


def test_merged_creates_and_updates_only() -> None:
    p = plan(DESIRED, DEVICE, FW, Policy.MERGED, protected=PROTECT)
    assert [c.key for c in p.creates] == [("ntp",)]
    assert [(u.key, u.device_id, [c.field for c in u.changed_fields]) for u in p.updates] == [
        (("web",), "*2", ["port"])
    ]
    assert p.deletes == () and p.moves == ()
    assert p.adopted == (("dns",),)
    assert {ref.device_id for ref in p.unmanaged} == {"*1", "*4", "*6"}
    assert p.managed == (("web",), ("dns",), ("ntp",))


def test_replaced_deletes_managed_leftovers_only() -> None:
    p = plan(DESIRED, DEVICE, FW, Policy.REPLACED, protected=PROTECT)
    assert [(d.device_id, d.reason) for d in p.deletes] == [("*3", "undesired")]
    assert {ref.device_id for ref in p.unmanaged} == {"*1", "*4", "*6"}
    # A key recorded by an earlier run is managed even without the marker.
    p2 = plan(DESIRED, DEVICE, FW, Policy.REPLACED, managed_keys=[["foreign"]], protected=PROTECT)
    assert [d.device_id for d in p2.deletes] == ["*3", "*4"]


def test_overridden_deletes_everything_else_except_protected() -> None:
    p = plan(DESIRED, DEVICE, FW, Policy.OVERRIDDEN, protected=PROTECT)
    assert [(d.device_id, d.reason) for d in p.deletes] == [
        ("*3", "undesired"),
        ("*4", "foreign"),
        ("*6", "foreign"),
    ]
    assert [(s.device_id, s.action) for s in p.protected] == [("*1", "delete")]
    result = simulate(DEVICE, p, FW)
    assert names(result) == ["mgmt-ssh", "web", "dns", "ntp"]
    assert result[0] == DEVICE[0]


def test_overridden_without_protection_would_cut_management_access() -> None:
    p = plan(DESIRED, DEVICE, FW, Policy.OVERRIDDEN)
    assert "*1" in {d.device_id for d in p.deletes}


def test_protected_item_is_never_modified_even_when_desired() -> None:
    desired = [{"name": "mgmt-ssh", "port": 2222}]
    for policy in Policy:
        p = plan(desired, DEVICE, FW, policy, protected=PROTECT)
        assert not p.updates and not p.creates
        assert "*1" not in {d.device_id for d in p.deletes}
        assert [(s.device_id, s.action) for s in p.protected][:1] == [("*1", "update")]
        assert ("mgmt-ssh",) not in p.managed
    # Equal content: nothing to report.
    assert (
        plan([{"name": "mgmt-ssh", "port": 22}], DEVICE, FW, Policy.MERGED, protected=PROTECT).protected == ()
    )


def test_policy_accepts_strings() -> None:
    assert plan([], DEVICE, FW, "replaced").policy is Policy.REPLACED
    with pytest.raises(ValueError):
        plan([], DEVICE, FW, "deleted")


def test_adoption_instead_of_duplicate_create() -> None:
    actual = [{".id": "*9", "name": "dns", "port": "5353", "comment": "made by hand"}]
    p = plan([{"name": "dns", "port": 53}], actual, FW, Policy.MERGED)
    assert not p.creates
    assert p.adopted == (("dns",),)
    (update,) = p.updates
    assert update.adopted and update.device_id == "*9" and update.index == 0
    assert update.changed_fields == (FieldChange("port", 5353, 53),)
    # Once recorded as managed, it is no longer "adopted".
    again = plan([{"name": "dns", "port": 53}], actual, FW, Policy.MERGED, managed_keys=[["dns"]])
    assert again.adopted == () and not again.updates[0].adopted


def test_managed_keys_from_status_json_are_normalised() -> None:
    r = ComparisonRules(
        key_fields=("prefix", "distance"),
        field_rules={"prefix": FieldRule("cidr", network=True), "distance": FieldRule("integer")},
    )
    actual = [{"prefix": "10.0.0.0/8", "distance": "1"}, {"prefix": "10.9.0.0/16", "distance": "1"}]
    p = plan([], actual, r, Policy.REPLACED, managed_keys=[["10.0.0.1/8", 1], ["bad"], "also bad", [None, 1]])
    assert [d.index for d in p.deletes] == [0]
    single = plan([], [{"name": "a"}], FW, Policy.REPLACED, managed_keys=["a"])
    assert [d.key for d in single.deletes] == [("a",)]


def test_unkeyed_actual_items_are_foreign() -> None:
    actual = [{".id": "*1", "port": "1"}, {".id": "*2", "port": "2", "comment": f"{MARK} lost its name"}]
    merged = plan([], actual, FW, Policy.MERGED)
    assert [ref.device_id for ref in merged.unmanaged] == ["*1"]
    replaced = plan([], actual, FW, Policy.REPLACED)
    assert [(d.device_id, d.key) for d in replaced.deletes] == [("*2", None)]
    overridden = plan([], actual, FW, Policy.OVERRIDDEN)
    assert [d.device_id for d in overridden.deletes] == ["*1", "*2"]
    assert "firewall_rules[#0]" in " ".join(overridden.summary())


def test_non_mapping_actual_entries_are_left_alone() -> None:
    p = plan([], ["garbage", {"name": "x"}], FW, Policy.OVERRIDDEN)  # type: ignore[list-item]
    assert [d.index for d in p.deletes] == [1]
    assert [ref.index for ref in p.unmanaged] == [0]


# --------------------------------------------------------------------------- duplicates


def test_duplicates_reported_and_extra_copies_removed() -> None:
    actual = [
        {".id": "*1", "name": "a", "port": "1", "comment": f"{MARK} a"},
        {".id": "*2", "name": "a", "port": "1", "comment": f"{MARK} a"},
        {".id": "*3", "name": "z", "comment": f"{MARK} z"},
        {".id": "*4", "name": "z", "comment": f"{MARK} z"},
        {".id": "*5", "name": "f"},
        {".id": "*6", "name": "f"},
    ]
    desired = [{"name": "a", "port": 1}]
    merged = plan(desired, actual, FW, Policy.MERGED)
    assert [(d.key, d.device_ids) for d in merged.duplicates] == [
        (("a",), ("*1", "*2")),
        (("z",), ("*3", "*4")),
        (("f",), ("*5", "*6")),
    ]
    assert merged.is_empty
    replaced = plan(desired, actual, FW, Policy.REPLACED)
    assert [(d.device_id, d.reason) for d in replaced.deletes] == [
        ("*2", "duplicate"),
        ("*3", "undesired"),
        ("*4", "undesired"),
    ]
    assert {ref.device_id for ref in replaced.unmanaged} == {"*5", "*6"}


def test_duplicate_copy_that_already_matches_is_kept() -> None:
    actual = [{".id": "*1", "name": "a", "port": "9"}, {".id": "*2", "name": "a", "port": "1"}]
    p = plan([{"name": "a", "port": 1}], actual, FW, Policy.REPLACED)
    assert p.updates == ()
    assert [d.device_id for d in p.deletes] == ["*1"]
    first = plan([{"name": "a", "port": 5}], actual, FW, Policy.REPLACED)
    assert [u.device_id for u in first.updates] == ["*1"]
    assert [d.device_id for d in first.deletes] == ["*2"]


def test_protected_duplicate_copy_is_kept_and_reported() -> None:
    actual = [{".id": "*1", "name": "a", "zone": "mgmt"}, {".id": "*2", "name": "a"}]
    p = plan([{"name": "a", "port": 1}], actual, FW, Policy.OVERRIDDEN, protected=[{"zone": "mgmt"}])
    assert [u.device_id for u in p.updates] == ["*2"]
    assert p.deletes == ()
    assert [(s.device_id, s.action) for s in p.protected] == [("*1", "delete")]


# --------------------------------------------------------------------------- ordering

ORDERED = rules(ordered=True)


def device(*keys: str) -> list[dict[str, Any]]:
    return [{".id": f"*{k}", "name": k, "comment": f"{MARK} {k}"} for k in keys]


def spec(*keys: str) -> list[dict[str, Any]]:
    return [{"name": k, "comment": f"{MARK} {k}"} for k in keys]


def test_in_order_means_no_moves() -> None:
    assert plan(spec("a", "b", "c"), device("a", "b", "c"), ORDERED, Policy.MERGED).is_empty
    # Foreign items in between do not matter.
    actual = device("a", "b", "c")
    actual.insert(1, {".id": "*x", "name": "x"})
    assert plan(spec("a", "b", "c"), actual, ORDERED, Policy.MERGED).is_empty


def test_one_item_out_of_place_moves_once() -> None:
    p = plan(spec("a", "b", "c", "d"), device("b", "c", "d", "a"), ORDERED, Policy.MERGED)
    assert p.moves == (Move(("a",), "*a", 3, 0, before=Anchor(("b",), "*b", 0), after=None),)
    assert p.moves[0].before_id == "*b" and p.moves[0].after_id is None
    assert names(simulate(device("b", "c", "d", "a"), p, ORDERED)) == ["a", "b", "c", "d"]


def test_reversed_needs_n_minus_one_moves() -> None:
    actual = device("e", "d", "c", "b", "a")
    p = plan(spec("a", "b", "c", "d", "e"), actual, ORDERED, Policy.MERGED)
    assert len(p.moves) == 4
    assert names(simulate(actual, p, ORDERED)) == ["a", "b", "c", "d", "e"]


def test_trailing_items_go_after_their_predecessor() -> None:
    actual = device("c", "a", "b")
    p = plan(spec("a", "b", "c"), actual, ORDERED, Policy.MERGED)
    (move,) = p.moves
    assert move.key == ("c",) and move.after == Anchor(("b",), "*b", 2) and move.before is None
    assert move.after_id == "*b"
    assert names(simulate(actual, p, ORDERED)) == ["a", "b", "c"]


def test_creates_are_placed_in_order() -> None:
    actual = device("b", "d")
    p = plan(spec("a", "b", "c", "d", "e", "f"), actual, ORDERED, Policy.MERGED)
    assert p.moves == ()
    placed = {c.key[0]: (c.position, c.before, c.after) for c in p.creates}
    assert placed["a"] == (0, Anchor(("b",), "*b", 0), None)
    assert placed["c"] == (2, Anchor(("d",), "*d", 1), None)
    assert placed["e"] == (4, None, Anchor(("d",), "*d", 1))
    assert placed["f"] == (5, None, Anchor(("e",), None, None))
    assert p.creates[3].before_id is None and p.creates[3].after_id is None
    assert names(simulate(actual, p, ORDERED)) == ["a", "b", "c", "d", "e", "f"]


def test_all_new_items_append_in_order() -> None:
    actual = [{".id": "*x", "name": "x"}]
    p = plan(spec("a", "b"), actual, ORDERED, Policy.MERGED)
    assert [(c.before, c.after) for c in p.creates] == [(None, None), (None, Anchor(("a",), None, None))]
    assert names(simulate(actual, p, ORDERED)) == ["x", "a", "b"]


def test_unordered_collections_never_move() -> None:
    p = plan(spec("a", "b"), device("b", "a"), FW, Policy.MERGED)
    assert p.is_empty
    created = plan(spec("a"), [], FW, Policy.MERGED).creates
    assert created == (Create(("a",), spec("a")[0]),)


def test_steps_order() -> None:
    actual = device("c", "old", "a")
    p = plan(spec("a", "n", "c"), actual, ORDERED, Policy.REPLACED)
    kinds = [type(s).__name__ for s in p.steps()]
    assert kinds[0] == "Delete"
    placements = [s for s in p.steps() if isinstance(s, Create | Move)]
    assert [s.position for s in placements] == sorted(s.position or 0 for s in placements)
    assert names(simulate(actual, p, ORDERED)) == ["a", "n", "c"]


def test_deletes_run_highest_index_first() -> None:
    p = plan([], device("a", "b", "c"), FW, Policy.REPLACED)
    assert [s.index for s in p.steps() if isinstance(s, Delete)] == [2, 1, 0]


# --------------------------------------------------------------------------- summary and counts


def test_summary_lines_and_counts() -> None:
    p = plan(DESIRED, DEVICE, FW, Policy.OVERRIDDEN, protected=PROTECT)
    lines = p.summary()
    assert "create firewall_rules[name=ntp]" in lines
    assert "update firewall_rules[name=web] id=*2: port" in lines
    assert "delete firewall_rules[name=old] id=*3 (undesired)" in lines
    assert "adopt firewall_rules[name=dns]" in lines
    assert "keep protected firewall_rules[name=mgmt-ssh] id=*1 (would delete)" in lines
    assert p.counts() == {
        "create": 1,
        "update": 1,
        "delete": 3,
        "move": 0,
        "adopt": 1,
        "unmanaged": 0,
        "duplicate": 0,
        "protected": 1,
    }


def test_summary_never_shows_values() -> None:
    r = ComparisonRules(key_fields=("peer",), collection="bgp_neighbors")
    p = plan(
        [{"peer": "10.0.0.2", "password": "hunter2-secret"}],
        [{"peer": "10.0.0.2", "password": "old-pass"}],
        r,
        "merged",
    )
    text = "\n".join(p.summary())
    assert "update bgp_neighbors[peer=10.0.0.2]: password" in text
    assert "hunter2" not in text and "old-pass" not in text


def test_summary_for_moves_duplicates_and_unmanaged() -> None:
    actual = [*device("b", "a"), {".id": "*f", "name": "f"}, {".id": "*g", "name": "f"}]
    lines = plan(spec("a", "b"), actual, ORDERED, Policy.MERGED).summary()
    assert "move firewall_rules[name=a] id=*a before firewall_rules[name=b]" in lines
    assert "duplicate firewall_rules[name=f]: 2 copies (ids *f, *g)" in lines
    assert lines[-1] == "leave 2 unmanaged firewall_rules item(s) alone"


def test_format_key() -> None:
    r = ComparisonRules(key_fields=("prefix", "vrf"), collection="routes")
    assert format_key(("10.0.0.0/8", "blue"), r) == "routes[prefix=10.0.0.0/8,vrf=blue]"
    assert format_key((("a", "b"), "x"), r) == "routes[prefix=[a,b],vrf=x]"


def test_empty_plan() -> None:
    p = Plan(collection="x", key_fields=("k",), policy=Policy.MERGED)
    assert p.is_empty and p.summary() == [] and p.steps() == ()


# --------------------------------------------------------------------------- simulate


def test_simulate_subset_merges_exact_replaces() -> None:
    actual = [{".id": "*1", "name": "a", "port": "1", "bytes": "9", "extra": "x"}]
    desired = [{"name": "a", "port": 2}]
    merged = simulate(actual, plan(desired, actual, FW, "merged"), FW)
    assert merged == [{".id": "*1", "name": "a", "port": 2, "bytes": "9", "extra": "x"}]
    exact = rules(mode="exact")
    replaced = simulate(actual, plan(desired, actual, exact, "merged"), exact)
    assert replaced == [{"name": "a", "port": 2, "bytes": "9", ".id": "*1"}]
    assert actual[0]["port"] == "1"  # the input is not modified


def test_simulate_assigns_fresh_ids_to_creates() -> None:
    actual = [{".id": "sim-1", "name": "a"}]
    result = simulate(actual, plan(spec("a", "b"), actual, FW, "merged"), FW)
    assert [i[".id"] for i in result] == ["sim-1", "sim-2"]
    no_ids = ComparisonRules(key_fields=("name",))
    assert simulate([], plan([{"name": "a"}], [], no_ids, "merged"), no_ids) == [{"name": "a"}]


def test_simulate_rejects_a_plan_for_another_list() -> None:
    p = plan([], device("a", "b"), FW, Policy.REPLACED)
    with pytest.raises(PlanMismatchError):
        simulate(device("a"), p, FW)
    with pytest.raises(PlanMismatchError):
        simulate(device("x", "y"), p, FW)
    bad = Plan(
        collection="x",
        key_fields=("name",),
        policy=Policy.MERGED,
        creates=(Create(("n",), {"name": "n"}, 0, before=Anchor(("zz",), None, None)),),
    )
    with pytest.raises(PlanMismatchError, match="anchor"):
        simulate([], bad, FW)
    gone = Plan(
        collection="x",
        key_fields=("name",),
        policy=Policy.MERGED,
        deletes=(Delete(("a",), "*a", {}, 0),),
        moves=(Move(("a",), "*a", 0, 0),),
    )
    with pytest.raises(PlanMismatchError, match="deleted"):
        simulate(device("a"), gone, FW)


def test_update_record_carries_both_sides() -> None:
    actual = [{".id": "*1", "name": "a", "port": "1"}]
    (u,) = plan([{"name": "a", "port": 2}], actual, FW, "merged").updates
    assert u == Update(
        key=("a",),
        device_id="*1",
        desired={"name": "a", "port": 2},
        actual=actual[0],
        changed_fields=(FieldChange("port", 1, 2),),
        index=0,
        adopted=True,
    )


# --------------------------------------------------------------------------- LIS


def _lis_length(values: list[int]) -> int:
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] < values[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


def test_lis_examples() -> None:
    assert longest_increasing_subsequence([]) == []
    assert longest_increasing_subsequence([3, 1, 2]) == [1, 2]
    assert len(longest_increasing_subsequence([5, 4, 3])) == 1
    assert longest_increasing_subsequence([1, 1, 1]) == [0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-20, 20), max_size=40))
def test_lis_is_increasing_and_longest(values: list[int]) -> None:
    chosen = longest_increasing_subsequence(values)
    assert chosen == sorted(chosen)
    assert all(values[a] < values[b] for a, b in itertools.pairwise(chosen))
    assert len(chosen) == _lis_length(values)
