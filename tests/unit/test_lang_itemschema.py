"""Validating desired items against a service's data schema: all errors at once, readable, defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnf_operator.core.errors import ItemValidationError
from vnf_operator.core.itemschema import (
    apply_defaults,
    item_json_schema,
    validate_item,
    validate_items,
    validate_params,
    value_problem,
)
from vnf_operator.core.loader import load_provider_file
from vnf_operator.core.model import FieldSpec, FieldType, Operation, Service

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OPN = load_provider_file(ROOT / "providers" / "opnsense.yaml").dictionary
RULES = OPN.services["firewall_rules"]
WHERE = "spec.services.firewall_rules.items"


def _problems(items: list[Any], service: Service = RULES) -> list[str]:
    with pytest.raises(ItemValidationError) as info:
        validate_items(service, items, where=WHERE)
    return [str(p) for p in info.value.problems]


def test_enum_message_names_the_item_and_the_choices() -> None:
    ok = {"description": "a", "interface": "lan"}
    got = _problems([ok, {**ok, "description": "b"}, {**ok, "description": "c", "action": "allow"}])
    assert got == [f'{WHERE}[2].action: "allow" is not one of pass, block, reject']


def test_every_problem_is_reported_at_once() -> None:
    got = _problems(
        [
            {
                "interface": "LAN!",
                "source_net": "10.0.0.0/33",
                "destination_port": "90-80",
                "log": "yes",
                "bogus": 1,
            },
            "not an object",
        ]
    )
    assert f"{WHERE}[0].description: is required" in got
    assert any(p.startswith(f'{WHERE}[0].interface: "LAN!" does not match') for p in got)
    assert (
        f'{WHERE}[0].source_net: "10.0.0.0/33" is not a valid CIDR prefix (address/length) (or "any")' in got
    )
    assert (
        f'{WHERE}[0].destination_port: "90-80" is not a valid port or port range (80, 80-90) (or "")' in got
    )
    assert f'{WHERE}[0].log: "yes" is not a boolean (true or false)' in got
    assert any(p.startswith(f"{WHERE}[0].bogus: unknown field (known: description,") for p in got)
    assert f'{WHERE}[1]: "not an object" is not an object (a mapping of field names to values)' in got


def test_defaults_are_applied() -> None:
    [item] = validate_items(RULES, [{"description": "a", "interface": "lan"}], where=WHERE)
    assert item["action"] == "pass" and item["enabled"] is True and item["source_net"] == "any"
    assert "sequence" not in item


def test_duplicate_natural_keys_are_errors() -> None:
    got = _problems([{"description": "a", "interface": "lan"}, {"description": "a", "interface": "wan"}])
    assert got == [f'{WHERE}[1]: duplicate key (description="a"), same as item 0']


def test_any_values_are_accepted() -> None:
    validate_item(
        RULES, {"description": "a", "interface": "lan", "source_net": "any", "source_port": ""}, where="i"
    )


@pytest.mark.parametrize(
    ("ftype", "good", "bad"),
    [
        (FieldType.IPV4, "192.0.2.1", "192.0.2.256"),
        (FieldType.IPV6, "2001:db8::1", "2001:db8::g"),
        (FieldType.IP, "2001:db8::1", "host"),
        (FieldType.CIDR, "10.0.0.0/8", "10.0.0.0"),
        (FieldType.PORT, 443, 0),
        (FieldType.PORT, "8080", "http"),
        (FieldType.PORT_RANGE, "1000:2000", "2000-1000"),
        (FieldType.HOSTNAME, "fw-1.example.org", "-bad-.org"),
        (FieldType.INTEGER, 3, True),
        (FieldType.NUMBER, 2.5, "2.5"),
        (FieldType.BOOLEAN, False, 0),
        (FieldType.STRING, "x", 1),
    ],
)
def test_field_types(ftype: FieldType, good: Any, bad: Any) -> None:
    spec = FieldSpec(type=ftype)
    assert value_problem(spec, good) is None
    assert value_problem(spec, bad) is not None


def test_nested_objects_and_lists() -> None:
    svc = Service(
        fields={
            "name": FieldSpec(required=True),
            "members": FieldSpec(
                type=FieldType.LIST,
                min_length=1,
                items=FieldSpec(
                    type=FieldType.OBJECT,
                    fields={
                        "ip": FieldSpec(type=FieldType.IP, required=True),
                        "weight": FieldSpec(type=FieldType.INTEGER, default=1),
                    },
                ),
            ),
        }
    )
    [item] = validate_items(svc, [{"name": "pool", "members": [{"ip": "10.0.0.1"}]}], where="w")
    assert item["members"] == [{"ip": "10.0.0.1", "weight": 1}]
    with pytest.raises(ItemValidationError) as info:
        validate_items(
            svc,
            [{"name": "pool", "members": [{"ip": "x", "port": 1}]}, {"name": "p2", "members": []}],
            where="w",
        )
    got = [str(p) for p in info.value.problems]
    assert 'w[0].members[0].ip: "x" is not a valid IP address' in got
    assert any(g.startswith("w[0].members[0].port: unknown field") for g in got)
    assert "w[1].members: needs at least 1 element(s)" in got


def test_custom_operation_parameters() -> None:
    op = OPN.services["firewall_rules"].operations["get"]
    assert validate_params(op, {"uuid": "123e4567-e89b-12d3-a456-426614174000"}, where="params")
    with pytest.raises(ItemValidationError, match=r"params\.uuid: is required"):
        validate_params(op, {}, where="params")
    assert validate_params(Operation.model_validate({"http": {"path": "/x"}}), None, where="p") == {}


def test_bounds_and_lengths() -> None:
    spec = FieldSpec(type=FieldType.INTEGER, minimum=1, maximum=10)
    assert value_problem(spec, 0) == "0 is less than the minimum 1"
    assert value_problem(spec, 11) == "11 is greater than the maximum 10"
    s = FieldSpec(min_length=2, max_length=3)
    assert value_problem(s, "a") == '"a" is shorter than 2 characters'
    assert value_problem(s, "abcd") == '"abcd" is longer than 3 characters'


def test_published_item_schema_is_standard_json_schema() -> None:
    schema = item_json_schema(RULES.fields)
    assert schema["required"] == ["description", "interface"]
    assert schema["properties"]["action"]["enum"] == ["pass", "block", "reject"]
    assert schema["properties"]["source_net"]["format"] == "cidr"


@given(
    st.dictionaries(
        st.sampled_from(["description", "interface", "action", "x", "log"]),
        st.none() | st.text(max_size=5) | st.integers() | st.booleans(),
    )
)
def test_validation_only_raises_item_validation_errors(item: dict[str, Any]) -> None:
    try:
        out = validate_item(RULES, item, where="i")
    except ItemValidationError as e:
        assert e.problems
    else:
        assert apply_defaults(RULES.fields, item) == out
