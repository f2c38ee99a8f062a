"""Batch operations: the whole change set rendered into one request, with the single-item
snippets (`change.templates.NAME`) and, for CLI, the single-item lines (`change.commands`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.diff import ComparisonRules
from vnf_operator.core.errors import DeviceError, DictionaryError
from vnf_operator.core.loader import load_provider_file, load_provider_text
from vnf_operator.core.render import (
    BatchChange,
    batch_context,
    chunked,
    operation_references,
    render_batch,
    render_operation,
)
from vnf_operator.core.rendered import CliCommands, HttpRequest
from vnf_operator.engine.sync import batch_failure

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CTX = TemplateContext(appliance=ApplianceInfo(name="fw1", namespace="edge", host="192.0.2.1"))


def vyos_rule(number: int, port: str = "22") -> dict[str, Any]:
    item: dict[str, Any] = {
        "ruleset": "forward",
        "number": number,
        "action": "accept",
        "jump_target": "",
        "description": f"vnf:edge/fw1 rule {number}",
        "protocol": "tcp",
        "source_address": "",
        "source_port": "",
        "destination_address": "",
        "destination_port": port,
        "inbound_interface": "",
        "outbound_interface": "",
        "log": False,
        "disabled": False,
    }
    return item


def test_vyos_batch_is_one_configure_with_every_command_in_plan_order() -> None:
    lp = load_provider_file(ROOT / "providers/vyos.yaml")
    path10 = "firewall ipv4 forward filter rule 10"
    changes = [
        BatchChange("update", ("forward", "10"), item=vyos_rule(10, "2222"), actual={}, id=path10),
        BatchChange("delete", ("forward", "20"), actual={}, id="firewall ipv4 forward filter rule 20"),
        BatchChange("create", ("forward", "30"), item=vyos_rule(30)),
    ]
    req = render_batch(lp, "firewall_rules", "configure_batch", CTX, changes)
    assert isinstance(req, HttpRequest) and req.path == "/configure" and req.form is not None
    commands = json.loads(req.form["data"])
    assert commands[0] == {"op": "delete", "path": path10.split()}
    assert {"op": "set", "path": [*path10.split(), "destination", "port", "2222"]} in commands
    assert {"op": "delete", "path": ["firewall", "ipv4", "forward", "filter", "rule", "20"]} in commands
    rule30 = [c for c in commands if c["path"][:6] == ["firewall", "ipv4", "forward", "filter", "rule", "30"]]
    assert {"op": "set", "path": [*rule30[0]["path"][:6], "action", "accept"]} in rule30
    # The same commands as the single-item operations would send, one request instead of three.
    single = render_operation(lp, "firewall_rules", "create", CTX.for_item(vyos_rule(30)))
    assert isinstance(single, HttpRequest) and single.form is not None
    assert json.loads(single.form["data"]) == rule30


def test_iosxe_batch_is_the_single_operations_lines_in_one_session() -> None:
    lp = load_provider_file(ROOT / "providers/cisco-iosxe.yaml")
    new = {"prefix": "10.20.0.0/16", "next_hop": "192.0.2.254"}
    old = {"prefix": "10.30.0.0/16", "next_hop": "192.0.2.254"}
    changes = [
        BatchChange("delete", ("10.30.0.0/16", "192.0.2.254"), actual=old),
        BatchChange("create", ("10.20.0.0/16", "192.0.2.254"), item=new),
    ]
    req = render_batch(lp, "static_routes", "configure_batch", CTX, changes)
    assert isinstance(req, CliCommands) and req.config_mode
    assert req.commands == (
        "no ip route 10.30.0.0 255.255.0.0 192.0.2.254",
        "ip route 10.20.0.0 255.255.0.0 192.0.2.254",
    )


BATCHY = """
info: {name: Batchy, vendor: Test}
credentials: {token: {}}
connections:
  api: {type: https, auth: {type: bearer, token: "{{ credentials.token }}"}}
templates:
  name_of: "{{ item.name }}"
services:
  things:
    fields: {name: {required: true}}
    identity: {key: [name], id: name}
    batch: bulk
    operations:
      list: {http: {path: /things}, response: {items: "$[*]"}}
      create: {http: {method: POST, path: /things, body: {name: "{{ item.name }}"}}}
      update: {http: {method: PUT, path: "/things/{{ id }}", body: {name: "{{ item.name }}"}}}
      delete: {http: {method: DELETE, path: "/things/{{ id }}"}}
      bulk:
        http:
          method: POST
          path: "/bulk/{{ items[0].templates.name_of }}"
          body:
            create: "{{ creates | map(attribute='item') | map(attribute='name') | list }}"
            delete: "{{ deletes | map(attribute='id') | list }}"
            count: "{{ items | length }}"
"""


def test_http_batch_sees_the_change_set_and_snippet_values_stay_values() -> None:
    lp = load_provider_text(BATCHY)
    changes = [
        BatchChange("create", ("a/b",), item={"name": "a/b"}),
        BatchChange("create", ("c",), item={"name": "c"}),
        BatchChange("delete", ("d",), actual={"name": "d"}, id="d"),
    ]
    req = render_batch(lp, "things", "bulk", CTX, changes)
    assert isinstance(req, HttpRequest)
    assert req.json == {"create": ["a/b", "c"], "delete": ["d"], "count": 3}
    # A snippet rendered for one change is an ordinary value where it lands: one path segment.
    assert req.path == "/bulk/a%2Fb"


def test_batch_context_lists_changes_by_kind() -> None:
    lp = load_provider_text(BATCHY)
    changes = [
        BatchChange("update", ("u",), item={"name": "u"}, actual={"name": "u"}, id="u"),
        BatchChange("create", ("c",), item={"name": "c"}),
    ]
    ctx = batch_context(lp, "things", "bulk", CTX, changes)
    assert ctx.items is not None and [e["op"] for e in ctx.items] == ["update", "create"]
    assert ctx.creates is not None and [e["key"] for e in ctx.creates] == [["c"]]
    assert ctx.deletes == []
    assert ctx.items[0]["templates"]["name_of"] == "u"


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("    batchSize: 2\n", None, None),
        ("    batchSize: 0\n", "services.things.batchSize", "greater than or equal to 1"),
    ],
)
def test_batch_size_is_checked(extra: str, where: str | None, message: str | None) -> None:
    text = BATCHY.replace("    batch: bulk\n", "    batch: bulk\n" + extra)
    if where is None:
        assert load_provider_text(text).dictionary.services["things"].batch_size == 2
        return
    with pytest.raises(DictionaryError) as err:
        load_provider_text(text)
    assert where in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    ("declaration", "where", "message"),
    [
        ("    batchSize: 5\n", "services.things.batchSize", "needs `batch`"),
        ("    batch: create\n", "services.things.batch", "single-item operation"),
    ],
)
def test_batch_declarations_are_checked(declaration: str, where: str, message: str) -> None:
    with pytest.raises(DictionaryError) as err:
        load_provider_text(BATCHY.replace("    batch: bulk\n", declaration))
    assert where in str(err.value) and message in str(err.value)


def test_chunked() -> None:
    assert chunked([], 3) == []
    assert chunked([1, 2, 3], None) == [[1, 2, 3]]
    assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_operation_references_tell_whether_a_create_places_the_item() -> None:
    forti = load_provider_file(ROOT / "providers/fortigate.yaml")
    routeros = load_provider_file(ROOT / "providers/routeros.yaml")
    assert "before_id" not in operation_references(forti, "firewall_rules", "create")
    assert "before_id" in operation_references(routeros, "firewall_rules", "create")


def test_a_failed_batch_names_the_changes_the_device_names() -> None:
    rules = ComparisonRules(key_fields=("number",), collection="port_forwards")
    changes = [
        BatchChange("create", ("2",)),
        BatchChange("create", ("20",)),
        BatchChange("delete", ("200",)),
        BatchChange("delete", ("10.0.0.20",)),
    ]
    exc = DeviceError(
        "device rejected the operation",
        operation="port_forwards.configure_batch",
        device_message="Destination NAT configuration error in rule 20: ports need tcp or udp (10.0.0.200)",
    )
    err = batch_failure(exc, changes, rules, done=4)
    text = str(err)
    assert "a batch of 4 change(s) failed; the device names port_forwards[number=20]" in text
    assert "number=2]" not in text and "number=200" not in text and "number=10.0.0.20" not in text
    assert "4 change(s) of earlier batch requests went in" in text
    assert err.device_message == exc.device_message and not err.transient
