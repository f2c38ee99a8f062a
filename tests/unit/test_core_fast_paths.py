"""The per-reconcile fast paths give exactly what the general code gives.

Simple JSONPaths are walked without jsonpath-ng's match objects, item keys normalise only the key
fields, valid items skip jsonschema, field rules of a loaded dictionary are built once, templates
of one call share their wrapped context, and the engine does not validate an unchanged spec again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf_operator.core import diff, itemschema, normalize
from vnf_operator.core.diff import ComparisonRules, item_key
from vnf_operator.core.loader import load_provider_file
from vnf_operator.core.model import FieldSpec, Service
from vnf_operator.core.normalize import FieldRule, normalize_value
from vnf_operator.core.parse import _find, _simple_steps, compile_jsonpath
from vnf_operator.core.templating import Kind, compile_template, render, scoped_context
from vnf_operator.engine import appliance
from vnf_operator.engine.sync import comparison_rules

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OPN = load_provider_file(ROOT / "providers" / "opnsense.yaml").dictionary
RULES = OPN.services["firewall_rules"]

# --------------------------------------------------------------------------- JSONPath

json_data = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "a", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "rows", "id"]), inner, max_size=3)
    ),
    max_leaves=12,
)
EXPRESSIONS = [
    "$",
    "a",
    "$.a",
    "$.a.b",
    "$.rows[*]",
    "$.rows[*].a",
    "$.rows.*",
    "$.*",
    "$.*.*",
    "$.a,b",
    "$['a']",
    "rows[*].id",
    "$.rows[0]",
    "$..a",
    "$.rows[?(@.a == 1)]",
    "$.rows[1:]",
]


def test_simple_paths_are_recognised_and_the_rest_left_to_jsonpath_ng() -> None:
    assert _simple_steps("$.rows[*]") == (("rows",), None)
    assert _simple_steps("uuid") == (("uuid",),)
    assert _simple_steps("$") == ()
    for expr in ("$.rows[0]", "$..a", "$.rows[?(@.a == 1)]", "$.rows[1:]"):
        assert _simple_steps(expr) is None


@settings(max_examples=300)
@given(data=json_data, expr=st.sampled_from(EXPRESSIONS))
def test_find_matches_jsonpath_ng(data: Any, expr: str) -> None:
    expected = [m.value for m in compile_jsonpath(expr).find(data)]
    assert _find(expr, data, "w") == expected


# --------------------------------------------------------------------------- keys

key_values = st.one_of(
    st.none(),
    st.sampled_from(["", " A ", "a", "any", "1", "0", "yes", "10.0.0.1/8", "x.y"]),
    st.integers(-1, 2),
    st.booleans(),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.dictionaries(st.sampled_from(["n", "m"]), st.sampled_from(["a", "1"]), max_size=2),
)
key_rules = st.one_of(
    st.none(),
    st.builds(
        FieldRule,
        type=st.sampled_from(["string", "integer", "boolean", "cidr", "enum", "list", "object"]),
        default=st.sampled_from([normalize.NO_DEFAULT, "dflt", 0, None]),
        case_insensitive=st.booleans(),
        ignore=st.booleans(),
        value_map=st.sampled_from([{}, {"A": "mapped", "a": "other"}, {"1": True}]),
        any_values=st.sampled_from([(), ("any",), ("ANY", "*")]),
        choices=st.sampled_from([(), ("A", "b")]),
    ),
)


@settings(max_examples=300)
@given(
    items=st.lists(st.dictionaries(st.sampled_from(["k", "j", "x", "k.n"]), key_values, max_size=4)),
    rule_k=key_rules,
    rule_j=key_rules,
    dotted=st.booleans(),
    keys=st.sampled_from([("k",), ("k", "j"), ("k.n",)]),
)
def test_item_key_is_the_key_of_the_fully_normalised_item(
    items: list[dict[str, Any]],
    rule_k: FieldRule | None,
    rule_j: FieldRule | None,
    dotted: bool,
    keys: tuple[str, ...],
) -> None:
    field_rules = {n: r for n, r in (("k", rule_k), ("j", rule_j)) if r is not None}
    if dotted:
        field_rules["k.n"] = FieldRule(case_insensitive=True)
    rules = ComparisonRules(key_fields=keys, field_rules=field_rules)
    for item in items:
        full = diff._extract_key(diff._normalized_full(item, rules), rules)
        assert diff._fast_key(item, rules) == full
        assert item_key(item, rules) == full[0]


def test_dotted_keys_and_rules_below_a_key_take_the_full_path() -> None:
    assert ComparisonRules(key_fields=("a.b",))._key_rules is None
    assert ComparisonRules(key_fields=("a",), field_rules={"a.b": FieldRule()})._key_rules is None
    assert ComparisonRules(key_fields=("a",), field_rules={"b.a": FieldRule()})._key_rules is not None


# --------------------------------------------------------------------------- field rules


def test_rules_of_a_loaded_dictionary_are_built_once() -> None:
    spec = RULES.fields["protocol"]
    first = FieldRule.from_spec(spec)
    assert FieldRule.from_spec(spec) is first
    assert first == normalize._build_rule(spec.model_dump(by_alias=False))
    a = comparison_rules(RULES, "firewall_rules")
    b = comparison_rules(RULES, "firewall_rules")
    assert a == b and all(a.field_rules[n] is b.field_rules[n] for n in a.field_rules)


def test_plain_mapping_specs_are_not_cached() -> None:
    spec = {"type": "string", "caseInsensitive": True}
    rule = FieldRule.from_spec(spec)
    spec["caseInsensitive"] = False  # a mapping may change: its rule is built again
    assert FieldRule.from_spec(spec) != rule


def test_case_folded_value_map_and_choices_keep_the_first_match() -> None:
    rule = FieldRule(case_insensitive=True, value_map={"On": "first", "ON": "second"})
    assert normalize_value("on", rule) == "first"
    assert normalize_value(" ON ", rule) == "second"  # an exact (stripped) spelling wins over folding
    enum = FieldRule(type="enum", choices=("TCP", "tcp"))
    assert normalize_value(" tcp ", enum) == "TCP"
    anyword = FieldRule(type="cidr", any_values=("Any",))
    assert normalize_value(" ANY ", anyword) == normalize.ANY


def test_address_coercion_is_cached_but_invalid_values_stay_as_they_are() -> None:
    cidr = FieldRule(type="cidr", network=True)
    assert normalize_value("10.1.2.3/8", cidr) == "10.0.0.0/8"
    assert normalize_value("10.1.2.3/8", cidr) == "10.0.0.0/8"
    assert normalize_value("not-an-address", cidr) == "not-an-address"
    assert normalize_value("10.0.0.1", FieldRule(type="ipv6")) == "10.0.0.1"
    assert normalize_value("10.0.0.1/32", FieldRule(type="ip")) == "10.0.0.1"


# --------------------------------------------------------------------------- validation

NESTED = Service.model_validate(
    {
        "fields": {
            "name": {"required": True, "pattern": "^[a-z]+$"},
            "port": {"type": "port"},
            "tags": {"type": "list", "items": {"type": "string"}, "minLength": 1, "maxLength": 2},
            "peer": {"type": "object", "fields": {"ip": {"type": "ipv4", "required": True}}},
            "extra": {"type": "object"},
            "ranges": {"type": "list", "items": {"type": "object", "fields": {"lo": {"type": "integer"}}}},
        }
    }
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(0, 70000),
    st.sampled_from(["abc", "ABC", "10.0.0.1", "x", "80"]),
    st.lists(st.sampled_from(["a", 1, {"lo": 1}, {"lo": "x"}, {"hi": 1}]), max_size=3),
    st.dictionaries(st.sampled_from(["ip", "lo", "z"]), st.sampled_from(["10.0.0.1", "bad", 3]), max_size=2),
)


@settings(max_examples=400)
@given(
    item=st.dictionaries(
        st.sampled_from(["name", "port", "tags", "peer", "extra", "ranges", "unknown"]), values, max_size=5
    )
)
def test_items_that_conform_have_no_jsonschema_problems(item: dict[str, Any]) -> None:
    validator = itemschema._compile(NESTED.fields)
    problems = itemschema._problems(validator, item, "w")
    assert itemschema._conforms(NESTED.fields, item) == (not problems)


def test_type_problems_show_the_value_as_given() -> None:
    assert itemschema.type_problem(FieldSpec(type="portRange").type, 70000) == (
        "70000 is not a valid port or port range (80, 80-90)"
    )
    assert itemschema.type_problem(FieldSpec(type="cidr").type, "10.0.0.1") == (
        '"10.0.0.1" is not a valid CIDR prefix (address/length)'
    )


# --------------------------------------------------------------------------- templating


def test_a_scoped_context_renders_like_the_plain_one() -> None:
    context = {
        "item": {"name": "a", "ports": [1, 2], "nested": {"x": "y"}},
        "appliance": {"name": "fw"},
        "templates": {"greet": "hi {{ item.name }}"},
    }
    sources = [
        ("{{ item.ports }}", Kind.JSON),
        ("{{ item.nested.x }}-{{ appliance.name }}", Kind.TEXT),
        ("{{ templates.greet }}", Kind.TEXT),
        ("{{ item.ports[1] }}", Kind.JSON),
        ("{{ omit }}", Kind.JSON),
        ("{{ range(2) | list }}", Kind.JSON),  # the environment's globals (flattened per template)
        ("{% for n in range(2) %}{{ n }}{% endfor %}", Kind.TEXT),
    ]
    scoped = scoped_context(context)
    assert render(compile_template(sources[-2][0], Kind.JSON, where="w"), context, where="w") == [0, 1]
    for source, kind in sources:
        ct = compile_template(source, kind, where="w")
        assert render(ct, scoped, where="w") == render(ct, context, where="w")
    with pytest.raises(Exception, match=r"item\.nested.*missing"):
        render(compile_template("{{ item.nested.missing }}", Kind.TEXT, where="w"), scoped, where="w")


# --------------------------------------------------------------------------- the engine's validation cache

SPEC = {"firewall_rules": {"items": [{"description": "a", "interface": "lan"}]}}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = itemschema.validate_items

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(appliance, "validate_items", counting)
    return calls


def test_an_unchanged_spec_is_validated_once(counted: list[int]) -> None:
    seen = appliance.ValidSpecs()
    first = appliance._validate(OPN, SPEC, "opn", seen=seen, key=("uid-1", "h1"))
    again = appliance._validate(OPN, SPEC, "opn", seen=seen, key=("uid-1", "h1"))
    assert len(counted) == 1
    assert again == first == appliance._validate(OPN, SPEC, "opn")
    assert again[0]["firewall_rules"][0]["action"] == "pass"  # defaults applied on a hit too


def test_a_changed_spec_another_dictionary_or_appliance_validates_again(counted: list[int]) -> None:
    seen = appliance.ValidSpecs()
    appliance._validate(OPN, SPEC, "opn", seen=seen, key=("uid-1", "h1"))
    appliance._validate(OPN, SPEC, "opn", seen=seen, key=("uid-1", "h2"))  # new generation, new hash
    other = OPN.model_copy()
    appliance._validate(other, SPEC, "opn", seen=seen, key=("uid-1", "h2"))
    appliance._validate(other, SPEC, "opn", seen=seen, key=("uid-2", "h2"))
    appliance._validate(other, SPEC, "opn2", seen=seen, key=("uid-2", "h2"))
    appliance._validate(other, SPEC, "opn", seen=seen, key=("", "h2"))  # no uid: no cache
    assert len(counted) == 6


def test_invalid_specs_are_not_remembered(counted: list[int]) -> None:
    seen = appliance.ValidSpecs()
    bad = {"firewall_rules": {"items": [{"description": "a"}]}}
    for _ in range(2):
        _, problems = appliance._validate(OPN, bad, "opn", seen=seen, key=("uid-1", "h1"))
        assert problems
    assert len(counted) == 2


def test_cached_results_are_fresh_copies() -> None:
    seen = appliance.ValidSpecs()
    spec = {"firewall_rules": {"items": [{"description": "a", "interface": "lan"}]}}
    first, _ = appliance._validate(OPN, spec, "opn", seen=seen, key=("uid-1", "h1"))
    first["firewall_rules"][0]["action"] = "block"
    first["firewall_rules"].append({"description": "b"})
    again, _ = appliance._validate(OPN, spec, "opn", seen=seen, key=("uid-1", "h1"))
    assert again == appliance._validate(OPN, spec, "opn")[0]
    assert again["firewall_rules"][0]["action"] == "pass" and len(again["firewall_rules"]) == 1
    assert spec["firewall_rules"]["items"] == [{"description": "a", "interface": "lan"}]


def test_the_cache_is_bounded_least_recently_used_first(counted: list[int]) -> None:
    seen = appliance.ValidSpecs(size=2)
    for uid in ("a", "b", "a", "c"):  # "a" used again, so "b" goes when "c" comes
        appliance._validate(OPN, SPEC, "opn", seen=seen, key=(uid, "h"))
    assert len(counted) == 3
    appliance._validate(OPN, SPEC, "opn", seen=seen, key=("a", "h"))
    assert len(counted) == 3
    appliance._validate(OPN, SPEC, "opn", seen=seen, key=("b", "h"))
    assert len(counted) == 4
