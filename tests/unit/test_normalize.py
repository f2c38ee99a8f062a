"""Normalising device and desired values to one canonical form per field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf_operator.core.normalize import (
    ANY,
    FIELD_TYPES,
    NO_DEFAULT,
    FieldRule,
    get_path,
    normalize_item,
    normalize_value,
    rule_for_path,
    rules_from_spec,
    scalar_text,
    split_path,
)

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- scalars


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1500", 1500), (" 1500 ", 1500), (1500, 1500), (1500.0, 1500), ("1500.0", 1500), ("-3", -3)],
)
def test_integer_coerces_device_strings(raw: Any, expected: int) -> None:
    assert normalize_value(raw, FieldRule("integer")) == expected


@pytest.mark.parametrize("raw", ["abc", "1.5", 1.5, True, "", [1], {"a": 1}])
def test_integer_keeps_what_it_cannot_coerce(raw: Any) -> None:
    assert normalize_value(raw, FieldRule("integer")) == raw


def test_number_keeps_integers_integral_and_rejects_non_finite() -> None:
    rule = FieldRule("number")
    assert normalize_value("2.50", rule) == 2.5
    assert normalize_value("3.0", rule) == 3
    assert isinstance(normalize_value(3.0, rule), int)
    assert normalize_value("nan", rule) == "nan"
    assert normalize_value("1e999", rule) == "1e999"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("false", False),
        ("True", True),
        ("yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        ("enabled", True),
        ("disabled", False),
        (" on ", True),
        (False, False),
    ],
)
def test_boolean_spellings(raw: Any, expected: bool) -> None:
    assert normalize_value(raw, FieldRule("boolean")) is expected


@pytest.mark.parametrize("raw", ["maybe", 2, "", "2"])
def test_boolean_leaves_nonsense_alone(raw: Any) -> None:
    assert normalize_value(raw, FieldRule("boolean")) == raw


def test_string_of_numbers_and_booleans() -> None:
    rule = FieldRule("string")
    assert normalize_value(1500, rule) == "1500"
    assert normalize_value(1500.0, rule) == "1500"
    assert normalize_value(True, rule) == "true"
    assert normalize_value("Mixed Case", rule) == "Mixed Case"
    assert normalize_value("Mixed Case", FieldRule("string", case_insensitive=True)) == "mixed case"


def test_none_stays_none() -> None:
    for kind in sorted(FIELD_TYPES):
        assert normalize_value(None, FieldRule(kind)) is None


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("10.0.0.1", "ipv4", "10.0.0.1"),
        ("10.0.0.1/32", "ipv4", "10.0.0.1"),
        (" 10.0.0.1 ", "ip", "10.0.0.1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "ipv6", "2001:db8::1"),
        ("2001:db8::1/128", "ip", "2001:db8::1"),
    ],
)
def test_addresses_are_canonical(raw: str, kind: str, expected: str) -> None:
    assert normalize_value(raw, FieldRule(kind)) == expected


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("2001:db8::1", "ipv4"),
        ("10.0.0.1", "ipv6"),
        ("10.0.0.0/8", "ip"),
        ("not-an-ip", "ip"),
        (167772161, "ip"),
    ],
)
def test_addresses_keep_what_does_not_fit(raw: Any, kind: str) -> None:
    assert normalize_value(raw, FieldRule(kind)) == raw


def test_cidr_host_bits_kept_unless_network() -> None:
    assert normalize_value("10.1.2.3/8", FieldRule("cidr")) == "10.1.2.3/8"
    assert normalize_value("10.1.2.3/8", FieldRule("cidr", network=True)) == "10.0.0.0/8"


def test_cidr_bare_address_is_a_host_prefix() -> None:
    rule = FieldRule("cidr")
    assert normalize_value("10.0.0.1", rule) == normalize_value("10.0.0.1/32", rule) == "10.0.0.1/32"
    assert normalize_value("2001:db8::1", rule) == "2001:db8::1/128"


def test_cidr_netmask_and_ipv6_forms() -> None:
    assert normalize_value("10.0.0.0/255.255.255.0", FieldRule("cidr", network=True)) == "10.0.0.0/24"
    assert normalize_value("2001:DB8:0:0::/32", FieldRule("cidr", network=True)) == "2001:db8::/32"
    assert normalize_value("garbage/99", FieldRule("cidr")) == "garbage/99"


# --------------------------------------------------------------------------- ports, enums, hostnames


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("80", "80"),
        (80, "80"),
        ("80-90", "80-90"),
        ("80:90", "80-90"),
        (" 80 - 90 ", "80-90"),
        ("80-80", "80"),
    ],
)
def test_port_ranges(raw: Any, expected: str) -> None:
    assert normalize_value(raw, FieldRule("port_range")) == expected


@pytest.mark.parametrize("raw", ["90-80", "0-70000", "http", "1-2-3"])
def test_port_range_keeps_invalid(raw: str) -> None:
    assert normalize_value(raw, FieldRule("portRange")) == raw


def test_port() -> None:
    assert normalize_value("443", FieldRule("port")) == 443
    assert normalize_value("70000", FieldRule("port")) == "70000"
    assert normalize_value("https", FieldRule("port")) == "https"


def test_enum_takes_the_canonical_choice_spelling() -> None:
    rule = FieldRule("enum", choices=("TCP", "UDP"))
    assert normalize_value("tcp", rule) == "TCP"
    assert normalize_value("icmp", rule) == "icmp"
    assert normalize_value("ICMP", FieldRule("enum", case_insensitive=True)) == "icmp"


def test_hostname_folds_case_and_trailing_dot() -> None:
    assert normalize_value("Router1.Example.COM.", FieldRule("hostname")) == "router1.example.com"


# --------------------------------------------------------------------------- maps, any, lists, objects


def test_value_map_before_coercion() -> None:
    boolean = FieldRule("boolean", value_map={"1": True, "0": False, "yes please": True})
    assert normalize_value("yes please", boolean) is True
    cidr = FieldRule("cidr", network=True, value_map={"any": "0.0.0.0/0"})
    assert normalize_value("any", cidr) == normalize_value("0.0.0.0/0", cidr) == "0.0.0.0/0"
    assert normalize_value("ANY", cidr) == "ANY"
    folded = FieldRule("cidr", network=True, case_insensitive=True, value_map={"any": "0.0.0.0/0"})
    assert normalize_value("ANY", folded) == "0.0.0.0/0"


def test_any_values_become_one_word() -> None:
    rule = FieldRule("cidr", any_values=("any", "all", "*"))
    assert normalize_value("ALL", rule) == ANY
    assert normalize_value("*", rule) == ANY
    assert normalize_value("any", rule) == ANY
    assert normalize_value("10.0.0.0/8", rule) == "10.0.0.0/8"


def test_lists_split_sort_and_wrap() -> None:
    rule = FieldRule("list", items=FieldRule("port"), unordered=True)
    assert normalize_value("443, 80,,22", rule) == [22, 80, 443]
    assert normalize_value(["80", 22], rule) == [22, 80]
    assert normalize_value("", rule) == []
    ordered = FieldRule("list")
    assert normalize_value(["b", "a"], ordered) == ["b", "a"]
    # XML-to-JSON devices send a one-element list as the element itself.
    assert normalize_value({"name": "lan"}, ordered) == [{"name": "lan"}]
    assert normalize_value("a;b", FieldRule("list", separator=";")) == ["a", "b"]
    assert normalize_value("a,b", FieldRule("list", separator=None)) == ["a,b"]


def test_objects_recurse_with_their_fields() -> None:
    rule = FieldRule("object", fields={"port": FieldRule("port"), "net": FieldRule("cidr", network=True)})
    value = {"port": "53", "net": "10.1.0.0/16", "x": "kept"}
    assert normalize_value(value, rule) == {"port": 53, "net": "10.1.0.0/16", "x": "kept"}
    assert normalize_value("not an object", rule) == "not an object"


def test_lists_of_objects() -> None:
    rule = FieldRule(
        "list", items=FieldRule("object", fields={"name": FieldRule("string", case_insensitive=True)})
    )
    assert normalize_value([{"name": "Port1"}], rule) == [{"name": "port1"}]


# --------------------------------------------------------------------------- items


def test_item_defaults_ignore_and_unknown() -> None:
    rules = {
        "mtu": FieldRule("integer", default=1500),
        "enabled": FieldRule("boolean", default="true"),
        "counter": FieldRule("integer", ignore=True),
        "name": FieldRule("string"),
    }
    item = {"name": "eth0", "enabled": None, "counter": "77", "vendor": "x"}
    assert normalize_item(item, rules, keep_unknown=True) == {
        "name": "eth0",
        "enabled": True,
        "mtu": 1500,
        "vendor": "x",
    }
    assert normalize_item(item, rules, keep_unknown=False) == {"name": "eth0", "enabled": True, "mtu": 1500}
    assert normalize_item(item, rules, keep_unknown=False, apply_defaults=False) == {
        "name": "eth0",
        "enabled": None,
    }


def test_item_is_a_copy() -> None:
    item = {"tags": ["a"], "nested": {"k": [1]}}
    out = normalize_item(item, {}, keep_unknown=True)
    out["tags"].append("b")
    out["nested"]["k"].append(2)
    assert item == {"tags": ["a"], "nested": {"k": [1]}}


def test_dotted_rules_reach_into_objects() -> None:
    rules = {
        "source.port": FieldRule("port"),
        "source.network": FieldRule("cidr", network=True, default="0.0.0.0/0"),
        "name": FieldRule("string", case_insensitive=True),
    }
    item = {"name": "Web", "source": {"port": "443", "other": 1}}
    assert normalize_item(item, rules, keep_unknown=True) == {
        "name": "web",
        "source": {"port": 443, "network": "0.0.0.0/0", "other": 1},
    }
    # A missing parent object is not invented.
    assert normalize_item({"name": "x"}, rules, keep_unknown=True) == {"name": "x"}
    # keep_unknown=False keeps the parent but drops its unknown members.
    assert normalize_item(item, rules, keep_unknown=False) == {
        "name": "web",
        "source": {"port": 443, "network": "0.0.0.0/0"},
    }


def test_literal_dotted_names_win() -> None:
    rules = {".id": FieldRule("string", case_insensitive=True), "a.b": FieldRule("integer")}
    assert normalize_item({".id": "*1A", "a.b": "5"}, rules, keep_unknown=True) == {".id": "*1a", "a.b": 5}


def test_object_rule_merges_with_dotted_rules() -> None:
    rules = {
        "src": FieldRule("object", fields={"port": FieldRule("port")}),
        "src.net": FieldRule("cidr", network=True),
    }
    assert normalize_item({"src": {"port": "22", "net": "10.1.1.1/8"}}, rules, keep_unknown=True) == {
        "src": {"port": 22, "net": "10.0.0.0/8"}
    }


# --------------------------------------------------------------------------- paths and rules


def test_paths() -> None:
    assert split_path(".id") == [".id"]
    assert split_path("a.b.c") == ["a", "b", "c"]
    assert get_path({"a": {"b": 1}}, "a.b") == 1
    assert get_path({"a.b": 2, "a": {"b": 1}}, "a.b") == 2
    assert get_path({"a": 1}, "a.b", "dflt") == "dflt"
    inner = FieldRule("port")
    rules = {"src": FieldRule("object", fields={"port": inner}), "x.y": FieldRule("integer")}
    assert rule_for_path(rules, "src.port") is inner
    assert rule_for_path(rules, "x.y") is rules["x.y"]
    assert rule_for_path(rules, "src.none") is None
    assert rule_for_path(rules, "nothing") is None


def test_scalar_text() -> None:
    assert scalar_text(True) == "true"
    assert scalar_text(2.0) == "2"
    assert scalar_text(2.5) == "2.5"
    assert scalar_text("x") == "x"
    assert scalar_text(None) is None
    assert scalar_text([1]) is None


def test_field_rule_validates_type_and_freezes_maps() -> None:
    with pytest.raises(ValueError, match="unknown field type"):
        FieldRule("ipv5")
    assert FieldRule("portRange").type == "port_range"
    source = {"1": True}
    rule = FieldRule("boolean", value_map=source)
    source["0"] = False
    assert dict(rule.value_map) == {"1": True}
    assert FieldRule().default is NO_DEFAULT
    assert not FieldRule().has_default
    assert FieldRule(default=None).has_default


def test_rules_from_plain_spec() -> None:
    rules = rules_from_spec(
        {
            "enabled": {"type": "boolean", "deviceValues": {"1": True, "0": False}, "default": True},
            "proto": {"type": "string", "enum": ["TCP", "UDP"], "caseInsensitive": True},
            "password": {"type": "string", "compare": False},
            "ports": {"type": "list", "items": {"type": "portRange"}},
            "src": {"type": "object", "fields": {"net": {"type": "cidr"}}},
            "desc": {"type": "string", "default": None, "description": "ignored key"},
        }
    )
    assert rules["enabled"].value_map == {"1": True, "0": False}
    assert rules["enabled"].default is True
    assert rules["proto"].case_insensitive and rules["proto"].choices == ("TCP", "UDP")
    assert rules["password"].ignore
    assert rules["ports"].items is not None and rules["ports"].items.type == "port_range"
    assert rules["src"].fields["net"].type == "cidr"
    assert not rules["desc"].has_default


def test_rule_from_model_field_spec() -> None:
    from vnf_operator.core.model import FieldSpec

    spec = FieldSpec.model_validate(
        {
            "type": "portRange",
            "caseInsensitive": True,
            "deviceValues": {"any": "0-65535"},
            "anyValues": ["all"],
        }
    )
    rule = FieldRule.from_spec(spec)
    assert rule.type == "port_range"
    assert rule.case_insensitive
    assert normalize_value("any", rule) == "0-65535"
    assert normalize_value("ALL", rule) == ANY


# --------------------------------------------------------------------------- properties

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["10.0.0.1", "10.0.0.1/32", "10.1.2.3/8", "::1", "80-90", "80:90", "true", "0", "any", "1500"]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def _rules() -> st.SearchStrategy[FieldRule]:
    scalar = st.builds(
        FieldRule,
        type=st.sampled_from(sorted(FIELD_TYPES - {"list", "object"})),
        case_insensitive=st.booleans(),
        network=st.booleans(),
        any_values=st.sampled_from([(), ("any", "all")]),
        choices=st.sampled_from([(), ("TCP", "UDP")]),
        value_map=st.sampled_from([{}, {"yes": True, "no": False}, {"any": "0.0.0.0/0"}]),
    )
    return st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.builds(FieldRule, type=st.just("list"), items=st.none() | inner, unordered=st.booleans()),
            st.builds(
                FieldRule,
                type=st.just("object"),
                fields=st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
            ),
        ),
        max_leaves=4,
    )


@settings(max_examples=300, deadline=None)
@given(value=json_values, rule=_rules())
def test_normalize_value_never_raises_and_is_idempotent(value: Any, rule: FieldRule) -> None:
    once = normalize_value(value, rule)
    assert normalize_value(once, rule) == once or once != once  # NaN is the only value unequal to itself


@settings(max_examples=200, deadline=None)
@given(
    item=st.dictionaries(st.sampled_from(["a", "b", "c", "d", "x.y"]), json_values, max_size=5),
    rules=st.dictionaries(st.sampled_from(["a", "b", "c", "x.y", "d.e"]), _rules(), max_size=4),
    keep_unknown=st.booleans(),
)
def test_normalize_item_never_raises_and_is_idempotent(
    item: dict[str, Any], rules: dict[str, FieldRule], keep_unknown: bool
) -> None:
    once = normalize_item(item, rules, keep_unknown=keep_unknown)
    twice = normalize_item(once, rules, keep_unknown=keep_unknown)
    assert repr(twice) == repr(once)
    if not keep_unknown:
        assert set(once) <= set(rules) | {"x", "d"}
