"""Parsing device answers: goldens for both providers, device errors, expectations, odd bodies.

Regenerate the expected outputs with `VNF_UPDATE_GOLDEN=1 pytest tests/unit/test_parse_response.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vnf_operator.core.errors import ParseError, VnfError
from vnf_operator.core.loader import LoadedProvider, load_provider_file
from vnf_operator.core.model import Expect, Pagination, Response
from vnf_operator.core.parse import Parsed, check_expect, first_page, next_page, parse_response
from vnf_operator.core.render import find_operation
from vnf_operator.core.rendered import RawResponse

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "parse"
OPN = load_provider_file(ROOT / "providers" / "opnsense.yaml")
CISCO = load_provider_file(ROOT / "providers" / "cisco-iosxe.yaml")
CISCO_ERRORS = tuple(CISCO.dictionary.connections["cli"].error_patterns)  # type: ignore[union-attr]


def _parse(lp: LoadedProvider, service: str, op: str, captured: str, status: int | None = 200) -> Parsed:
    operation, where = find_operation(lp, service, op)
    text = (GOLDEN / captured).read_text(encoding="utf-8")
    cli = operation.cli is not None
    raw = RawResponse(status=None if cli else status, text=text)
    return parse_response(
        operation.response,
        raw,
        where=f"{where}.response",
        operation_kind=op,
        error_patterns=CISCO_ERRORS if cli else (),
    )


def _result(p: Parsed) -> dict[str, Any]:
    return {
        "ok": p.ok,
        "error": p.error,
        "id": p.id,
        "absent": p.absent,
        "captured": p.captured,
        "items": p.items,
    }


def _check(name: str, p: Parsed) -> None:
    path = GOLDEN / f"{name}.expected.json"
    text = json.dumps(_result(p), indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("VNF_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path.name}; run with VNF_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


GOLDENS = {
    "opnsense-searchRule": (OPN, "firewall_rules", "list", "opnsense-searchRule.response.json"),
    "opnsense-addRule-saved": (OPN, "firewall_rules", "create", "opnsense-addRule-saved.response.json"),
    "opnsense-addRule-failed": (OPN, "firewall_rules", "create", "opnsense-addRule-failed.response.json"),
    "opnsense-delRule-notfound": (OPN, "firewall_rules", "delete", "opnsense-delRule-notfound.response.json"),
    "cisco-show-ip-bgp-summary": (
        CISCO,
        "monitoring",
        "show_bgp_summary",
        "cisco-show-ip-bgp-summary.response.txt",
    ),
    "cisco-interfaces-list": (CISCO, "interfaces", "list", "cisco-show-running-interfaces.response.txt"),
    "cisco-acl-list": (CISCO, "acl", "list", "cisco-show-running-acl.response.txt"),
    "cisco-config-error": (CISCO, "static_routes", "create", "cisco-config-error.response.txt"),
    "cisco-restconf-interfaces": (
        CISCO,
        "monitoring",
        "get_interfaces",
        "cisco-restconf-interfaces.response.json",
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_parse_matches_golden(name: str) -> None:
    lp, service, op, captured = GOLDENS[name]
    _check(name, _parse(lp, service, op, captured))


def test_opnsense_search_rows_are_items_with_the_mapped_fields() -> None:
    p = _parse(OPN, "firewall_rules", "list", "opnsense-searchRule.response.json")
    assert p.ok and len(p.items) == 3
    assert p.items[0]["uuid"] == "123e4567-e89b-12d3-a456-426614174000"
    assert all(not k.startswith("%") for item in p.items for k in item)


def test_opnsense_http_200_with_validations_is_a_failure_with_the_device_text() -> None:
    p = _parse(OPN, "firewall_rules", "create", "opnsense-addRule-failed.response.json")
    assert not p.ok
    assert p.error == (
        "rule.destination_port: Please specify a valid port number or alias.; "
        "rule.interface: Interface is required.; Option not in list."
    )
    assert p.items == [] and p.id is None


def test_opnsense_create_returns_the_new_uuid() -> None:
    p = _parse(OPN, "firewall_rules", "create", "opnsense-addRule-saved.response.json")
    assert p.ok and p.id == "9f0c1b6e-2d1a-4c55-8a0e-3b8f6d2a7c11"


def test_opnsense_delete_of_a_missing_rule_is_absent() -> None:
    p = _parse(OPN, "firewall_rules", "delete", "opnsense-delRule-notfound.response.json")
    assert not p.ok and p.absent


def test_opnsense_http_errors_keep_the_device_message() -> None:
    op, _ = find_operation(OPN, "firewall_rules", "create")
    p = parse_response(
        op.response,
        RawResponse(status=500, text='{"errorMessage":"Rule in use","errorTitle":"Error"}'),
        where="w",
    )
    assert not p.ok and p.error == "Rule in use"
    html = parse_response(op.response, RawResponse(status=502, text="<html>Bad gateway</html>"), where="w")
    assert not html.ok and html.error.startswith("HTTP status 502")


def test_bgp_summary_via_ntc_templates() -> None:
    p = _parse(CISCO, "monitoring", "show_bgp_summary", "cisco-show-ip-bgp-summary.response.txt")
    assert p.ok
    assert [i["bgp_neighbor"] for i in p.items] == ["10.0.0.2", "10.0.0.6", "192.0.2.77"]
    assert p.items[1]["state_or_prefixes_received"] == "Idle"
    assert {i["local_as"] for i in p.items} == {"65001"}


def test_cisco_lists_compute_cidrs_and_types() -> None:
    ifaces = _parse(CISCO, "interfaces", "list", "cisco-show-running-interfaces.response.txt").items
    assert ifaces[1] == {
        "name": "GigabitEthernet2",
        "description": "uplink to core",
        "shutdown": "",
        "ipv4": "10.0.0.1/30",
    }
    assert "ipv4" not in ifaces[2] and ifaces[2]["shutdown"] == "shutdown"
    acl = _parse(CISCO, "acl", "list", "cisco-show-running-acl.response.txt").items
    assert acl[0]["destination"] == "10.1.1.10/32" and acl[0]["sequence"] == 10
    assert acl[2]["source"] == "10.66.0.0/16"


def test_cli_error_pattern_fails_the_operation() -> None:
    p = _parse(CISCO, "static_routes", "create", "cisco-config-error.response.txt")
    assert not p.ok and p.error == "% Invalid input detected at '^' marker."


def test_restconf_error_message_is_extracted() -> None:
    p = _parse(CISCO, "monitoring", "get_interfaces", "cisco-restconf-error.response.json", status=404)
    assert not p.ok and p.error == "uri keypath not found"


def test_successful_answer_that_does_not_decode_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as info:
        parse_response(Response(), RawResponse(status=200, text="{not json"), where="spec.x.response")
    assert info.value.where == "spec.x.response" and "not valid JSON" in str(info.value)


def test_list_answer_that_is_not_a_list_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"set `response\.items`"):
        parse_response(Response(), RawResponse(status=200, text='{"a": 1}'), where="w", operation_kind="list")
    assert (
        parse_response(Response(), RawResponse(status=204, text=""), where="w", operation_kind="list").items
        == []
    )


def test_exec_exit_status_fails() -> None:
    p = parse_response(Response(format="cli"), RawResponse(text="boom", exit_status=2), where="w")
    assert not p.ok and "exit status 2" in p.error


def test_xml_answers_become_data() -> None:
    spec = Response(format="xml", items="$.rules.rule[*]", fields={"name": "name", "id": "@id"})
    text = '<rules><rule id="1"><name>a</name></rule><rule id="2"><name>b</name></rule></rules>'
    p = parse_response(spec, RawResponse(status=200, text=text), where="w", operation_kind="list")
    assert p.items == [{"name": "a", "id": "1"}, {"name": "b", "id": "2"}]
    with pytest.raises(ParseError, match="DOCTYPE"):
        parse_response(
            spec, RawResponse(status=200, text='<!DOCTYPE x [<!ENTITY a "b">]><rules/>'), where="w"
        )


def test_capture_and_regex_values_from_text() -> None:
    spec = Response(
        format="text", capture={"serial": r"Processor board ID (\S+)", "ver": r"Version (?P<ver>[\d.]+)"}
    )
    p = parse_response(
        spec, RawResponse(text="Cisco IOS XE Software, Version 17.9.4\nProcessor board ID 9ABC\n"), where="w"
    )
    assert p.captured == {"serial": "9ABC", "ver": "17.9.4"}


# ----------------------------------------------------------------------------- expectations


@pytest.mark.parametrize(
    ("expect", "raw", "ok", "why"),
    [
        (Expect(), RawResponse(status=204), True, ""),
        (Expect(), RawResponse(status=401, text="{}"), False, "HTTP status 401, expected 2xx"),
        (Expect(status=[200, 404]), RawResponse(status=404), True, ""),
        (Expect(jsonpath="$.status", equals="ok"), RawResponse(status=200, text='{"status":"ok"}'), True, ""),
        (
            Expect(jsonpath="$.status", equals="ok"),
            RawResponse(status=200, text='{"status":"bad"}'),
            False,
            'is "bad"',
        ),
        (Expect(jsonpath="$.n", equals=3), RawResponse(status=200, text='{"n":"3"}'), True, ""),
        (
            Expect(jsonpath="$.v", one_of=["a", "b"]),
            RawResponse(status=200, text='{"v":"c"}'),
            False,
            "one of",
        ),
        (Expect(jsonpath="$.rows"), RawResponse(status=200, text='{"x":1}'), False, "matched nothing"),
        (Expect(jsonpath="$.rows"), RawResponse(status=200, text="<html>"), False, "not JSON"),
        (Expect(matches="IOS[ -]XE"), RawResponse(text="Cisco IOS XE Software"), True, ""),
        (Expect(matches="ready"), RawResponse(text="booting"), False, "does not match"),
        (Expect(not_matches="(?i)error"), RawResponse(text="ERROR: disk"), False, "matches"),
        (Expect(jsonpath="$.v", matches="^1\\."), RawResponse(status=200, text='{"v":"1.2"}'), True, ""),
    ],
)
def test_check_expect(expect: Expect, raw: RawResponse, ok: bool, why: str) -> None:
    got_ok, got_why = check_expect(expect, raw)
    assert got_ok is ok and why in got_why


def test_pagination() -> None:
    p = Pagination(page_param="current", size_param="rowCount", size=2)
    assert first_page(p) == {"current": "1", "rowCount": "2"}
    nxt = next_page(p, pages_read=1, items_on_page=2, data=None)
    assert nxt is not None and nxt.query == {"current": "2", "rowCount": "2"}
    assert next_page(p, pages_read=2, items_on_page=1, data=None) is None
    tok = Pagination(next_jsonpath="$.next", next_param="cursor")
    assert next_page(tok, pages_read=1, items_on_page=5, data={"next": "abc"}).query == {"cursor": "abc"}  # type: ignore[union-attr]
    assert next_page(tok, pages_read=1, items_on_page=5, data={"next": None}) is None
    capped = Pagination(page_param="p", size=1, max_pages=3)
    assert next_page(capped, pages_read=3, items_on_page=1, data=None) is None


# ----------------------------------------------------------------------------- properties

SPECS: list[tuple[str, Response, bool]] = []
for lp in (OPN, CISCO):
    for sname, svc in lp.dictionary.services.items():
        for oname, op in [*svc.operations.items(), *([("commit", svc.commit)] if svc.commit else [])]:
            SPECS.append((f"{lp.name}.{sname}.{oname}", op.response, op.cli is not None))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    st.builds(
        lambda rows: json.dumps({"rows": rows, "result": "saved", "uuid": "u"}),
        st.lists(json_values, max_size=3),
    ),
    st.sampled_from([(GOLDEN / n).read_text() for n in sorted(p.name for p in GOLDEN.glob("*.response.*"))]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=len(SPECS) - 1),
    body=bodies,
    status=st.sampled_from([200, 201, 204, 400, 404, 500]),
)
def test_any_body_gives_a_result_or_a_parse_error(index: int, body: str, status: int) -> None:
    name, spec, cli = SPECS[index]
    raw = RawResponse(status=None if cli else status, text=body)
    try:
        p = parse_response(
            spec, raw, where=name, operation_kind=name.rsplit(".", 1)[-1], error_patterns=CISCO_ERRORS
        )
    except ParseError:
        return
    assert isinstance(p.ok, bool)
    assert all(isinstance(i, dict) for i in p.items)


@given(expect_text=st.text(max_size=40), body=st.text(max_size=100), status=st.none() | st.integers(100, 599))
def test_check_expect_never_raises(expect_text: str, body: str, status: int | None) -> None:
    for expect in (
        Expect(jsonpath=expect_text or "$"),
        Expect(matches=expect_text),
        Expect(not_matches=expect_text),
    ):
        try:
            ok, why = check_expect(expect, RawResponse(status=status, text=body))
        except VnfError:  # pragma: no cover - check_expect reports problems as (False, why)
            pytest.fail("check_expect raised")
        assert isinstance(ok, bool) and isinstance(why, str)
