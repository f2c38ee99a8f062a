"""Golden renders: HTTP and CLI operations of both shipped providers, exactly, secrets masked.

Regenerate after an intended change with `VNF_UPDATE_GOLDEN=1 pytest tests/unit/test_render_golden.py`
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.itemschema import validate_item
from vnf_operator.core.loader import LoadedProvider, load_provider_file
from vnf_operator.core.render import (
    describe,
    display_masker,
    format_text,
    render_bootstrap_step,
    render_connection,
    render_operation,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "render"
SECRETS = {
    "api_key": "k3y-0123456789abcdef",
    "api_secret": "s3cr3t-abcdefghijklmnop",
    "bootstrap_api_key": "b00t-key-0123456789",
    "bootstrap_api_secret": "b00t-secret-abcdefgh",
    "root_password": "n3w-r00t-passw0rd",
    "username": "netadmin",
    "password": "Cisco-pa55word!",
}


def _provider(name: str) -> LoadedProvider:
    return load_provider_file(ROOT / "providers" / f"{name}.yaml")


def _ctx(**kw: Any) -> TemplateContext:
    return TemplateContext(
        appliance=ApplianceInfo(name="fw1", namespace="edge", host="192.0.2.1", ports={"api": 8443}),
        credentials=SECRETS,
        **kw,
    )


RULE = {
    "description": "vnf:edge/fw1 allow-ssh",
    "interface": "wan",
    "protocol": "TCP",
    "destination_net": "203.0.113.10/32",
    "destination_port": "22",
    "sequence": 30,
}
ACTUAL_RULE = {**RULE, "uuid": "123e4567-e89b-12d3-a456-426614174002"}

CASES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "opnsense-firewall-list": ("opnsense", "firewall_rules", "list", {}),
    "opnsense-firewall-create": ("opnsense", "firewall_rules", "create", {"item": RULE}),
    "opnsense-firewall-update": (
        "opnsense",
        "firewall_rules",
        "update",
        {"item": {**RULE, "log": True}, "actual": ACTUAL_RULE, "id": ACTUAL_RULE["uuid"]},
    ),
    "opnsense-firewall-delete": (
        "opnsense",
        "firewall_rules",
        "delete",
        {"actual": ACTUAL_RULE, "id": ACTUAL_RULE["uuid"]},
    ),
    "opnsense-firewall-move": (
        "opnsense",
        "firewall_rules",
        "move",
        {"id": ACTUAL_RULE["uuid"], "before_id": "123e4567-e89b-12d3-a456-426614174000"},
    ),
    "opnsense-firewall-commit": ("opnsense", "firewall_rules", "commit", {}),
    "opnsense-firewall-get": ("opnsense", "firewall_rules", "get", {"params": {"uuid": ACTUAL_RULE["uuid"]}}),
    "opnsense-static-routes-create": (
        "opnsense",
        "static_routes",
        "create",
        {"item": {"network": "10.20.0.0/16", "gateway": "WAN_GW", "descr": "vnf:edge/fw1 branch"}},
    ),
    "opnsense-source-nat-create": (
        "opnsense",
        "source_nat",
        "create",
        {"item": {"description": "vnf:edge/fw1 lan-out", "interface": "wan", "source_net": "10.0.0.0/24"}},
    ),
    "cisco-interfaces-create": (
        "cisco-iosxe",
        "interfaces",
        "create",
        {"item": {"name": "GigabitEthernet2", "description": "uplink to core", "ipv4": "10.0.0.1/30"}},
    ),
    "cisco-interfaces-delete": (
        "cisco-iosxe",
        "interfaces",
        "delete",
        {"actual": {"name": "Loopback10"}, "id": "Loopback10"},
    ),
    "cisco-static-routes-create": (
        "cisco-iosxe",
        "static_routes",
        "create",
        {"item": {"prefix": "10.20.0.0/16", "next_hop": "10.0.0.2", "distance": 20}},
    ),
    "cisco-static-routes-delete": (
        "cisco-iosxe",
        "static_routes",
        "delete",
        {"actual": {"prefix": "10.20.0.0/16", "next_hop": "10.0.0.2"}},
    ),
    "cisco-acl-create": (
        "cisco-iosxe",
        "acl",
        "create",
        {
            "item": {
                "acl_name": "WEB-IN",
                "sequence": 20,
                "action": "permit",
                "protocol": "tcp",
                "destination": "10.1.1.10/32",
                "destination_port": 443,
            }
        },
    ),
    "cisco-acl-update": (
        "cisco-iosxe",
        "acl",
        "update",
        {"item": {"acl_name": "WEB-IN", "sequence": 30, "action": "deny", "source": "10.66.0.0/16"}},
    ),
    "cisco-bgp-neighbors-create": (
        "cisco-iosxe",
        "bgp_neighbors",
        "create",
        {"item": {"asn": 65001, "neighbor_ip": "10.0.0.2", "remote_as": 65002}},
    ),
    "cisco-bgp-neighbors-commit": ("cisco-iosxe", "bgp_neighbors", "commit", {}),
    "cisco-monitoring-show-bgp-summary": ("cisco-iosxe", "monitoring", "show_bgp_summary", {}),
    "cisco-monitoring-get-interfaces": ("cisco-iosxe", "monitoring", "get_interfaces", {}),
    "cisco-monitoring-get-interface": (
        "cisco-iosxe",
        "monitoring",
        "get_interface",
        {"params": {"name": "GigabitEthernet1/0/1"}},
    ),
}


def _render(name: str) -> tuple[str, dict[str, Any]]:
    provider, service, op, kw = CASES[name]
    lp = _provider(provider)
    if "item" in kw:
        kw = {**kw, "item": validate_item(lp.dictionary.services[service], kw["item"], where="item")}
    ctx = _ctx(**kw)
    rendered = render_operation(lp, service, op, ctx)
    conn = render_connection(lp, rendered.connection, ctx)
    data = describe(rendered, conn, display_masker(ctx, [conn]))
    return format_text(data) + "\n", data


def _check(path: Path, text: str) -> None:
    if os.environ.get("VNF_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path.name}; run with VNF_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden(name: str) -> None:
    text, data = _render(name)
    _check(GOLDEN / f"{name}.txt", text)
    dumped = json.dumps(data)
    for secret in SECRETS.values():
        assert secret not in text and secret not in dumped


def test_bootstrap_step_golden() -> None:
    lp = _provider("opnsense")
    ctx = _ctx(steps={"find_user": {"captured": {"user_uuid": "0c4a7e0e-1111-4222-8333-944455556666"}}})
    op = render_bootstrap_step(lp, "set_root_password", ctx)
    conn = render_connection(lp, op.connection, ctx)
    text = format_text(describe(op, conn, display_masker(ctx, [conn]))) + "\n"
    _check(GOLDEN / "opnsense-bootstrap-set-root-password.txt", text)
    assert SECRETS["root_password"] not in text and SECRETS["bootstrap_api_key"] not in text


def test_every_golden_file_has_a_case() -> None:
    known = {f"{n}.txt" for n in CASES} | {"opnsense-bootstrap-set-root-password.txt"}
    assert {p.name for p in GOLDEN.glob("*.txt")} <= known


def test_basic_auth_header_is_masked_as_a_whole() -> None:
    _, data = _render("opnsense-firewall-list")
    assert data["headers"]["Authorization"] == "Basic ******"
    assert data["url"] == "https://192.0.2.1:8443/api/firewall/filter/searchRule"
