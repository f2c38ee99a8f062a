"""vnfctl health / bootstrap / exec / simulate against simulators, real sshd and tinyproxy on loopback.

Every invocation is checked for tracebacks and for every secret the test knows (credentials,
bootstrap credentials and outputs, key and token files): none may reach stdout or stderr, with
or without -v, on success and on errors.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from vnf_operator.cli.main import COMMANDS, cli
from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators import IosXeSimulator
from vnf_operator.testing.simulators.base import Credentials, SimulatorConfig
from vnf_operator.testing.simulators.tls import generate_tls_material

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OPN = str(ROOT / "providers" / "opnsense.yaml")
CISCO = str(ROOT / "providers" / "cisco-iosxe.yaml")

# Every secret any test hands to vnfctl; none may ever be printed.
SECRETS: set[str] = set()


def secret(prefix: str) -> str:
    value = f"{prefix}-{secrets.token_urlsafe(18)}"
    SECRETS.add(value)
    return value


def run(*args: str, ok: bool | None = None) -> tuple[int, str, str]:
    """Run vnfctl in-process; check it printed no traceback and no secret."""
    result = CliRunner().invoke(cli, list(args))
    out, err = result.stdout, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in out + err
    for value in SECRETS:
        assert value not in out, f"a secret leaked to stdout: {out}"
        assert value not in err, f"a secret leaked to stderr: {err}"
    if ok is True:
        assert result.exit_code == 0, out + err
    elif ok is False:
        assert result.exit_code == 1, out + err
    return result.exit_code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vnfctl: error: "), err
    return lines[0]


def write(path: Path, data: Any) -> str:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


# --------------------------------------------------------------------------- OPNsense over HTTPS


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vnfctl-live")


@pytest.fixture(scope="module")
def opn_creds() -> dict[str, str]:
    return {"api_key": secret("key"), "api_secret": secret("Api-Secret")}


@pytest.fixture(scope="module")
def opnsense(opn_creds: dict[str, str]) -> Iterator[SimulatorThread]:
    creds = Credentials(username="root", password=secret("root-pw"), **opn_creds)
    sim = SimulatorThread("opnsense", SimulatorConfig(tls=True, credentials=creds, ssh=False))
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def opn(opnsense: SimulatorThread, opn_creds: dict[str, str], files: Path) -> list[str]:
    """Provider and target options of the OPNsense simulator (credentials file, its CA)."""
    assert opnsense.sim.tls_ca_pem is not None
    return [
        OPN,
        "--host",
        "127.0.0.1",
        "--port",
        str(opnsense.sim.port),
        "--credentials",
        write(files / "opn-creds.yaml", opn_creds),
        "--ca",
        write(files / "opn-ca.pem", opnsense.sim.tls_ca_pem),
    ]


def device_rules(sim: SimulatorThread, where: str = "config") -> list[dict[str, Any]]:
    async def dump() -> dict[str, Any]:
        return sim.sim.dump_state()

    rules = sim.call(dump())[where]["filter_rules"]
    return list(rules.values()) if isinstance(rules, dict) else list(rules)


def test_commands_are_registered() -> None:
    assert {"health", "bootstrap", "exec", "simulate"} <= set(COMMANDS)
    _, out, _ = run("--help", ok=True)
    assert all(c in out for c in ("health", "bootstrap", "exec", "simulate"))


def test_health_passes(opn: list[str]) -> None:
    _, out, err = run("health", *opn, ok=True)
    assert "Health of 127.0.0.1 (provider opnsense" in out
    for check, phase in (
        ("https_port", "network"),
        ("firmware_status", "api"),
        ("filter_readable", "service"),
    ):
        line = next(line for line in out.splitlines() if f" {check} " in line)
        assert phase in line and "✓ Passed" in line
    assert "✓ healthy: 3 health check(s) passed" in out
    assert err == ""


def test_health_json(opn: list[str]) -> None:
    _, out, _ = run("health", *opn, "-o", "json", ok=True)
    data = json.loads(out)
    assert data["healthy"] is True
    assert [(c["name"], c["phase"], c["status"]) for c in data["checks"]] == [
        ("https_port", "network", "Passed"),
        ("firmware_status", "api", "Passed"),
        ("filter_readable", "service", "Passed"),
    ]
    assert all(isinstance(c["latencyMs"], int) for c in data["checks"])


def test_exec_create_list_update_delete(opn: list[str], opnsense: SimulatorThread, files: Path) -> None:
    exec_ = ["exec", *opn, "-s", "firewall_rules"]
    rule = {"description": "cli-allow-ssh", "interface": "wan", "protocol": "TCP", "destination_port": "22"}

    _, out, _ = run(*exec_, "--op", "create", "--item", write(files / "rule.yaml", rule), "--commit", ok=True)
    assert "Response of VNF operation: firewall_rules/create" in out
    assert "✓ firewall_rules/commit: ok" in out
    created = [r for r in device_rules(opnsense) if r["description"] == "cli-allow-ssh"]
    assert len(created) == 1
    uuid = created[0]["uuid"]
    assert uuid in out
    assert any(r["uuid"] == uuid for r in device_rules(opnsense, "running"))  # --commit applied it

    _, out, _ = run(*exec_, "--op", "list", ok=True)
    assert "Response of VNF operation: firewall_rules/list (" in out
    row = next(line for line in out.splitlines() if uuid in line)
    assert "cli-allow-ssh" in row and " 22 " in row

    # update: found on the device by its natural key (description); the id comes from there
    rule["destination_port"] = "2222"
    _, out, _ = run(
        *exec_, "--op", "update", "--item", write(files / "rule2.yaml", rule), "-o", "json", ok=True
    )
    assert json.loads(out)["id"] == uuid
    _, out, _ = run(*exec_, "--op", "list", "-o", "yaml", ok=True)
    items = {i["uuid"]: i for i in yaml.safe_load(out)["items"]}
    assert items[uuid]["destination_port"] == "2222"

    _, out, _ = run(*exec_, "--op", "get", "--param", f"uuid={uuid}", "-o", "json", ok=True)
    assert json.loads(out)["captured"]["rule"]["description"] == "cli-allow-ssh"

    _, out, _ = run(*exec_, "--op", "delete", "--id", uuid, ok=True)
    assert "firewall_rules/delete" in out
    assert not any(r["uuid"] == uuid for r in device_rules(opnsense))

    # deleting it again: the device says it does not exist
    code, _, err = run(*exec_, "--op", "delete", "--id", uuid)
    assert code == 1 and "not found" in one_error_line(err)


def test_exec_delete_by_natural_key(opn: list[str], opnsense: SimulatorThread) -> None:
    exec_ = ["exec", *opn, "-s", "firewall_rules"]
    run(*exec_, "--op", "create", "--item", "{description: cli-by-key, interface: lan}", ok=True)
    assert any(r["description"] == "cli-by-key" for r in device_rules(opnsense))
    run(*exec_, "--op", "delete", "--item", "{description: cli-by-key, interface: lan}", ok=True)
    assert not any(r["description"] == "cli-by-key" for r in device_rules(opnsense))
    code, _, err = run(*exec_, "--op", "delete", "--item", "{description: cli-by-key, interface: lan}")
    assert code == 1
    assert "no item with the key" in one_error_line(err)


def test_exec_invalid_item_is_rejected_before_sending(opn: list[str], opnsense: SimulatorThread) -> None:
    before = device_rules(opnsense)
    args = [
        "exec",
        *opn,
        "-s",
        "firewall_rules",
        "--op",
        "create",
        "--item",
        "{interface: lan, action: allow}",
    ]
    code, _, err = run(*args)
    assert code == 1
    line = one_error_line(err)
    assert "invalid items: item.action" in line and "(and 1 more; -v shows all)" in line
    code, _, err = run("-v", *args)
    assert code == 1 and "item.description" in err
    assert device_rules(opnsense) == before


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-vvv"]])
def test_wrong_credentials_is_one_line_without_the_secret(
    opnsense: SimulatorThread, opn: list[str], files: Path, verbosity: list[str]
) -> None:
    wrong = write(files / "wrong.yaml", {"api_key": secret("key"), "api_secret": secret("Wrong-Secret")})
    args = [*opn]
    args[args.index("--credentials") + 1] = wrong
    code, out, err = run(*verbosity, "exec", *args, "-s", "firewall_rules", "--op", "list")
    assert code == 1 and out == ""
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("vnfctl: error: ")]
    assert len(errors) == 1
    assert "refused the credentials" in errors[0] and "(check the credentials)" in errors[0]
    if not verbosity:
        assert len(lines) == 1
    else:
        assert "  error: AuthenticationError" in lines and "  status: 401" in lines
    code, out, err = run(*verbosity, "health", *args)
    assert code == 1 and "✗ unhealthy" in out and "refused the credentials" in out


def test_a_device_error_is_one_line(opn: list[str]) -> None:
    # a rule for an interface the device does not have: the device's validation message comes back
    code, out, err = run(
        "exec",
        *opn,
        "-s",
        "firewall_rules",
        "--op",
        "create",
        "--item",
        "{description: x1, interface: nosuchif}",
    )
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert "device rejected the operation" in line


def test_tls_needs_the_ca(opn: list[str]) -> None:
    args = [a for i, a in enumerate(opn) if a != "--ca" and (i == 0 or opn[i - 1] != "--ca")]
    code, _, err = run("exec", *args, "-s", "firewall_rules", "--op", "list")
    assert code == 1
    line = one_error_line(err)
    assert "TLS certificate verify failed" in line and "--ca FILE" in line
    run("exec", *args, "--insecure", "-s", "firewall_rules", "--op", "list", ok=True)


def test_unreachable_device_is_one_line(opn: list[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = str(s.getsockname()[1])
    args = [*opn]
    args[args.index("--port") + 1] = closed
    code, _, err = run("exec", *args, "--retries", "0", "-s", "firewall_rules", "--op", "list")
    assert code == 1
    assert f"cannot connect to 127.0.0.1:{closed}" in one_error_line(err)


def test_usage_errors(opn: list[str], files: Path) -> None:
    code, _, err = run("exec", *opn, "-s", "nope", "--op", "list")
    assert code == 2 and "no such service" in err and "firewall_rules" in err
    code, _, err = run("exec", *opn, "--secret", "ns/name", "-s", "firewall_rules", "--op", "list")
    assert code == 2 and "--credentials and --secret are mutually exclusive" in err
    code, _, err = run("health", *opn, "--port", "nosuch=1")
    assert code == 2 and "no such connection" in err
    code, _, err = run("exec", *opn, "-s", "firewall_rules", "--op", "create")
    assert code == 2 and "--item" in err
    args = [*opn]
    args[args.index("--credentials") + 1] = write(files / "partial.yaml", {"api_key": secret("key")})
    code, _, err = run("exec", *args, "-s", "firewall_rules", "--op", "list")
    # Without bootstrap credentials nothing could produce api_secret: the missing key is named.
    assert code == 1 and "no key 'api_secret'" in one_error_line(err)


def test_a_broken_credentials_file_does_not_echo_it(opn: list[str], files: Path) -> None:
    leaked = secret("in-broken-yaml")
    args = [*opn]
    args[args.index("--credentials") + 1] = write(files / "broken.yaml", f"api_key: [{leaked}\n")
    code, _, err = run("exec", *args, "-s", "firewall_rules", "--op", "list")
    assert code == 2 and "not valid YAML" in err


# --------------------------------------------------------------------------- bootstrap


@pytest.fixture(scope="module")
def fresh_opnsense() -> Iterator[tuple[SimulatorThread, dict[str, str]]]:
    """An OPNsense whose only API key is the day-0 one (the operator's key is made by bootstrap)."""
    day0 = {
        "bootstrap_api_key": secret("day0-key"),
        "bootstrap_api_secret": secret("Day0-Secret"),
        "root_password": secret("New-Root-Pw"),
    }
    creds = Credentials(
        username="root",
        password=secret("old-root-pw"),
        api_key=day0["bootstrap_api_key"],
        api_secret=day0["bootstrap_api_secret"],
    )
    sim = SimulatorThread("opnsense", SimulatorConfig(tls=True, credentials=creds, ssh=False))
    sim.start()
    yield sim, day0
    sim.stop()


def test_bootstrap_saves_outputs_privately_and_is_idempotent(
    fresh_opnsense: tuple[SimulatorThread, dict[str, str]], files: Path
) -> None:
    sim, day0 = fresh_opnsense
    assert sim.sim.tls_ca_pem is not None
    target = [OPN, "--host", "127.0.0.1", "--port", str(sim.sim.port)]
    target += ["--ca", write(files / "fresh-ca.pem", sim.sim.tls_ca_pem)]
    outputs = files / "fresh-outputs.yaml"
    boot = ["bootstrap", *target, "--bootstrap-credentials", write(files / "day0.yaml", day0)]

    # Before bootstrap the operator's connection has no credentials: health says so.
    code, out, err = run("health", *target, "--outputs", str(outputs))
    assert code == 1 and "missing 'api_key'" in err, (out, err)

    _, out, _ = run(*boot, "--outputs", str(outputs), ok=True)
    assert "✓ bootstrap completed (3 step(s) run)" in out
    assert outputs.stat().st_mode & 0o777 == 0o600
    saved = yaml.safe_load(outputs.read_text())
    assert {"api_key", "api_secret", "password_set"} <= set(saved)
    SECRETS.update(v for k, v in saved.items() if k != "password_set")
    # run() checked already that the new key is not in the output; it is shown masked
    assert "api_key" in out and "****** (" in out
    assert f"outputs saved to {outputs}" in out

    # The new key works: health with the outputs file standing in for credentials.
    run("health", *target, "--outputs", str(outputs), ok=True)
    run("exec", *target, "--outputs", str(outputs), "-s", "firewall_rules", "--op", "list", ok=True)

    # Again: the neededWhen check passes now.
    _, out, _ = run(*boot, "--outputs", str(outputs), ok=True)
    assert "✓ bootstrap not needed" in out
    # Forced: the steps whose outputs exist are skipped, the key is not replaced.
    _, out, _ = run(*boot, "--outputs", str(outputs), "--force", "-o", "json", ok=True)
    data = json.loads(out)
    assert data["ok"] is True and data["steps"] == ["find_user"]
    assert yaml.safe_load(outputs.read_text()) == saved


def test_bootstrap_failure_is_reported(
    fresh_opnsense: tuple[SimulatorThread, dict[str, str]], files: Path
) -> None:
    sim, day0 = fresh_opnsense
    wrong = {**day0, "bootstrap_api_secret": secret("Wrong-Day0")}
    assert sim.sim.tls_ca_pem is not None
    code, out, err = run(
        "-v",
        "bootstrap",
        OPN,
        "--host",
        "127.0.0.1",
        "--port",
        str(sim.sim.port),
        "--ca",
        write(files / "fresh-ca2.pem", sim.sim.tls_ca_pem),
        "--bootstrap-credentials",
        write(files / "wrong-day0.yaml", wrong),
        "--force",
    )
    assert code == 1
    assert "✗ BootstrapFailed" in out and "refused the credentials" in out
    assert "without --outputs FILE they are not saved" in err


# --------------------------------------------------------------------------- Cisco IOS-XE over SSH


@pytest.fixture(scope="module")
def iosxe() -> Iterator[SimulatorThread]:
    creds = Credentials(username="netops", password=secret("Ios-Pw"))
    sim = SimulatorThread("iosxe", SimulatorConfig(tls=True, credentials=creds))
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def ios(iosxe: SimulatorThread, files: Path) -> list[str]:
    sim = iosxe.sim
    assert isinstance(sim, IosXeSimulator) and sim.ssh_port is not None and sim.tls_ca_pem is not None
    creds = {"username": sim.credentials.username, "password": sim.credentials.password}
    return [
        "--host",
        "127.0.0.1",
        "--port",
        f"cli={sim.ssh_port}",
        "--port",
        f"restconf={sim.port}",
        "--credentials",
        write(files / "ios-creds.yaml", creds),
        "--ca",
        write(files / "ios-ca.pem", sim.tls_ca_pem),
    ]


def test_ssh_needs_a_host_key(ios: list[str]) -> None:
    code, _, err = run("exec", CISCO, *ios, "-s", "interfaces", "--op", "list")
    assert code == 1
    line = one_error_line(err)
    assert "no host key to verify" in line and "--trust-on-first-use" in line


def test_ssh_health_and_list_with_tofu_then_pinned(
    ios: list[str], iosxe: SimulatorThread, files: Path
) -> None:
    _, out, err = run("health", CISCO, *ios, "--trust-on-first-use", ok=True)
    assert "ssh_show_version" in out and "✓ healthy" in out
    # the key seen is printed, ready for a known_hosts file
    hint = next(line for line in err.splitlines() if "give --known-hosts FILE holding:" in line)
    known = write(files / "known_hosts", hint.split("holding: ", 1)[1] + "\n")
    assert iosxe.sim.ssh_host_public_key is not None
    assert iosxe.sim.ssh_host_public_key.split()[1] in known_text(known)

    _, out, err = run(
        "exec", CISCO, *ios, "--known-hosts", known, "-s", "interfaces", "--op", "list", ok=True
    )
    assert "Response of VNF operation: interfaces/list (" in out
    row = next(line for line in out.splitlines() if "GigabitEthernet1 " in line)
    assert "/24" in row  # the computed ipv4 field
    assert "trust" not in err

    _, out, _ = run(
        "exec", CISCO, *ios, "--known-hosts", known, "-s", "interfaces", "--op", "list", "-o", "json", ok=True
    )
    names = [i["name"] for i in json.loads(out)["items"]]
    assert "GigabitEthernet1" in names


def known_text(path: str) -> str:
    return Path(path).read_text()


def test_ssh_wrong_host_key_is_refused(ios: list[str], files: Path) -> None:
    other = generate_other_key()
    code, _, err = run(
        "exec",
        CISCO,
        *ios,
        "--known-hosts",
        write(files / "wrong_kh", other),
        "-s",
        "interfaces",
        "--op",
        "list",
    )
    assert code == 1
    line = one_error_line(err)
    assert "host key" in line and "--known-hosts" in line


def generate_other_key() -> str:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()
    return f"127.0.0.1 {key[0]} {key[1]}\n[127.0.0.1]:1 {key[0]} {key[1]}\n"


ROUTES_DICTIONARY = r"""
info: {name: CLI test routes, vendor: test, product: IOS, version: 0.0.1}
credentials:
  username: {description: SSH user.}
  password: {description: SSH password.}
connections:
  cli:
    type: ssh
    port: 22
    username: "{{ credentials.username }}"
    password: "{{ credentials.password }}"
    mode: interactive
    prompts:
      prompt: '[\r\n][\w.@()/:-]+(\(config[^)]*\))?[#>] ?$'
    onConnect: [terminal length 0]
    errorPatterns: ['^%\s?(Invalid|Incomplete|Ambiguous)']
services:
  routes:
    fields:
      prefix: {type: cidr, required: true}
      next_hop: {type: ipv4, required: true}
    identity: {key: [prefix, next_hop]}
    operations:
      list:
        cli: {commands: ["show running-config"]}
        response:
          format: cli
          regex:
            pattern: '^ip route (?P<network>\d+\.\d+\.\d+\.\d+) (?P<mask>\d+\.\d+\.\d+\.\d+) (?P<next_hop>\d+\.\d+\.\d+\.\d+)\s*$'
          fields: {next_hop: next_hop}
          compute:
            prefix: "{{ row.network ~ '/' ~ (row.mask | prefixlen) }}"
      create:
        cli:
          commands:
            - configure terminal
            - ip route {{ item.prefix | network }} {{ item.prefix | netmask }} {{ item.next_hop }}
            - end
      delete:
        cli:
          commands:
            - configure terminal
            - no ip route {{ actual.prefix | network }} {{ actual.prefix | netmask }} {{ actual.next_hop }}
            - end
"""


def test_ssh_create_list_delete(ios: list[str], iosxe: SimulatorThread, files: Path) -> None:
    routes = write(files / "routes.yaml", ROUTES_DICTIONARY)
    run("validate", routes, ok=True)
    creds = ios[ios.index("--credentials") + 1]
    target = ["--host", "127.0.0.1", "--port", str(iosxe.sim.ssh_port), "--credentials", creds]
    exec_ = ["exec", routes, *target, "--trust-on-first-use"]
    item = "{prefix: 10.77.0.0/16, next_hop: 192.0.2.7}"
    run(*exec_, "-s", "routes", "--op", "create", "--item", item, ok=True)
    _, out, _ = run(*exec_, "-s", "routes", "--op", "list", "-o", "json", ok=True)
    assert {"prefix": "10.77.0.0/16", "next_hop": "192.0.2.7"} in json.loads(out)["items"]
    # the provider's own list (`| include`) sees it too
    _, out, _ = run(
        "exec", CISCO, *ios, "--trust-on-first-use", "-s", "static_routes", "--op", "list", ok=True
    )
    assert "10.77.0.0/16" in out
    # delete finds the device's item by its key, the template uses it as `actual`
    _, out, _ = run(*exec_, "-s", "routes", "--op", "delete", "--item", item, ok=True)
    assert "✓ routes/delete: ok" in out
    _, out, _ = run(*exec_, "-s", "routes", "--op", "list", "-o", "json", ok=True)
    assert json.loads(out)["items"] == []
    code, _, err = run(*exec_, "-s", "routes", "--op", "list", "--param", "x=1")
    assert code == 2 and "routes/list declares no parameters" in err


def _without_option(args: list[str], option: str) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == option:
            skip = True
            continue
        out.append(a)
    return out


def test_ssh_provider_config_mode_create(ios: list[str]) -> None:
    item = "{prefix: 10.78.0.0/16, next_hop: 192.0.2.8}"
    run(
        "exec",
        CISCO,
        *ios,
        "--trust-on-first-use",
        "-s",
        "static_routes",
        "--op",
        "create",
        "--item",
        item,
        ok=True,
    )
    run(
        "exec",
        CISCO,
        *ios,
        "--trust-on-first-use",
        "-s",
        "static_routes",
        "--op",
        "delete",
        "--item",
        item,
        ok=True,
    )


# --------------------------------------------------------------------------- --secret (Kubernetes)


def test_credentials_from_a_kubernetes_secret(
    kubectl: Any, namespace: str, control_plane: Any, opn: list[str], opn_creds: dict[str, str]
) -> None:
    kubectl(
        "create",
        "secret",
        "generic",
        "fw-api",
        "-n",
        namespace,
        f"--from-literal=api_key={opn_creds['api_key']}",
        f"--from-literal=api_secret={opn_creds['api_secret']}",
    )
    target = _without_option(opn, "--credentials")
    kube = ["--kubeconfig", str(control_plane.kubeconfig)]
    _, out, _ = run("health", *target, "--secret", f"{namespace}/fw-api", *kube, ok=True)
    assert "✓ healthy" in out
    run(
        "exec",
        *target,
        "--secret",
        f"{namespace}/fw-api",
        *kube,
        "-s",
        "firewall_rules",
        "--op",
        "list",
        ok=True,
    )

    code, _, err = run(
        "exec", *target, "--secret", f"{namespace}/nope", *kube, "-s", "firewall_rules", "--op", "list"
    )
    assert code == 1
    assert f"--secret: Secret {namespace}/nope not found" in one_error_line(err)

    # a required credential missing from the Secret (Cisco's password; nothing is sent)
    kubectl("create", "secret", "generic", "half", "-n", namespace, "--from-literal=username=netops")
    code, _, err = run(
        "exec",
        CISCO,
        "--host",
        "192.0.2.1",
        "--secret",
        f"{namespace}/half",
        *kube,
        "-s",
        "acl",
        "--op",
        "list",
    )
    assert code == 1
    assert f"--secret {namespace}/half: the Secret has no key 'password'" in one_error_line(err)


# --------------------------------------------------------------------------- reach: jump host, proxy


@pytest.fixture(scope="module")
def servers() -> Any:
    if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs root and openssh-server (see docs/transports.md)")
    from tests.integration.transport import transport_servers

    return transport_servers


@pytest.fixture(scope="module")
def jump(servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    user = servers.make_ssh_user(tmp_path_factory.mktemp("cli-ssh-user"))
    sshd = servers.Sshd(
        name="cli-jump",
        dir=tmp_path_factory.mktemp("cli-jump"),
        address="127.0.0.1",
        port=servers.free_port(),
        user=user,
    )
    sshd.start()
    yield sshd
    sshd.stop()


@pytest.fixture(scope="module")
def hidden_opnsense(opn_creds: dict[str, str]) -> Iterator[SimulatorThread]:
    """An OPNsense on 127.0.0.2, with a certificate for that address."""
    creds = Credentials(username="root", password=secret("root-pw"), **opn_creds)
    sim = SimulatorThread(
        "opnsense", SimulatorConfig(host="127.0.0.2", tls=True, credentials=creds, ssh=False)
    )
    sim.sim.tls = generate_tls_material(ip="127.0.0.2")
    sim.start()
    yield sim
    sim.stop()


def test_through_a_jump_host(
    servers: Any, jump: Any, hidden_opnsense: SimulatorThread, opn_creds: dict[str, str], files: Path
) -> None:
    sim = hidden_opnsense.sim
    assert sim.tls_ca_pem is not None
    password_file = write(files / "jump-pw", servers.PASSWORD + "\n")
    SECRETS.add(servers.PASSWORD)
    known = write(files / "jump_known_hosts", f"[127.0.0.1]:{jump.port} {jump.host_key_line}\n")
    args = [
        OPN,
        "--host",
        "127.0.0.2",
        "--port",
        str(sim.port),
        "--credentials",
        write(files / "hidden-creds.yaml", opn_creds),
        "--ca",
        write(files / "hidden-ca.pem", sim.tls_ca_pem),
        "--jump-host",
        f"{servers.USER}@127.0.0.1:{jump.port}",
        "--jump-known-hosts",
        known,
    ]
    _, out, _ = run("health", *args, "--jump-password-file", password_file, ok=True)
    assert "✓ healthy" in out
    run("exec", *args, "--jump-key", str(jump.user.key_path), "-s", "firewall_rules", "--op", "list", ok=True)
    servers.wait_until(
        lambda: f"target 127.0.0.2 port {sim.port}" in jump.log_text(), "the jump host's forward log line"
    )

    wrong = write(files / "jump_wrong", generate_other_key())
    code, _, err = run(
        "health",
        *_without_option(args, "--jump-known-hosts"),
        "--jump-known-hosts",
        wrong,
        "--jump-key",
        str(jump.user.key_path),
    )
    assert code == 1  # the bastion's key does not match: health reports it
    code, _, err = run(
        "exec",
        *_without_option(args, "--jump-known-hosts"),
        "--jump-known-hosts",
        wrong,
        "--jump-password-file",
        password_file,
        "-s",
        "firewall_rules",
        "--op",
        "list",
    )
    assert code == 1 and "jump host" in one_error_line(err)


def test_through_an_http_proxy(servers: Any, opn: list[str], tmp_path: Path) -> None:
    if not Path("/usr/bin/tinyproxy").exists():
        pytest.skip("needs tinyproxy")
    with servers.run_tinyproxy(tmp_path) as proxy:
        _, out, _ = run("health", *opn, "--proxy", proxy.url, ok=True)
        assert "✓ healthy" in out
        port = opn[opn.index("--port") + 1]
        servers.wait_until(lambda: f"CONNECT 127.0.0.1:{port}" in proxy.log_text(), "tinyproxy's log")


@pytest.fixture(scope="module")
def broker(files: Path) -> Iterator[tuple[str, str, str]]:
    """The reference broker over TLS: (URL, token file, CA file)."""
    import socket
    import time

    tls = generate_tls_material()
    token = write(files / "broker-token", secret("broker-token") + "\n")
    cert, key = write(files / "broker.crt", tls.cert_pem), write(files / "broker.key", tls.key_pem)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vnf_operator.broker", "--listen", f"127.0.0.1:{port}", "--token-file", token,
         "--tls-cert", cert, "--tls-key", key, "--allow", "127.0.0.0/8", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the broker did not start"
            time.sleep(0.05)
    yield f"https://127.0.0.1:{port}", token, write(files / "broker-ca.pem", tls.ca_pem)
    proc.terminate()
    proc.wait(10)


def test_through_a_broker(broker: tuple[str, str, str], opn: list[str], files: Path) -> None:
    url, token, ca = broker
    relay = ["--broker", url, "--broker-token-file", token, "--broker-ca", ca]
    _, out, _ = run("health", *opn, *relay, ok=True)
    assert "✓ healthy" in out
    run("exec", *opn, *relay, "-s", "firewall_rules", "--op", "list", ok=True)

    wrong = write(files / "wrong-broker-token", secret("wrong-broker-token"))
    relay[relay.index(token)] = wrong
    code, _, err = run("-v", "exec", *opn, *relay, "-s", "firewall_rules", "--op", "list")
    assert code == 1
    assert err.startswith("vnfctl: error: ") and "broker" in err.splitlines()[0]


# --------------------------------------------------------------------------- simulate


def test_simulate_runs_in_the_foreground(files: Path) -> None:
    password = secret("Sim-Pw")
    creds = write(files / "sim-creds.yaml", {"api_key": secret("sim-key"), "api_secret": password})
    tls_dir = files / "sim-tls"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vnf_operator.cli.main", "simulate", "opnsense", "--tls", "--tls-dir", str(tls_dir),
         "--credentials-file", creds, "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while not any(line.lstrip().startswith("credentials:") for line in seen):
            seen.append(lines.get(timeout=60))
        api = next(line.split()[-1] for line in seen if line.lstrip().startswith("api:"))
        ca = next(line.split()[-1] for line in seen if line.lstrip().startswith("tls CA:"))
        port = api.rsplit(":", 1)[1]
        assert Path(ca).parent == tls_dir
        target = [OPN, "--host", "127.0.0.1", "--port", port, "--ca", ca]
        target += [
            "--credentials",
            write(files / "sim-op-creds.yaml", yaml.safe_load(Path(creds).read_text())),
        ]
        _, out, _ = run("health", *target, ok=True)
        assert "✓ healthy" in out
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    for value in SECRETS:
        assert value not in "".join(seen) + err


def test_simulate_unknown_vendor() -> None:
    code, _, err = run("simulate", "nosuchvendor")
    assert code == 2 and "unknown vendor" in err and "opnsense" in err
