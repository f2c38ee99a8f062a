"""Credentials come from the Secret cache the watch keeps; a change of a referenced Secret re-reconciles.

The operator reads no Secret per reconcile any more, so these check that what it holds follows the
apiserver: a Secret that was missing appears, a rotated value is used, a restored one too, each
without waiting for a resync (300 s here).
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.demo import SimulatorThread

pytestmark = pytest.mark.integration

RULE = objects.filter_rule("allow-ssh", "22")


# The credentials, simulator and operator (providers/opnsense.yaml) fixtures of `objects`.
api_creds, device, operator = objects.api_creds, objects.opnsense, objects.opnsense_operator


def ready(kubectl: Any, ns: str) -> dict[str, Any]:
    return condition(get_json(kubectl, "vnfappliance", "fw", "-n", ns), "Ready")


def test_missing_then_rotated_then_restored_credentials(
    kubectl: Any,
    namespace: str,
    device: SimulatorThread,
    operator: OperatorProcess,
    api_creds: dict[str, str],
) -> None:
    assert device.sim.tls_ca_pem is not None
    api, ca = objects.opnsense_secrets(namespace, "fw", ca_pem=device.sim.tls_ca_pem, **api_creds)
    objects.apply(kubectl, ca)
    appliance = objects.appliance(
        namespace,
        "fw",
        "opnsense",
        ports={"api": device.sim.port},
        credentials="fw-api",
        ca="fw-ca",
        services=objects.firewall_rules([RULE]),
    )
    objects.apply(kubectl, appliance)
    # The credentials Secret does not exist yet: reported, and remembered as missing.
    wait_for(lambda: ready(kubectl, namespace).get("reason") == "SecretNotFound", what="SecretNotFound")

    # It appears: the watch brings it in and the appliance converges.
    objects.apply(kubectl, api)
    objects.wait_ready(kubectl, namespace, "fw", timeout=60)

    # Rotated to a key the device does not know: the next reconcile uses it and fails.
    wrong = objects.secret(namespace, "fw-api", {"api_key": "0" * 32, "api_secret": "not-the-secret"})
    objects.apply(kubectl, wrong)
    wait_for(lambda: ready(kubectl, namespace).get("status") == "False", timeout=60, what="rotation seen")

    # Restored: ready again, with the restored value.
    objects.apply(kubectl, api)
    wait_for(lambda: ready(kubectl, namespace).get("status") == "True", timeout=60, what="restore seen")
