"""Rendering helpers the engine calls: connections, sessions, checks, steps, callbacks, markers, bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnf_operator.core.context import ApplianceInfo, TemplateContext, missing_credentials
from vnf_operator.core.errors import DictionaryError, InjectionError, TemplateError
from vnf_operator.core.loader import LoadedProvider, load_provider_file, load_provider_text
from vnf_operator.core.render import (
    describe,
    display_masker,
    health_check_paths,
    render_bootstrap_step,
    render_call,
    render_callback,
    render_connection,
    render_login,
    render_logout,
    render_marker,
    render_operation,
    render_step_parameters,
    should_skip_step,
)
from vnf_operator.core.rendered import CliCommands, HttpRequest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

SESSION = """
info: {name: Session, vendor: Test}
credentials:
  user: {}
  password: {}
  api_key: {required: false}
vars: {vdom: root}
templates:
  api: /api/v2/cmdb
connections:
  fgt:
    type: https
    port: 8443
    headers: {X-Vdom: "{{ vars.vdom }}"}
    auth:
      type: session
      login:
        method: POST
        path: /logincheck
        form: {username: "{{ credentials.user }}", secretkey: "{{ credentials.password }}", ajax: 1}
      token: ""
      csrfCookie: ccsrftoken
      csrfHeader: X-CSRFTOKEN
      logout: {method: POST, path: /logout}
  vyos:
    type: https
    auth: {type: bodyKey, field: key, value: "{{ credentials.password }}"}
  cli:
    type: ssh
    username: "{{ credentials.user }}"
    privateKey: "{{ credentials.password }}"
    mode: exec
services:
  policy:
    fields: {name: {required: true}, comment: {default: ""}}
    identity: {key: [name], id: policyid}
    ownership: {field: comment, marker: "managed-by:{{ appliance.name }}"}
    operations:
      list: {http: {connection: fgt, path: "{{ templates.api }}/firewall/policy"}, response: {items: "$.results[*]"}}
      create:
        http:
          connection: fgt
          method: POST
          path: "{{ templates.api }}/firewall/policy"
          query: {vdom: "{{ vars.vdom }}", filter: "{{ params.filter | default(omit) }}"}
          body: {name: "{{ item.name }}", comments: "{{ marker }} {{ item.comment }}", optional: "{{ item.x | default(omit) }}"}
        then:
          - name: notify
            http: {connection: vyos, method: POST, path: /notify, body: {id: "{{ result.id }}"}}
      save:
        http: {connection: vyos, method: POST, path: /config-file, rawBody: "<save name={{ item.name | tojson }}/>", contentType: application/xml}
      show:
        cli: {commands: ["show {{ params.what }}", "{% if params.detail %}show detail{% endif %}"]}
healthChecks:
  - {name: svc, phase: service, http: {connection: fgt, path: /status}}
  - {name: reach, phase: network, tcp: {connection: fgt}}
  - {name: auth, phase: api, cli: {commands: [get system status]}}
bootstrap:
  steps:
    - name: first
      http: {connection: fgt, path: /first}
      response: {capture: {token: $.token}}
      outputs: [token]
    - name: second
      dependsOn: [first]
      service: policy
      operation: show
      parameters: {what: "{{ steps.first.captured.token }}", detail: true}
      skipIf: "bootstrap.token is defined"
"""


@pytest.fixture(scope="module")
def lp() -> LoadedProvider:
    return load_provider_text(SESSION, source="session.yaml")


CTX = TemplateContext(
    appliance=ApplianceInfo(name="fgt1", host="2001:db8::10", ports={"vyos": 4443}),
    credentials={"user": "admin", "password": "Sup3rSecret!"},
)


def test_connections_resolve_to_plain_values(lp: LoadedProvider) -> None:
    fgt = render_connection(lp, "fgt", CTX)
    assert fgt.base_url == "https://[2001:db8::10]:8443" and fgt.headers == {"X-Vdom": "root"}
    assert fgt.auth is not None and fgt.auth.type == "session" and fgt.auth.session is not None
    vyos = render_connection(lp, "vyos", CTX)
    assert vyos.port == 4443 and vyos.auth is not None and vyos.auth.value == "Sup3rSecret!"
    cli = render_connection(lp, "cli", CTX)
    assert (cli.type, cli.username, cli.private_key, cli.mode, cli.port) == (
        "ssh",
        "admin",
        "Sup3rSecret!",
        "exec",
        22,
    )
    with pytest.raises(DictionaryError, match="no such connection"):
        render_connection(lp, "nope", CTX)


def test_session_login_and_logout(lp: LoadedProvider) -> None:
    login = render_login(lp, "fgt", CTX)
    assert login.connection == "fgt" and login.path == "/logincheck"
    assert login.form == {"username": "admin", "secretkey": "Sup3rSecret!", "ajax": "1"}
    logout = render_logout(lp, "fgt", CTX)
    assert logout is not None and logout.path == "/logout"
    with pytest.raises(DictionaryError, match="not a session-authenticated"):
        render_login(lp, "vyos", CTX)


def test_snippets_marker_omit_and_optional_credentials(lp: LoadedProvider) -> None:
    op = render_operation(
        lp, "policy", "create", CTX.for_item({"name": "p1", "comment": "web"}).replace(params={})
    )
    assert isinstance(op, HttpRequest)
    assert op.path == "/api/v2/cmdb/firewall/policy"
    assert op.query == {"vdom": "root"}  # `filter` omitted
    assert op.json == {"name": "p1", "comments": "managed-by:fgt1 web"}
    assert render_marker(lp, "policy", CTX) == "managed-by:fgt1"
    assert missing_credentials(lp.dictionary, {"user": "x"}) == ["password"]


def test_raw_body_and_body_key_display(lp: LoadedProvider) -> None:
    op = render_operation(lp, "policy", "save", CTX.for_item({"name": 'a"b'}))
    assert isinstance(op, HttpRequest)
    assert op.content == '<save name="a\\"b"/>' and op.headers["Content-Type"] == "application/xml"
    conn = render_connection(lp, "vyos", CTX)
    shown = describe(op, conn, display_masker(CTX, [conn]))
    assert "Sup3rSecret!" not in str(shown)
    with pytest.raises(InjectionError, match="rawBody"):
        render_call(
            lp,
            lp.dictionary.services["policy"]
            .operations["save"]
            .http.model_copy(update={"raw_body": "<x>{{ item.name }}</x>"}),  # type: ignore[union-attr]
            CTX.for_item({"name": "a<b"}),
            where="raw",
        )


def test_cli_lines_drop_empty_ones(lp: LoadedProvider) -> None:
    op = render_operation(lp, "policy", "show", CTX.replace(params={"what": "version", "detail": False}))
    assert isinstance(op, CliCommands) and op.commands == ("show version",) and op.mode == "exec"


def test_callbacks_see_the_result(lp: LoadedProvider) -> None:
    cb, op = render_callback(lp, "policy", "create", "notify", CTX.replace(result={"id": "42"}))
    assert cb.name == "notify" and isinstance(op, HttpRequest) and op.json == {"id": "42"}
    with pytest.raises(TemplateError, match="undefined variable `result`"):
        render_callback(lp, "policy", "create", 0, CTX)


def test_health_checks_in_phase_order(lp: LoadedProvider) -> None:
    assert [c.name for c, _ in health_check_paths(lp)] == ["reach", "auth", "svc"]
    assert [w for _, w in health_check_paths(lp)] == ["healthChecks[1]", "healthChecks[2]", "healthChecks[0]"]


def test_bootstrap_steps(lp: LoadedProvider) -> None:
    steps = {"first": {"ok": True, "captured": {"token": "t-1"}}}
    assert render_step_parameters(lp, "second", CTX.replace(steps=steps)) == {"what": "t-1", "detail": True}
    op = render_bootstrap_step(lp, "second", CTX.replace(steps=steps))
    assert isinstance(op, CliCommands) and op.commands == ("show t-1", "show detail")
    assert should_skip_step(lp, "second", CTX.replace(bootstrap={"token": "t"})) is True
    assert should_skip_step(lp, "second", CTX) is False
    assert should_skip_step(lp, "first", CTX) is False
    with pytest.raises(DictionaryError, match="no step named `third`"):
        render_bootstrap_step(lp, "third", CTX)


def test_unknown_operation_lists_the_known_ones() -> None:
    opn = load_provider_file(ROOT / "providers" / "opnsense.yaml")
    with pytest.raises(DictionaryError) as info:
        render_operation(opn, "firewall_rules", "reboot", CTX)
    assert info.value.problems[0].path == "spec.services.firewall_rules.operations.reboot"
    assert "known: list, create, update, delete, move, get, commit" in info.value.problems[0].message
