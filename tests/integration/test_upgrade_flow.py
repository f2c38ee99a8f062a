"""Upgrades end to end (docs/lifecycle.md, spec.upgrade): the operator process against the real
apiserver and the OPNsense simulator, whose firmware update reboots it (unreachable for a moment)
and can be told to fail, leaving the old version with a damaged configuration until a restore."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tests.integration import objects
from tests.integration import test_lifecycle as lifecycle
from tests.integration.operator_runner import condition, get_json
from tests.integration.test_lifecycle import RULES, appliance, device_rules, events, settled

from vnf_operator.testing.demo import SimulatorThread

pytestmark = pytest.mark.integration

# The simulator, credentials and operator process fixtures of the lifecycle tests.
api_creds, opnsense, operator = lifecycle.api_creds, lifecycle.opnsense, lifecycle.operator

TARGET = "25.7.9"


def upgraded(kubectl: Any, ns: str, generation: int, status: str, reason: str) -> dict[str, Any]:
    return objects.settled(kubectl, ns, "fw", generation, status, reason, ctype="Upgraded")


def with_upgrade(
    ns: str, sim: SimulatorThread, rules: list[dict[str, Any]], **upgrade: Any
) -> dict[str, Any]:
    return objects.with_spec(appliance(ns, sim, rules), upgrade={"version": TARGET, **upgrade})


def test_upgrade_reboots_reports_the_new_version_and_keeps_the_config(  # type: ignore[no-untyped-def]
    kubectl, namespace, opnsense, operator, api_creds
) -> None:
    lifecycle.setup_secrets(kubectl, namespace, opnsense, api_creds)
    opnsense.sim.firmware_available = TARGET
    objects.apply(kubectl, appliance(namespace, opnsense, RULES))
    obj = settled(kubectl, namespace, 1, "True")
    assert obj["status"]["softwareVersion"] == "25.7"
    assert condition(obj, "Upgraded") == {}  # no spec.upgrade, no condition

    objects.apply(kubectl, with_upgrade(namespace, opnsense, RULES, timeoutSeconds=120))
    obj = upgraded(kubectl, namespace, 2, "True", "Upgraded")
    assert obj["status"]["softwareVersion"] == TARGET
    assert condition(obj, "Ready")["status"] == "True"
    up = obj["status"]["upgrade"]
    assert (up["phase"], up["from"], up["target"]) == ("Succeeded", "25.7", TARGET)
    backup = get_json(kubectl, "secret", up["backup"], "-n", namespace)
    meta = json.loads(base64.b64decode(backup["data"]["meta"]))
    assert meta["reason"] == f"before upgrading from 25.7 to {TARGET}"
    assert [e["reason"] for e in events(kubectl, namespace, "UpgradeStarted")] == ["UpgradeStarted"]
    assert events(kubectl, namespace, "Upgraded")
    # The device rebooted into the new version with the operator's configuration in place.
    assert opnsense.sim.firmware_version == TARGET
    assert sorted(device_rules(opnsense, namespace)) == [("allow-https", "443"), ("allow-ssh", "22")]


def test_failed_upgrade_restores_the_backup_and_is_not_retried(  # type: ignore[no-untyped-def]
    kubectl, namespace, opnsense, operator, api_creds
) -> None:
    lifecycle.setup_secrets(kubectl, namespace, opnsense, api_creds)
    opnsense.sim.firmware_available = TARGET
    opnsense.sim.upgrade_breaks = True  # the old version boots with a damaged configuration
    objects.apply(kubectl, with_upgrade(namespace, opnsense, RULES, timeoutSeconds=3))
    obj = upgraded(kubectl, namespace, 1, "False", "UpgradeFailed")
    ready, stalled = condition(obj, "Ready"), condition(obj, "Stalled")
    assert (ready["status"], ready["reason"], stalled["status"]) == ("False", "UpgradeFailed", "True")
    up = obj["status"]["upgrade"]
    assert up["phase"] == "Failed" and "restored" in up["message"], up
    assert "Not tried again until spec.upgrade changes" in condition(obj, "Upgraded")["message"]
    assert not opnsense.sim.config_damaged, "the backup was restored onto the device"
    assert obj["status"]["softwareVersion"] == "25.7"
    assert events(kubectl, namespace, "Restored") and events(kubectl, namespace, "UpgradeFailed")

    # A change elsewhere in the spec is applied, but the same upgrade is not tried again.
    objects.apply(kubectl, with_upgrade(namespace, opnsense, RULES[:1], timeoutSeconds=3))
    obj = settled(kubectl, namespace, 2, "False", "UpgradeFailed")
    assert device_rules(opnsense, namespace) == [("allow-ssh", "22")]
    assert len(events(kubectl, namespace, "UpgradeStarted")) == 1

    # A new request (here: a longer timeout) is tried again, and succeeds once the mirror is fixed.
    opnsense.sim.upgrade_breaks = False
    objects.apply(kubectl, with_upgrade(namespace, opnsense, RULES[:1], timeoutSeconds=120))
    obj = upgraded(kubectl, namespace, 3, "True", "Upgraded")
    assert obj["status"]["softwareVersion"] == TARGET
    assert condition(obj, "Ready")["status"] == "True"
