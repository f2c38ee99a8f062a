"""End to end against the OPNsense simulator: converge, edit, drift, dry-run, operations, delete."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators.base import Credentials, SimulatorConfig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RULES = [
    {
        "description": "allow-ssh",
        "action": "pass",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "22",
    },
    {
        "description": "allow-https",
        "action": "pass",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "443",
    },
    {
        "description": "block-telnet",
        "action": "block",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "23",
    },
]


@pytest.fixture(scope="module")
def api_creds() -> dict[str, str]:
    return {"api_key": secrets.token_hex(16), "api_secret": "S3cret-" + secrets.token_urlsafe(20)}


@pytest.fixture(scope="module")
def opnsense(api_creds: dict[str, str]) -> Iterator[SimulatorThread]:
    creds = Credentials(username="root", password="x" * 12, **api_creds)
    sim = SimulatorThread("opnsense", SimulatorConfig(tls=True, credentials=creds, ssh=False))
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path,
    kubectl: Any,
    tmp_path_factory: pytest.TempPathFactory,
    api_creds: dict[str, str],
) -> Iterator[OperatorProcess]:
    kubectl("apply", "--server-side", "-f", str(REPO / "providers" / "opnsense.yaml"))
    proc = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("op") / "operator.log").start()
    yield proc
    proc.stop()
    out = proc.output()
    assert "Traceback" not in out, out[-4000:]
    for value in api_creds.values():
        assert value not in out, "a credential leaked into the operator log"


def rules_on_device(sim: SimulatorThread) -> list[dict[str, Any]]:
    state = sim.call(_dump(sim))
    rules = state["running"]["filter_rules"]
    return list(rules.values()) if isinstance(rules, dict) else list(rules)


async def _dump(sim: SimulatorThread) -> dict[str, Any]:
    return sim.sim.dump_state()


def make_appliance(ns: str, sim: SimulatorThread, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    services = objects.firewall_rules(rules)
    ports = {"api": sim.sim.port}
    return objects.appliance(
        ns, "fw", "opnsense", ports=ports, credentials="fw-api", ca="fw-ca", services=services, **spec
    )


def setup_secrets(kubectl: Any, ns: str, sim: SimulatorThread, creds: dict[str, str]) -> None:
    assert sim.sim.tls_ca_pem is not None
    objects.apply(kubectl, *objects.opnsense_secrets(ns, "fw", ca_pem=sim.sim.tls_ca_pem, **creds))


def ready_at(kubectl: Any, ns: str, generation: int | None = None) -> dict[str, Any]:
    return objects.wait_ready(kubectl, ns, "fw", generation)


def ours(rules: list[dict[str, Any]], ns: str) -> list[dict[str, Any]]:
    return [r for r in rules if f"vnf:{ns}/fw" in str(r.get("description", ""))]


def test_converge_edit_drift_and_delete(kubectl, namespace, opnsense, operator, api_creds) -> None:  # type: ignore[no-untyped-def]
    # A foreign rule that exists before the operator: it must survive `replaced`.
    setup_secrets(kubectl, namespace, opnsense, api_creds)
    objects.apply(kubectl, make_appliance(namespace, opnsense, RULES))
    obj = ready_at(kubectl, namespace, 1)
    device = ours(rules_on_device(opnsense), namespace)
    assert [r["description"].split()[-1] for r in device] == [r["description"] for r in RULES]
    assert condition(obj, "InSync")["status"] == "True"
    svc = obj["status"]["services"]["firewall_rules"]
    assert svc["desired"] == 3 and svc["lastPlan"]["create"] == 3
    assert len(svc["managedIds"]) == 3

    # Edit one rule: exactly one device change.
    edited = [dict(r) for r in RULES]
    edited[1]["destination_port"] = "8443"
    objects.apply(kubectl, make_appliance(namespace, opnsense, edited))
    obj = ready_at(kubectl, namespace, 2)
    plan = obj["status"]["services"]["firewall_rules"]["lastPlan"]
    assert (plan["create"], plan["update"], plan["delete"]) == (0, 1, 0)
    device = ours(rules_on_device(opnsense), namespace)
    assert [r["destination_port"] for r in device] == ["22", "8443", "23"]

    # Dry run: a removal is planned and shown, the device keeps the rule.
    objects.apply(kubectl, make_appliance(namespace, opnsense, edited[:2], dryRun=True))
    obj = ready_at(kubectl, namespace, 3)
    assert condition(obj, "Ready")["reason"] == "DryRun"
    assert any("delete" in line for line in obj["status"]["plan"])
    assert len(ours(rules_on_device(opnsense), namespace)) == 3

    # Back to live with two rules: the third is deleted (it is ours), and applied.
    objects.apply(kubectl, make_appliance(namespace, opnsense, edited[:2]))
    ready_at(kubectl, namespace, 4)
    assert len(ours(rules_on_device(opnsense), namespace)) == 2

    # Deleting the appliance removes its rules from the device (deletionPolicy Delete).
    kubectl("delete", "vnfappliance", "fw", "-n", namespace, "--wait=false")
    wait_for(lambda: not ours(rules_on_device(opnsense), namespace), timeout=90, what="rules removed")
    wait_for(
        lambda: kubectl("get", "vnfappliance", "fw", "-n", namespace, check=False).returncode != 0,
        timeout=60,
        what="appliance gone after its finalizer",
    )


def test_invalid_item_stalls_without_touching_the_device(
    kubectl, namespace, opnsense, operator, api_creds
) -> None:  # type: ignore[no-untyped-def]
    setup_secrets(kubectl, namespace, opnsense, api_creds)
    before = len(rules_on_device(opnsense))
    bad = [dict(RULES[0]), {**RULES[1], "action": "allow"}]
    objects.apply(kubectl, make_appliance(namespace, opnsense, bad))

    def stalled() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfappliance", "fw", "-n", namespace)
        return obj if condition(obj, "Stalled").get("status") == "True" else None

    obj = wait_for(stalled, what="Stalled=True for an invalid item")
    msg = condition(obj, "Ready")["message"]
    assert "spec.services.firewall_rules.items[1].action" in msg, msg
    assert "allow" in msg
    assert len(rules_on_device(opnsense)) == before


def test_operation_lists_rules_and_kubectl_wait(kubectl, namespace, opnsense, operator, api_creds) -> None:  # type: ignore[no-untyped-def]
    setup_secrets(kubectl, namespace, opnsense, api_creds)
    objects.apply(kubectl, make_appliance(namespace, opnsense, RULES[:2]))
    # `kubectl wait` on the Ready condition works as users script it.
    kubectl("wait", "--for=condition=Ready", "vnfappliance/fw", "-n", namespace, "--timeout=90s")
    op = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfOperation",
        "metadata": {"name": "list-rules", "namespace": namespace},
        "spec": {"applianceRef": {"name": "fw"}, "service": "firewall_rules", "operation": "list"},
    }
    objects.apply(kubectl, op)

    def finished() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfoperation", "list-rules", "-n", namespace)
        return obj if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    obj = wait_for(finished, what="VnfOperation finished")
    status = obj["status"]
    assert status["phase"] == "Succeeded", status
    descriptions = [str(r.get("description", "")) for r in status["rows"]]
    assert any(d.endswith("allow-ssh") for d in descriptions), descriptions
    assert "description" in status["columns"]
    printed = kubectl("get", "vnfoperation", "list-rules", "-n", namespace).stdout
    assert "Succeeded" in printed

    # An operation the service does not have fails with a clear message.
    bad = {**op, "metadata": {"name": "bad-op", "namespace": namespace}}
    bad["spec"] = {**op["spec"], "operation": "reboot"}
    objects.apply(kubectl, bad)

    def failed() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfoperation", "bad-op", "-n", namespace)
        return obj if (obj.get("status") or {}).get("phase") == "Failed" else None

    obj = wait_for(failed, what="VnfOperation failed")
    assert "spec.operation" in obj["status"]["error"]


def test_provider_in_use_is_not_deleted(kubectl, namespace, opnsense, operator, api_creds) -> None:  # type: ignore[no-untyped-def]
    # A provider of its own, so no other test's appliance keeps it in use.
    provider = f"opnsense-{namespace}"
    text = (
        (REPO / "providers" / "opnsense.yaml")
        .read_text()
        .replace("name: opnsense\n", f"name: {provider}\n", 1)
    )
    kubectl("apply", "--server-side", "-f", "-", input=text)
    setup_secrets(kubectl, namespace, opnsense, api_creds)
    obj = make_appliance(namespace, opnsense, RULES[:1])
    obj["spec"]["providerRef"] = {"name": provider}
    objects.apply(kubectl, obj)
    ready_at(kubectl, namespace, 1)
    kubectl("delete", "vnfprovider", provider, "--wait=false")

    def marked() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfprovider", provider)
        return obj if obj.get("metadata", {}).get("deletionTimestamp") else None

    # It stays (its finalizer waits for the appliance), and the appliance keeps working.
    obj = wait_for(marked, what="provider marked for deletion")
    assert obj["metadata"].get("finalizers"), obj["metadata"]
    assert condition(get_json(kubectl, "vnfappliance", "fw", "-n", namespace), "Ready")["status"] == "True"
    kubectl("delete", "vnfappliance", "fw", "-n", namespace, "--wait=false")
    wait_for(
        lambda: kubectl("get", "vnfprovider", provider, check=False).returncode != 0,
        timeout=120,
        what="provider deleted once unused",
    )
