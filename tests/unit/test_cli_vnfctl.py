"""vnfctl validate / render / parse / schema: output, exit codes, masking, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from vnf_operator.cli.main import COMMANDS, cli
from vnf_operator.core.schema_export import reference_markdown, schema_text

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OPN = str(ROOT / "providers" / "opnsense.yaml")
CISCO = str(ROOT / "providers" / "cisco-iosxe.yaml")
GOLDEN = Path(__file__).parent / "golden" / "parse"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert "Traceback" not in result.output + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_commands_are_registered() -> None:
    assert {"validate", "render", "parse", "schema"} <= set(COMMANDS)
    code, out, _ = run("--help")
    assert code == 0 and all(c in out for c in ("validate", "render", "parse", "schema"))


def test_validate_ok_files() -> None:
    code, out, _ = run("validate", OPN, CISCO)
    assert code == 0
    assert f"{OPN}: ok (provider opnsense 1.0.0" in out
    assert f"{CISCO}: ok (provider cisco-iosxe 1.0.0" in out


def test_validate_reports_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("info: {name: x}\nconnections: {api: {type: ftp}}\n")
    code, out, _ = run("validate", str(bad), OPN)
    assert code == 1
    lines = out.splitlines()
    assert f"{bad}: info.vendor: is required" in lines
    assert any(line.startswith(f"{bad}: connections.api.type: ") for line in lines)
    assert any(line.startswith(f"{OPN}: ok") for line in lines)


def test_validate_missing_file_is_one_line(tmp_path: Path) -> None:
    code, out, _ = run("validate", str(tmp_path / "nope.yaml"))
    assert code == 1 and out.strip().startswith(f"{tmp_path / 'nope.yaml'}: cannot read the file")


def test_render_http_with_placeholders() -> None:
    code, out, _ = run(
        "render",
        OPN,
        "--service",
        "firewall_rules",
        "--op",
        "create",
        "--item",
        "{description: allow ssh, interface: lan}",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "POST https://192.0.2.1:443/api/firewall/filter/addRule"
    assert "Authorization: Basic base64(<credentials.api_key>:<credentials.api_secret>)" in lines
    body = json.loads("\n".join(lines[lines.index("") + 1 :]))
    assert body["rule"]["description"] == "allow ssh" and body["rule"]["enabled"] == "1"


def test_render_masks_given_credentials(tmp_path: Path) -> None:
    creds = tmp_path / "creds.yaml"
    creds.write_text(yaml.safe_dump({"api_key": "APIKEY-123456", "api_secret": "SECRET-abcdef"}))
    item = tmp_path / "item.yaml"
    item.write_text(yaml.safe_dump({"description": "SECRET-abcdef leak?", "interface": "lan"}))
    code, out, _ = run(
        "render",
        OPN,
        "-s",
        "firewall_rules",
        "--op",
        "create",
        "--item",
        str(item),
        "--credentials",
        str(creds),
        "-o",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["headers"]["Authorization"] == "Basic ******"
    assert data["json"]["rule"]["description"] == "****** leak?"
    assert "APIKEY-123456" not in out and "SECRET-abcdef" not in out


def test_render_cli_operation_yaml_output() -> None:
    code, out, _ = run(
        "render",
        CISCO,
        "-s",
        "static_routes",
        "--op",
        "delete",
        "--actual",
        "{prefix: 10.20.0.0/16, next_hop: 10.0.0.2}",
        "-o",
        "yaml",
        "--host",
        "198.51.100.7",
    )
    assert code == 0
    data = yaml.safe_load(out)
    assert data["commands"] == ["configure terminal", "no ip route 10.20.0.0 255.255.0.0 10.0.0.2", "end"]
    assert data["target"] == "<credentials.username>@198.51.100.7:22"


def test_render_uses_the_actual_items_id_and_vars(tmp_path: Path) -> None:
    code, out, _ = run(
        "render",
        OPN,
        "-s",
        "firewall_rules",
        "--op",
        "delete",
        "--actual",
        "{uuid: abc-123, description: x}",
        "--port",
        "api=8443",
    )
    assert (
        code == 0 and out.splitlines()[0] == "POST https://192.0.2.1:8443/api/firewall/filter/delRule/abc-123"
    )


def test_render_health_check_and_bootstrap_step() -> None:
    code, out, _ = run("render", CISCO, "--check", "ssh_show_version")
    assert code == 0 and out.splitlines()[1:] == ["show version"]
    ctx = "{steps: {find_user: {captured: {user_uuid: u-1}}}}"
    code, out, _ = run("render", OPN, "--step", "set_root_password", "--context", ctx)
    assert code == 0 and out.startswith("POST https://192.0.2.1:443/api/auth/user/set/u-1")


def test_render_errors_are_one_line() -> None:
    code, out, err = run(
        "render",
        OPN,
        "-s",
        "firewall_rules",
        "--op",
        "create",
        "--item",
        "{description: x, interface: lan, action: allow}",
    )
    assert code == 1 and out == ""
    assert (
        err.strip() == 'vnfctl: error: invalid items: item.action: "allow" is not one of pass, block, reject'
    )
    code, _, err = run(
        "render", OPN, "-s", "firewall_rules", "--op", "update", "--item", "{description: x, interface: lan}"
    )
    assert code == 1
    assert (
        err.strip()
        == "vnfctl: error: spec.services.firewall_rules.operations.update.http.path: undefined variable `id`"
    )
    code, _, err = run("render", OPN, "-s", "nope", "--op", "list")
    assert code == 1 and "spec.services.nope: no such service" in err
    code, _, err = run(
        "render",
        CISCO,
        "-s",
        "bgp_neighbors",
        "--op",
        "create",
        "--item",
        "{asn: 1, neighbor_ip: '1.1.1.1', remote_as: 2}",
        "--id",
        "x",
        "--vars",
        "bad",
    )
    assert code == 2 and "expected NAME=VALUE" in err


def test_render_invalid_dictionary_summary_and_verbose(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("info: {name: x}\nconnections: {}\n")
    code, _, err = run("render", str(bad), "-s", "a", "--op", "list")
    assert code == 1 and err.count("\n") == 1 and "(and 1 more; -v shows all)" in err
    code, _, err = run("-v", "render", str(bad), "-s", "a", "--op", "list")
    assert code == 1 and err.count("\n") == 2


def test_parse_table_of_opnsense_rules() -> None:
    code, out, _ = run(
        "parse",
        OPN,
        "-s",
        "firewall_rules",
        "--op",
        "list",
        "--response",
        str(GOLDEN / "opnsense-searchRule.response.json"),
    )
    assert code == 0
    assert "Response of VNF operation: firewall_rules/list (3 item(s))" in out
    assert "123e4567-e89b-12d3-a456-426614174002" in out


def test_parse_json_of_bgp_summary() -> None:
    code, out, _ = run(
        "parse",
        CISCO,
        "-s",
        "monitoring",
        "--op",
        "show_bgp_summary",
        "--response",
        str(GOLDEN / "cisco-show-ip-bgp-summary.response.txt"),
        "-o",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and [i["bgp_neighbor"] for i in data["items"]] == [
        "10.0.0.2",
        "10.0.0.6",
        "192.0.2.77",
    ]


def test_parse_single_item_table_and_failure_exit_code() -> None:
    code, out, _ = run(
        "parse",
        OPN,
        "-s",
        "firewall_rules",
        "--op",
        "create",
        "--response",
        "-",
        input='{"result":"saved","uuid":"u-9"}',
    )
    assert code == 0 and "u-9" in out
    code, out, _ = run(
        "parse",
        OPN,
        "-s",
        "firewall_rules",
        "--op",
        "create",
        "--response",
        str(GOLDEN / "opnsense-addRule-failed.response.json"),
    )
    assert code == 1 and "failed: rule.destination_port: Please specify" in out


def test_parse_bad_body_is_one_line() -> None:
    code, _, err = run("parse", OPN, "-s", "firewall_rules", "--op", "list", "--response", "-", input="{oops")
    assert code == 1 and err.startswith(
        "vnfctl: error: spec.services.firewall_rules.operations.list.response: response is not valid JSON"
    )


def test_schema_outputs_and_write(tmp_path: Path) -> None:
    code, out, _ = run("schema")
    assert code == 0 and out == schema_text()
    code, out, _ = run("schema", "--reference")
    assert code == 0 and out == reference_markdown()
    code, out, _ = run("schema", "--write", str(tmp_path))
    assert code == 0
    assert (tmp_path / "operator/vnf_operator/schemas/provider.schema.json").read_text() == schema_text()
    assert (tmp_path / "docs/language-reference.md").read_text() == reference_markdown()
