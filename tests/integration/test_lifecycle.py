"""Lifecycle end to end (docs/lifecycle.md): revisions, the health gate with automatic rollback,
manual rollback with the rollback-to annotation, and backups before an `overridden` apply.

The simulated OPNsense here turns unhealthy while a filter rule described `BREAKS-HEALTH` is
active: its firmware status endpoint (the provider's `firmware_status` health check) answers 503,
standing in for a change that cuts the appliance's management plane.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators.base import json_response, set_template
from vnf_operator.testing.simulators.opnsense import OpnsenseSimulator

pytestmark = pytest.mark.integration

BREAKER = "BREAKS-HEALTH"
RULES = [objects.filter_rule("allow-ssh", "22"), objects.filter_rule("allow-https", "443")]


class FragileOpnsense(OpnsenseSimulator):
    """OPNsense whose API health check fails while a rule described BREAKS-HEALTH is active."""

    def broken(self) -> bool:
        return any(BREAKER in str(r.get("description", "")) for r in self.running.filter_rules.values())

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.path.rstrip("/").lower().endswith("/core/firmware/status") and self.broken():
            set_template(request, "/api/core/firmware/status")
            return json_response({"errorMessage": "firmware service unavailable", "errorTitle": "Error"}, 503)
        return await super().handle_api(request)


# The credentials fixture of `objects`.
api_creds = objects.api_creds


@pytest.fixture
def opnsense(api_creds: dict[str, str]) -> Iterator[SimulatorThread]:
    with objects.opnsense_device(api_creds, FragileOpnsense) as sim:
        yield sim


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path,
    kubectl: Any,
    tmp_path_factory: pytest.TempPathFactory,
    api_creds: dict[str, str],
) -> Iterator[OperatorProcess]:
    objects.install_provider(kubectl, "opnsense")
    with objects.operator_process(
        operator_kubeconfig,
        tmp_path_factory.mktemp("op"),
        env={"VNF_REVISION_HISTORY_LIMIT": "4"},
        never_logged=api_creds.values(),
    ) as proc:
        yield proc


# --------------------------------------------------------------------------- helpers


def setup_secrets(kubectl: Any, ns: str, sim: SimulatorThread, creds: dict[str, str]) -> None:
    assert sim.sim.tls_ca_pem is not None
    objects.apply(kubectl, *objects.opnsense_secrets(ns, "fw", ca_pem=sim.sim.tls_ca_pem, **creds))


def appliance(ns: str, sim: SimulatorThread, rules: list[dict[str, Any]], **service: Any) -> dict[str, Any]:
    return objects.appliance(
        ns,
        "fw",
        "opnsense",
        ports={"api": sim.sim.port},
        credentials="fw-api",
        ca="fw-ca",
        services={"firewall_rules": {"policy": "replaced", "items": rules, **service}},
    )


def apply(kubectl: Any, obj: dict[str, Any]) -> None:
    objects.apply(kubectl, obj)


def annotate(kubectl: Any, ns: str, *pairs: str) -> None:
    objects.annotate(kubectl, ns, "fw", *pairs)


def settled(kubectl: Any, ns: str, generation: int, ready: str, reason: str | None = None) -> dict[str, Any]:
    """Wait until status reflects `generation` with Ready=`ready` (and reason)."""
    return objects.settled(kubectl, ns, "fw", generation, ready, reason)


def ours(sim: SimulatorThread, ns: str) -> list[dict[str, Any]]:
    rules = objects.device_state(sim)["running"]["filter_rules"]
    rows = list(rules.values()) if isinstance(rules, dict) else list(rules)
    return [r for r in rows if f"vnf:{ns}/fw" in str(r.get("description", ""))]


def device_rules(sim: SimulatorThread, ns: str) -> list[tuple[str, str]]:
    return [(r["description"].split()[-1], r["destination_port"]) for r in ours(sim, ns)]


def revisions(kubectl: Any, ns: str) -> dict[int, dict[str, Any]]:
    items = get_json(kubectl, "controllerrevisions", "-n", ns).get("items", [])
    return {int(i["revision"]): i for i in items}


def events(kubectl: Any, ns: str, reason: str) -> list[dict[str, Any]]:
    return objects.events(kubectl, ns, reason, "fw")


# --------------------------------------------------------------------------- tests


def test_revisions_health_gate_and_manual_rollback(kubectl, namespace, opnsense, operator, api_creds) -> None:  # type: ignore[no-untyped-def]
    setup_secrets(kubectl, namespace, opnsense, api_creds)

    # 1. Every spec applied in sync is a revision; the last good one is tracked.
    apply(kubectl, appliance(namespace, opnsense, RULES))
    obj = settled(kubectl, namespace, 1, "True")
    assert obj["status"]["revision"] == {"current": 1, "lastGood": 1}
    revs = revisions(kubectl, namespace)
    assert list(revs) == [1]
    owner = revs[1]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("VnfAppliance", "fw", obj["metadata"]["uid"])
    assert revs[1]["data"]["services"]["firewall_rules"]["items"] == RULES
    assert revs[1]["data"]["providerRef"] == {"name": "opnsense"}

    edited = [RULES[0], {**RULES[1], "destination_port": "8443"}]
    apply(kubectl, appliance(namespace, opnsense, edited))
    obj = settled(kubectl, namespace, 2, "True")
    assert obj["status"]["revision"] == {"current": 2, "lastGood": 2}
    assert device_rules(opnsense, namespace) == [("allow-ssh", "22"), ("allow-https", "8443")]

    # 2. A change that makes the appliance unhealthy is rolled back to the last good revision.
    bad = [*edited, {"description": BREAKER, "action": "block", "interface": "wan", "protocol": "TCP", "destination_port": "8080"}]  # fmt: skip
    apply(kubectl, appliance(namespace, opnsense, bad))
    obj = settled(kubectl, namespace, 3, "False", "RolledBack")
    ready = condition(obj, "Ready")
    assert "firmware_status" in ready["message"], ready
    assert "rolled back to revision 2" in ready["message"], ready
    assert condition(obj, "Stalled")["status"] == "True"  # not retried until the spec changes
    assert condition(obj, "InSync")["reason"] == "RolledBack"
    assert obj["status"]["revision"]["current"] == 2 and obj["status"]["revision"]["lastGood"] == 2
    assert device_rules(opnsense, namespace) == [("allow-ssh", "22"), ("allow-https", "8443")]
    assert not opnsense.sim.broken()
    revs = revisions(kubectl, namespace)
    failed = revs[3]["metadata"]["annotations"]
    assert "firmware_status" in failed["vnf.operators.dev/failed"]
    assert failed["vnf.operators.dev/failed-generation"] == "3"
    warnings = events(kubectl, namespace, "RolledBack")
    assert warnings and warnings[0]["type"] == "Warning"
    assert "firmware_status" in warnings[0]["message"]

    # A new reconcile-requested value retries the same spec: it fails and is rolled back again.
    annotate(kubectl, namespace, "vnf.operators.dev/reconcile-requested=retry-1")
    wait_for(
        lambda: (
            revisions(kubectl, namespace)[3]["metadata"]["annotations"].get(
                "vnf.operators.dev/failed-request"
            )
            == "retry-1"
        ),
        timeout=120,
        what="the failed spec retried once on request",
    )
    wait_for(lambda: len(events(kubectl, namespace, "RolledBack")) >= 2, what="a second rollback event")
    obj = settled(kubectl, namespace, 3, "False", "RolledBack")
    assert device_rules(opnsense, namespace) == [("allow-ssh", "22"), ("allow-https", "8443")]

    # 3. A changed spec is applied again; it becomes the new current and last good revision.
    fixed = [*edited, {**bad[2], "description": "block-8080"}]
    apply(kubectl, appliance(namespace, opnsense, fixed))
    obj = settled(kubectl, namespace, 4, "True")
    assert obj["status"]["revision"]["current"] == 4 and obj["status"]["revision"]["lastGood"] == 4
    assert obj["status"]["revision"].get("failed") is None
    assert [d for d, _ in device_rules(opnsense, namespace)] == ["allow-ssh", "allow-https", "block-8080"]

    # 4. Manual rollback: the annotation pins revision 1 until it is removed.
    annotate(kubectl, namespace, "vnf.operators.dev/rollback-to=1")
    wait_for(
        lambda: device_rules(opnsense, namespace) == [("allow-ssh", "22"), ("allow-https", "443")],
        timeout=120,
        what="revision 1 applied",
    )
    obj = wait_for(
        lambda: (
            (o := get_json(kubectl, "vnfappliance", "fw", "-n", namespace))
            and (o.get("status") or {}).get("revision", {}).get("current") == 1
            and o
        ),
        timeout=60,
        what="status.revision.current = 1",
    )
    assert condition(obj, "Ready")["status"] == "True"
    assert "pinned to revision 1" in condition(obj, "Ready")["message"]
    assert obj["status"]["revision"]["lastGood"] == 1
    manual = [e for e in events(kubectl, namespace, "RolledBack") if e["type"] == "Normal"]
    assert manual and "rolled back to revision 1" in manual[0]["message"]

    # An unknown revision is refused without touching the device.
    annotate(kubectl, namespace, "vnf.operators.dev/rollback-to=99")
    obj = wait_for(
        lambda: (
            (o := get_json(kubectl, "vnfappliance", "fw", "-n", namespace))
            and condition(o, "Ready").get("reason") == "RollbackTargetNotFound"
            and o
        ),
        timeout=60,
        what="RollbackTargetNotFound",
    )
    assert "revision 99 does not exist" in condition(obj, "Ready")["message"]
    assert condition(obj, "Stalled")["status"] == "True"
    assert device_rules(opnsense, namespace) == [("allow-ssh", "22"), ("allow-https", "443")]

    # Removing the annotation returns to the spec (revision 4, unchanged number).
    kubectl("annotate", "vnfappliance", "fw", "-n", namespace, "vnf.operators.dev/rollback-to-")
    wait_for(
        lambda: (
            [d for d, _ in device_rules(opnsense, namespace)] == ["allow-ssh", "allow-https", "block-8080"]
        ),
        timeout=120,
        what="the spec applied again",
    )
    obj = wait_for(
        lambda: (
            (o := get_json(kubectl, "vnfappliance", "fw", "-n", namespace))
            and (o.get("status") or {}).get("revision", {}).get("current") == 4
            and condition(o, "Ready").get("status") == "True"
            and o
        ),
        timeout=60,
        what="status.revision.current = 4",
    )
    assert sorted(revisions(kubectl, namespace)) == [1, 2, 3, 4]

    # 5. History is bounded (4 in this module): a fifth state prunes the oldest revision.
    apply(kubectl, appliance(namespace, opnsense, fixed[:1]))
    obj = settled(kubectl, namespace, 5, "True")
    assert obj["status"]["revision"] == {"current": 5, "lastGood": 5}
    assert sorted(revisions(kubectl, namespace)) == [2, 3, 4, 5]
    # Applying an earlier state again reuses its revision (and number).
    apply(kubectl, appliance(namespace, opnsense, edited))
    obj = settled(kubectl, namespace, 6, "True")
    assert obj["status"]["revision"] == {"current": 2, "lastGood": 2}


def test_backup_before_an_overridden_apply(kubectl, namespace, opnsense, operator, api_creds) -> None:  # type: ignore[no-untyped-def]
    setup_secrets(kubectl, namespace, opnsense, api_creds)
    protected = [{"description": "anti-lockout"}]
    apply(kubectl, appliance(namespace, opnsense, RULES, policy="overridden", protected=protected))
    obj = settled(kubectl, namespace, 1, "True")
    assert backup_names(kubectl, namespace) == ["fw-backup-0"]
    backup = get_json(kubectl, "secret", "fw-backup-0", "-n", namespace)
    assert backup["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    config = base64.b64decode(backup["data"]["config"]).decode()
    assert "<opnsense" in config
    meta = json.loads(base64.b64decode(backup["data"]["meta"]))
    assert "overridden apply of firewall_rules" in meta["reason"]
    assert events(kubectl, namespace, "BackupTaken")

    # A restore request (a multipart upload of config.xml) is run and consumed. The backup predates
    # the first apply, so the sync after it puts the spec's rules back: an overridden change, which
    # takes the next backup slot. A name that is not one of its backups is refused.
    annotate(
        kubectl,
        namespace,
        "vnf.operators.dev/restore-backup=fw-backup-0",
        "vnf.operators.dev/reconcile-requested=1",
    )
    wait_for(lambda: events(kubectl, namespace, "Restored"), timeout=120, what="Restored event")
    annotate(
        kubectl,
        namespace,
        "vnf.operators.dev/restore-backup=fw-api",
        "vnf.operators.dev/reconcile-requested=2",
    )
    wait_for(lambda: events(kubectl, namespace, "RestoreFailed"), timeout=120, what="RestoreFailed event")
    assert "is not a backup of this appliance" in events(kubectl, namespace, "RestoreFailed")[0]["message"]
    wait_for(
        lambda: (
            "vnf.operators.dev/restore-backup"
            not in (
                get_json(kubectl, "vnfappliance", "fw", "-n", namespace)["metadata"].get("annotations") or {}
            )
        ),
        what="the restore annotation consumed",
    )
    wait_for(
        lambda: backup_names(kubectl, namespace) == ["fw-backup-0", "fw-backup-1"],
        what="the backup taken before the spec's rules went back",
    )
    wait_for(
        lambda: sorted(device_rules(opnsense, namespace)) == [("allow-https", "443"), ("allow-ssh", "22")],
        what="the spec's rules back on the device",
    )

    # The next overridden change takes the next backup slot.
    apply(kubectl, appliance(namespace, opnsense, RULES[:1], policy="overridden", protected=protected))
    settled(kubectl, namespace, 2, "True")
    assert backup_names(kubectl, namespace) == ["fw-backup-0", "fw-backup-1", "fw-backup-2"]


def backup_names(kubectl: Any, ns: str) -> list[str]:
    found = get_json(kubectl, "secrets", "-n", ns, "-l", "vnf.operators.dev/kind=backup").get("items", [])
    return sorted(b["metadata"]["name"] for b in found)
