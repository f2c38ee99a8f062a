"""Injection safety: every payload stays inside its slot or is rejected, for HTTP and CLI rendering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.errors import InjectionError, TemplateError
from vnf_operator.core.loader import LoadedProvider, load_provider_file, load_provider_text
from vnf_operator.core.render import render_operation
from vnf_operator.core.rendered import CliCommands, HttpRequest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "corpus" / "injection-payloads.yaml").read_text()
)
PAYLOADS.append(
    {"name": "overlong", "value": "A" * 5000, "cli_token": False, "quotable": False, "path_ok": False}
)
IDS = [p["name"] for p in PAYLOADS]

DICTIONARY = """
info: {name: Injection, vendor: Test}
credentials: {token: {}}
connections:
  api: {type: https, basePath: /api, auth: {type: bearer, token: "{{ credentials.token }}"}}
  cli: {type: ssh, username: admin, password: "{{ credentials.token }}", configEnter: [configure terminal], configExit: [end]}
services:
  things:
    fields: {name: {required: true}}
    identity: {key: [name]}
    operations:
      list: {http: {path: /things}, response: {items: "$[*]"}}
      get:
        http:
          path: /things/{{ id }}/detail
          query: {q: "{{ params.value }}"}
          headers: {X-Note: "{{ params.value }}"}
      create:
        http: {method: POST, path: /things, body: {thing: {name: "{{ item.name }}", note: "note: {{ item.name }}"}}}
      cli_plain:
        cli: {commands: ["interface {{ item.name }}", "no shutdown"], configMode: true}
      cli_quoted:
        cli: {commands: ["description {{ item.name | quote }}"], configMode: true}
"""


@pytest.fixture(scope="module")
def lp() -> LoadedProvider:
    return load_provider_text(DICTIONARY, source="injection.yaml")


CTX = TemplateContext(
    appliance=ApplianceInfo(name="a", host="192.0.2.1"), credentials={"token": "t0ken-value"}
)


def _get(lp: LoadedProvider, value: str, *, id: str = "abc") -> HttpRequest:
    op = render_operation(lp, "things", "get", CTX.replace(id=id, params={"value": value}))
    assert isinstance(op, HttpRequest)
    return op


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_path_value_is_exactly_one_segment(lp: LoadedProvider, payload: dict[str, Any]) -> None:
    value = payload["value"]
    if value in (".", "..") or not payload.get("path_ok", True):
        with pytest.raises(InjectionError) as info:
            _get(lp, "x", id=value)
        assert info.value.where == "services.things.operations.get.http.path"
        return
    op = _get(lp, "x", id=value)
    segments = op.path.split("/")
    assert segments[:2] == ["", "things"] and segments[-1] == "detail" and len(segments) == 4
    segment = segments[2]
    assert not set("/?#") & set(segment)
    assert unquote(segment) == value  # decodes back to the value, and only to it


def test_empty_or_missing_path_value_is_rejected(lp: LoadedProvider) -> None:
    with pytest.raises(InjectionError, match="cannot be empty"):
        _get(lp, "x", id="")
    with pytest.raises(TemplateError, match="undefined variable `id`"):
        render_operation(lp, "things", "get", CTX.replace(params={"value": "x"}))


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_query_and_header_values(lp: LoadedProvider, payload: dict[str, Any]) -> None:
    value = payload["value"]
    if payload.get("query_ok", True) and payload.get("header_ok", True) and len(value) <= 8192:
        op = _get(lp, value)
        assert op.query["q"] == value and op.headers["X-Note"] == value
        return
    with pytest.raises(InjectionError) as info:
        _get(lp, value)
    assert info.value.where in (
        "services.things.operations.get.http.query.q",
        "services.things.operations.get.http.headers.X-Note",
    )
    if not payload.get("query_ok", True):
        assert info.value.where.endswith(".query.q")


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_json_body_values_cannot_break_out(lp: LoadedProvider, payload: dict[str, Any]) -> None:
    value = payload["value"]
    op = render_operation(lp, "things", "create", CTX.replace(item={"name": value}))
    assert isinstance(op, HttpRequest)
    decoded = json.loads(json.dumps(op.json))
    assert decoded == {"thing": {"name": value, "note": f"note: {value}"}}


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_cli_value_must_be_a_safe_token(lp: LoadedProvider, payload: dict[str, Any]) -> None:
    value = payload["value"]
    ctx = CTX.replace(item={"name": value})
    if payload.get("cli_token", False):
        op = render_operation(lp, "things", "cli_plain", ctx)
        assert isinstance(op, CliCommands)
        assert op.config_mode  # the transport enters and leaves config mode around these lines
        assert op.commands == (f"interface {value}", "no shutdown")
        return
    with pytest.raises(InjectionError) as info:
        render_operation(lp, "things", "cli_plain", ctx)
    assert info.value.where == "services.things.operations.cli_plain.cli.commands[0]"


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_cli_quote_wraps_or_rejects(lp: LoadedProvider, payload: dict[str, Any]) -> None:
    value = payload["value"]
    ctx = CTX.replace(item={"name": value})
    if payload.get("quotable", True):
        op = render_operation(lp, "things", "cli_quoted", ctx)
        assert isinstance(op, CliCommands)
        assert op.config_mode
        assert op.commands == (f'description "{value}"',)
        return
    with pytest.raises(InjectionError) as info:
        render_operation(lp, "things", "cli_quoted", ctx)
    assert info.value.where == "services.things.operations.cli_quoted.cli.commands[0]"


def test_a_value_never_adds_a_cli_line(lp: LoadedProvider) -> None:
    for payload in PAYLOADS:
        for op_name in ("cli_plain", "cli_quoted"):
            try:
                op = render_operation(lp, "things", op_name, CTX.replace(item={"name": payload["value"]}))
            except TemplateError:
                continue
            assert isinstance(op, CliCommands)
            assert len(op.commands) == (2 if op_name == "cli_plain" else 1)
            assert all("\n" not in c and "\r" not in c for c in op.commands)


def test_shipped_providers_reject_injection_in_items() -> None:
    opn = load_provider_file(ROOT / "providers" / "opnsense.yaml")
    with pytest.raises(InjectionError):
        render_operation(
            opn, "firewall_rules", "update", CTX.for_item({"description": "x"}, id="..").replace()
        )
    cisco = load_provider_file(ROOT / "providers" / "cisco-iosxe.yaml")
    item = {"name": "GigabitEthernet1", "description": "x\nreload", "shutdown": False}
    with pytest.raises(InjectionError) as info:
        render_operation(cisco, "interfaces", "create", CTX.for_item(item))
    assert info.value.where == "spec.services.interfaces.operations.create.cli.commands[1]"
    with pytest.raises(InjectionError):
        render_operation(
            cisco,
            "bgp_neighbors",
            "create",
            CTX.for_item({"asn": 1, "neighbor_ip": "1.1.1.1 shutdown", "remote_as": 2}),
        )
