"""Loading dictionaries: manifests and bare dictionaries, YAML rules, paths, all errors at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vnf_operator.core import model as m
from vnf_operator.core.errors import DictionaryError
from vnf_operator.core.loader import (
    LoadedProvider,
    load_provider_data,
    load_provider_file,
    load_provider_spec,
    load_provider_text,
    parse_yaml,
)
from vnf_operator.core.templating import Kind

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = sorted(p for p in (ROOT / "providers").glob("*.yaml") if p.name != "kustomization.yaml")

MINIMAL = """
info: {name: Minimal, vendor: Example}
credentials: {token: {}}
connections:
  api: {type: https, auth: {type: bearer, token: "{{ credentials.token }}"}}
"""


def test_both_shipped_providers_load() -> None:
    names = {p.stem: load_provider_file(p) for p in PROVIDERS}
    assert set(names) >= {"opnsense", "cisco-iosxe"}
    opn = names["opnsense"]
    assert isinstance(opn, LoadedProvider)
    assert opn.name == "opnsense" and opn.manifest and opn.path_prefix == "spec"
    assert {"firewall_rules", "source_nat", "static_routes"} <= set(opn.dictionary.services)
    cisco = names["cisco-iosxe"].dictionary
    assert {"interfaces", "static_routes", "acl", "bgp_neighbors", "monitoring"} <= set(cisco.services)
    assert {"show_bgp_summary", "get_interfaces"} <= set(cisco.services["monitoring"].operations)


@pytest.mark.parametrize("path", PROVIDERS, ids=[p.stem for p in PROVIDERS])
def test_provider_files_point_editors_at_the_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../operator/vnf_operator/schemas/provider.schema.json"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == m.API_VERSION and doc["kind"] == "VnfProvider"
    assert doc["spec"]["language"] == "v1"


def test_loaded_provider_precompiles_templates_and_jsonpaths() -> None:
    lp = load_provider_file(ROOT / "providers" / "opnsense.yaml")
    path = "spec.services.firewall_rules.operations.update.http.path"
    assert lp.templates[path].kind is Kind.PATH
    body = "spec.services.firewall_rules.operations.create.http.body.rule.enabled"
    assert lp.templates[body].kind is Kind.JSON and lp.templates[body].native
    assert "$.rows[*]" in lp.jsonpaths
    assert "spec.bootstrap.steps[1].skipIf" in lp.expressions


def test_bare_dictionary_paths_have_no_spec_prefix() -> None:
    lp = load_provider_text(MINIMAL, source="mini.yaml")
    assert not lp.manifest and lp.path_prefix == "" and lp.name == "minimal"
    with pytest.raises(DictionaryError) as info:
        load_provider_text(MINIMAL.replace("token: {}", "other: {}"), source="mini.yaml")
    assert [p.path for p in info.value.problems] == ["connections.api.auth.token"]


def test_manifest_paths_start_with_spec() -> None:
    doc = {
        "apiVersion": m.API_VERSION,
        "kind": "VnfProvider",
        "metadata": {"name": "x"},
        "spec": yaml.safe_load(MINIMAL),
    }
    doc["spec"]["connections"]["api"]["port"] = "nope"
    with pytest.raises(DictionaryError) as info:
        load_provider_data(doc)
    assert info.value.problems[0].path == "spec.connections.api.port"


def test_cluster_spec_loads_with_spec_paths() -> None:
    lp = load_provider_spec(yaml.safe_load(MINIMAL), name="from-cluster")
    assert lp.name == "from-cluster" and lp.path_prefix == "spec"


def test_every_problem_is_reported_at_once() -> None:
    text = """
info: {name: X, vendor: Y}
connections:
  api: {type: https}
services:
  a:
    dependsOn: [nope]
    fields: {x: {}}
    identity: {key: [y]}
    operations:
      create: {http: {method: POST, path: "/a/{{ itme.x }}"}}
"""
    with pytest.raises(DictionaryError) as info:
        load_provider_text(text)
    paths = {p.path for p in info.value.problems}
    assert paths >= {
        "services.a.dependsOn[0]",
        "services.a.operations",
        "services.a.identity.key[0]",
        "services.a.operations.create.http.path",
    }


def test_structure_errors_are_all_reported_too() -> None:
    text = "info: {name: X}\nconnections: {api: {type: https, prot: 1, port: x}}\nbogus: 1\n"
    with pytest.raises(DictionaryError) as info:
        load_provider_text(text)
    got = {(p.path, p.message.split(" (")[0]) for p in info.value.problems}
    assert ("info.vendor", "is required") in got
    assert ("connections.api.prot", "unknown key `prot`") in got
    assert ("bogus", "unknown key `bogus`") in got
    assert any(p.path == "connections.api.port" for p in info.value.problems)


def test_yaml_uses_1_2_booleans_and_keeps_dates_as_text() -> None:
    data = parse_yaml("a: yes\nb: on\nc: true\nd: 2024-01-02\n")
    assert data == {"a": "yes", "b": "on", "c": True, "d": "2024-01-02"}


def test_yaml_anchors_and_merge_keys_work() -> None:
    data = parse_yaml("x: &x {a: 1, b: 2}\ny: {<<: *x, b: 3}\n")
    assert data["y"] == {"a": 1, "b": 3}


def test_duplicate_keys_are_errors_with_line_and_column() -> None:
    with pytest.raises(DictionaryError) as info:
        parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert "line 4, column 3" in info.value.problems[0].message
    assert "duplicate key 'c'" in info.value.problems[0].message


def test_unreadable_file_is_a_dictionary_error(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match="cannot read the file"):
        load_provider_file(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DictionaryError, match="not UTF-8"):
        load_provider_file(binary)


def test_credentials_are_checked_in_every_template_place() -> None:
    text = (
        MINIMAL
        + """
healthChecks:
  - name: h
    http: {path: /x, headers: {X-Token: "{{ credentials.nope }}"}}
"""
    )
    with pytest.raises(DictionaryError) as info:
        load_provider_text(text)
    assert info.value.problems[0].path == "healthChecks[0].http.headers.X-Token"
    assert "credential `nope` is not declared" in info.value.problems[0].message


def test_session_login_must_send_a_credential() -> None:
    text = """
info: {name: X, vendor: Y}
credentials: {password: {}}
connections:
  api:
    type: https
    auth:
      type: session
      login: {method: POST, path: /login, body: {user: admin, secret: "{{ vars.x }}"}}
      token: $.token
"""
    with pytest.raises(DictionaryError) as info:
        load_provider_text(text)
    paths = [p.path for p in info.value.problems]
    assert "connections.api.auth.login" in paths
    ok = text.replace('"{{ vars.x }}"', '"{{ credentials.password }}"')
    assert load_provider_text(ok).dictionary.connections["api"].type == "https"
