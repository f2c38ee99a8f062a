"""`reconcile-requested` on a VnfProvider re-checks every appliance using it, with one write; a
re-check that finds everything as before writes no status (core.status.write_needed)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, get_json, wait_for

from vnf_operator.testing.demo import SimulatorThread

pytestmark = pytest.mark.integration

# The credentials, simulator and operator (providers/opnsense.yaml) fixtures of `objects`.
api_creds, device, operator = objects.api_creds, objects.opnsense, objects.opnsense_operator
NAMES = ("fw-a", "fw-b")
LIST = ("GET", "/api/firewall/filter/searchRule")  # the health check and the list both read it


def versions(kubectl: Any, ns: str) -> dict[str, str]:
    return {n: get_json(kubectl, "vnfappliance", n, "-n", ns)["metadata"]["resourceVersion"] for n in NAMES}


def test_provider_annotation_reconciles_its_appliances_without_status_writes(
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
    # Settled: no device request for a while (nothing left from the creation).
    reads = device.sim.telemetry.count(*LIST)

    def quiet() -> bool:
        nonlocal reads
        now = device.sim.telemetry.count(*LIST)
        same, reads = now == reads, now
        return same

    wait_for(quiet, timeout=30, interval=1.5, what="no reconcile in flight")
    # The first re-check writes (its plan and messages differ from the creation's); the second finds
    # everything as the first left it and writes nothing.
    for round_ in ("first", "second"):
        before = versions(kubectl, namespace)
        kubectl(
            "annotate",
            "--overwrite",
            "vnfprovider",
            "opnsense",
            f"vnf.operators.dev/reconcile-requested={secrets.token_hex(4)}",
        )
        # No change of the appliances themselves: only the provider's annotation brings them back,
        # each reading its rules again (health check + list).
        floor = reads + 2 * len(NAMES)
        wait_for(
            lambda: device.sim.telemetry.count(*LIST) >= floor,  # noqa: B023 (used at once)
            timeout=30,
            what=f"both appliances reconciled again ({round_} time)",
        )
        reads = device.sim.telemetry.count(*LIST)
        time.sleep(1.0)  # a status write follows the device reads within milliseconds
        if round_ == "first":
            assert versions(kubectl, namespace) != before, "the first re-check's new plan was not written"
    assert versions(kubectl, namespace) == before, "a no-op reconcile wrote the status"
