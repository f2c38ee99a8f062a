"""Bootstrap outputs through the Secret cache, across a factory reset of the device.

The operator writes the `<appliance>-bootstrap-outputs` Secret (a generated API key) and then reads
it from its cache; the bootstrap `neededWhen` probe no longer runs on every reconcile. A device
reset to factory state must still be bootstrapped again on its next reconcile, and the key
generated then (a new outputs Secret value) must be the one used afterwards.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any, cast

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for
from tests.leakcheck import register_test_secret

from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators.opnsense.simulator import OpnsenseSimulator

pytestmark = pytest.mark.integration

RULE = objects.filter_rule("boot-1", "80")


@pytest.fixture(scope="module")
def day0() -> dict[str, str]:
    return {
        "bootstrap_api_key": register_test_secret(secrets.token_hex(16)),
        "bootstrap_api_secret": register_test_secret("Day0-" + secrets.token_urlsafe(24)),
        "root_password": register_test_secret("NewRoot-" + secrets.token_urlsafe(18)),
    }


@pytest.fixture(scope="module")
def device(day0: dict[str, str]) -> Iterator[SimulatorThread]:
    console = register_test_secret("Console-" + secrets.token_urlsafe(16))
    creds = {"api_key": day0["bootstrap_api_key"], "api_secret": day0["bootstrap_api_secret"]}
    with objects.opnsense_device(creds, password=console) as sim:
        yield sim


# The operator (providers/opnsense.yaml) fixture of `objects`.
operator = objects.opnsense_operator


async def _factory_reset(sim: SimulatorThread) -> None:
    """Users and API keys back to the install's (the day-0 key only): the generated key is gone."""
    opnsense = cast(OpnsenseSimulator, sim.sim)
    opnsense._install(factory=False)  # what a fresh install does (the simulator has no reset call)


def generated_key(kubectl: Any, ns: str) -> str:
    data = get_json(kubectl, "secret", "fresh-bootstrap-outputs", "-n", ns).get("data") or {}
    return str(data.get("api_key", ""))


def bootstraps(kubectl: Any, ns: str) -> int:
    events = json.loads(kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    return sum(1 for e in events if e.get("reason") == "Bootstrapped")


def test_factory_reset_device_is_bootstrapped_again_and_the_new_key_used(
    kubectl: Any, namespace: str, device: SimulatorThread, operator: OperatorProcess, day0: dict[str, str]
) -> None:
    ca = device.sim.tls_ca_pem
    assert ca is not None
    body = objects.appliance(
        namespace,
        "fresh",
        "opnsense",
        ports=dict.fromkeys(("api", "bootstrap_api", "bootstrap_root"), device.sim.port),
        ca="fresh-ca",
        services=objects.firewall_rules([RULE]),
        bootstrapCredentialsSecretRef={"name": "fresh-day0"},
    )
    objects.apply(
        kubectl,
        objects.secret(namespace, "fresh-day0", day0),
        objects.secret(namespace, "fresh-ca", {"ca.crt": ca}),
    )
    objects.apply(kubectl, body)
    obj = objects.wait_ready(kubectl, namespace, "fresh", timeout=90)
    assert condition(obj, "Bootstrapped").get("status") == "True"
    first_key = generated_key(kubectl, namespace)
    assert first_key and bootstraps(kubectl, namespace) == 1

    device.call(_factory_reset(device))
    objects.request_reconcile(kubectl, namespace, "fresh")
    wait_for(
        lambda: bootstraps(kubectl, namespace) == 2, timeout=90, what="bootstrap after the factory reset"
    )
    second_key = generated_key(kubectl, namespace)
    assert second_key and second_key != first_key
    register_test_secret(second_key)

    # The next reconcile reaches the device with the new key (from the cache, not the old value).
    objects.request_reconcile(kubectl, namespace, "fresh")
    wait_for(
        lambda: (
            condition(get_json(kubectl, "vnfappliance", "fresh", "-n", namespace), "Ready").get("status")
            == "True"
        ),
        timeout=60,
        what="ready with the regenerated key",
    )
    assert bootstraps(kubectl, namespace) == 2
