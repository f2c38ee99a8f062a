"""Scheduled backups and restore end to end (docs/lifecycle.md, spec.backup): the operator process,
the real apiserver and the OPNsense simulator, whose restore endpoint takes config.xml as a
multipart upload (field `conffile`) like the real one."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tests.integration import objects
from tests.integration import test_lifecycle as lifecycle
from tests.integration.operator_runner import get_json, wait_for
from tests.integration.test_lifecycle import RULES, annotate, appliance, backup_names, events, settled

from vnf_operator.testing.demo import SimulatorThread

pytestmark = pytest.mark.integration

# The simulator, credentials and operator process fixtures of the lifecycle tests.
api_creds, opnsense, operator = lifecycle.api_creds, lifecycle.opnsense, lifecycle.operator


def scheduled(ns: str, sim: SimulatorThread, schedule: str, keep: int) -> dict[str, Any]:
    return objects.with_spec(appliance(ns, sim, RULES), backup={"schedule": schedule, "keep": keep})


def backup_status(kubectl: Any, ns: str) -> dict[str, Any]:
    return dict((get_json(kubectl, "vnfappliance", "fw", "-n", ns).get("status") or {}).get("backup") or {})


def hostname(sim: SimulatorThread, value: str | None = None) -> str:
    async def swap() -> str:
        if value is not None:
            sim.sim.config_xml.hostname = value  # a change made on the device by hand
        return str(sim.sim.config_xml.hostname)

    return str(sim.call(swap()))


def test_scheduled_backups_stay_bounded_and_one_is_restored(  # type: ignore[no-untyped-def]
    kubectl, namespace, opnsense, operator, api_creds
) -> None:
    lifecycle.setup_secrets(kubectl, namespace, opnsense, api_creds)
    objects.apply(kubectl, scheduled(namespace, opnsense, "@every 2s", keep=2))
    settled(kubectl, namespace, 1, "True")

    # Backups keep coming on schedule; only the newest two are kept.
    first = wait_for(lambda: backup_status(kubectl, namespace).get("items"), what="a first backup")[-1]
    wait_for(
        lambda: len(events(kubectl, namespace, "BackupTaken")) >= 4,
        timeout=90,
        what="four scheduled backups",
    )
    status = wait_for(
        lambda: (s := backup_status(kubectl, namespace)) and len(s["items"]) == 2 and s,
        what="two backups listed",
    )
    assert backup_names(kubectl, namespace) == ["fw-backup-0", "fw-backup-1"]
    assert first["created"] not in [b["created"] for b in status["items"]], "the oldest was pruned"
    assert all(b["reason"] == "scheduled (@every 2s)" for b in status["items"])
    assert status["lastScheduled"] < status["nextScheduled"] and status.get("error") is None
    secret = get_json(kubectl, "secret", "fw-backup-0", "-n", namespace)
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "VnfAppliance"
    assert secret["metadata"]["labels"]["vnf.operators.dev/kind"] == "backup"
    assert "<opnsense" in base64.b64decode(secret["data"]["config"]).decode()

    # A daily schedule: no more backups for now; the next one is due at midnight UTC.
    objects.apply(kubectl, scheduled(namespace, opnsense, "@daily", keep=2))
    settled(kubectl, namespace, 2, "True")
    status = wait_for(
        lambda: (s := backup_status(kubectl, namespace)).get("schedule") == "@daily" and s,
        what="the daily schedule in status",
    )
    assert status["nextScheduled"].endswith("T00:00:00Z")

    # Restore: the newest backup goes back onto the device (multipart upload), undoing a hand edit.
    newest = status["items"][0]["name"]
    original = hostname(opnsense)
    hostname(opnsense, "edited-by-hand")
    annotate(
        kubectl,
        namespace,
        f"vnf.operators.dev/restore-backup={newest}",
        "vnf.operators.dev/reconcile-requested=restore",
    )
    wait_for(lambda: events(kubectl, namespace, "Restored"), timeout=60, what="Restored event")
    assert hostname(opnsense) == original
    assert len(backup_names(kubectl, namespace)) == 2


def test_schedule_is_validated_by_the_apiserver(kubectl, namespace, opnsense) -> None:  # type: ignore[no-untyped-def]
    bad = scheduled(namespace, opnsense, "every day at 3", keep=2)
    proc = kubectl(
        "apply", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False
    )  # fmt: skip
    assert proc.returncode != 0
    assert "backup.schedule must be a cron expression" in proc.stderr
