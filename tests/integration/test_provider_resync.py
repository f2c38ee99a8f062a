"""`reconcile-requested` on a VnfProvider re-checks every appliance using it, with one write."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, get_json, wait_for

from vnf_operator.testing.demo import SimulatorThread

pytestmark = pytest.mark.integration

# The credentials, simulator and operator (providers/opnsense.yaml) fixtures of `objects`.
api_creds, device, operator = objects.api_creds, objects.opnsense, objects.opnsense_operator
NAMES = ("fw-a", "fw-b")


def last_sync(kubectl: Any, ns: str, name: str) -> str:
    return str((get_json(kubectl, "vnfappliance", name, "-n", ns).get("status") or {}).get("lastSyncTime"))


def test_provider_annotation_reconciles_its_appliances(
    kubectl: Any,
    namespace: str,
    device: SimulatorThread,
    operator: OperatorProcess,
    api_creds: dict[str, str],
) -> None:
    assert device.sim.tls_ca_pem is not None
    objects.apply(
        kubectl, *objects.opnsense_secrets(namespace, "fw", ca_pem=device.sim.tls_ca_pem, **api_creds)
    )
    for i, name in enumerate(NAMES):
        body = objects.appliance(
            namespace,
            name,
            "opnsense",
            ports={"api": device.sim.port},
            credentials="fw-api",
            ca="fw-ca",
            services=objects.firewall_rules([objects.filter_rule(f"{name}-ssh", str(2200 + i))]),
        )
        objects.apply(kubectl, body)
    for name in NAMES:
        objects.wait_ready(kubectl, namespace, name)
    # Settled: no reconcile left from the creation (lastSyncTime has one-second granularity).
    before: dict[str, str] = {}

    def settled() -> bool:
        nonlocal before
        now = {name: last_sync(kubectl, namespace, name) for name in NAMES}
        same, before = now == before, now
        return same

    wait_for(settled, timeout=30, interval=1.5, what="no reconcile in flight")

    kubectl(
        "annotate",
        "--overwrite",
        "vnfprovider",
        "opnsense",
        f"vnf.operators.dev/reconcile-requested={secrets.token_hex(4)}",
    )
    # No change of the appliances themselves: only the provider's annotation brings them back.
    wait_for(
        lambda: all(last_sync(kubectl, namespace, n) != before[n] for n in NAMES),
        timeout=30,
        what="both appliances reconciled again",
    )
    for name in NAMES:
        obj = objects.wait_ready(kubectl, namespace, name)
        assert obj["metadata"]["generation"] == 1
        assert "vnf.operators.dev/reconcile-requested" not in (obj["metadata"].get("annotations") or {})
