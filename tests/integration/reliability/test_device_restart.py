"""A device restarts mid-run and loses what was not saved; the operator notices and re-applies.

Cisco IOS-XE (simulated, SSH CLI): a static route is live in running-config as soon as its line
is typed, and survives a reboot only once `write memory` copied it to startup-config (the
provider saves once per service, after its changes). The device reboots either after a random
number of route lines reached it, or right after the last one, before the save. The reboot drops
the operator's SSH session and reloads startup-config: the routes typed so far are gone. The
operator must see the loss in its next list, type them again and save; at the end running- and
startup-config hold each desired route exactly once. A last reboot after convergence proves the
final state was saved (nothing is lost).

(The staged-commit vendor, OPNsense, reboots mid-apply in test_faults.py: its config.xml survives
a reboot and only the running rule set is rebuilt from it.)
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess
from tests.integration.reliability import lab

pytestmark = pytest.mark.integration

ROUTE = "ip route"


@pytest.fixture
def ns(kubectl: Any, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    lab.apply(kubectl, [lab.iosxe_provider()])
    yield namespace
    lab.purge(kubectl, namespace)


def desired_routes(n: int, seed: int) -> list[dict[str, Any]]:
    return [{"prefix": f"10.{seed % 200}.{i}.0/24", "next_hop": "192.168.122.1"} for i in range(n)]


def _restart_after(device: lab.IosXeDevice, lines: int, done: threading.Event, lost: list[int]) -> None:
    """Reboot as soon as `lines` route lines reached the device; record how many routes died."""
    lab.wait_until(lambda: device.commands(ROUTE) >= lines or None, timeout=120,
                   what=f"{lines} route line(s) on the device", interval=0.01)  # fmt: skip
    before = set(device.routes("running"))
    device.restart()
    lost.append(len(before - set(device.routes("running"))))
    done.set()


def restart_run(
    kubectl: Any, ns: str, name: str, *, routes: int, restart_at: int, seed: int, scenario: str = ""
) -> tuple[lab.ScenarioRow, int]:
    """One reboot run: its row (recorded under `scenario` if given, before asserting) and how many
    routes the reboot wiped out."""
    want = desired_routes(routes, seed)
    keys = {(r["prefix"], r["next_hop"]) for r in want}
    row = lab.ScenarioRow(f"IOS-XE reboot loses unsaved ({routes} routes)", runs=1)
    with lab.IosXeDevice() as device:
        device.set_faults(latency_ms=50)  # each CLI line takes a moment: the reboot lands mid-run
        done, lost = threading.Event(), list[int]()
        watcher = threading.Thread(target=_restart_after, args=(device, restart_at, done, lost), daemon=True)
        watcher.start()
        services = {"static_routes": {"policy": "replaced", "items": want}}
        lab.apply(kubectl, device.objects(ns, name, services))
        watcher.join(150)
        assert done.is_set(), "the device never rebooted"
        lab.wait_ready(kubectl, ns, [name], timeout=180)
        device.set_faults(latency_ms=0)
        running = Counter(device.routes("running"))
        device.restart()  # everything the operator did must have been saved
        after_reboot = Counter(device.routes("running"))
    row.converged = int(set(running) == keys and set(after_reboot) == keys)
    row.duplicates = sum(n - 1 for n in running.values())
    row.lost = len(keys - set(after_reboot))
    row.notes = f"reboot after {restart_at} line(s) lost {lost[0]} route(s)"
    row.leaked = lab.leaked_in_namespace(kubectl, ns)
    if scenario:
        row.scenario = scenario
        lab.record_row(row)
    kubectl("delete", "vnfappliance", name, "-n", ns, "--wait=false", check=False)
    assert lost[0] > 0, "the reboot lost nothing: it did not happen mid-run"
    assert set(running) == keys, f"running-config: missing {keys - set(running)}, extra {set(running) - keys}"
    assert set(after_reboot) == keys, f"not saved: {keys - set(after_reboot)} gone after a reboot"
    return row, lost[0]


@pytest.mark.parametrize("where", ["mid-creates", "before-the-save"])
def test_reboot_losing_unsaved_changes_is_repaired(kubectl: Any, ns: str, where: str) -> None:
    routes = 8
    restart_at = 3 if where == "mid-creates" else routes
    scenario = f"IOS-XE reboot {where}, unsaved lost ({routes} routes)"
    restart_run(
        kubectl, ns, "rtr", routes=routes, restart_at=restart_at, seed=17 + restart_at, scenario=scenario
    )


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_reboots_losing_unsaved_changes(kubectl: Any, ns: str) -> None:
    rng = random.Random()
    total = lab.ScenarioRow("IOS-XE reboot at random points, unsaved lost (30 routes)")
    wiped = 0
    try:
        for run in range(10):
            routes = 30
            row, lost = restart_run(
                kubectl, ns, f"rtr{run}", routes=routes, restart_at=rng.randint(1, routes), seed=run
            )
            total.runs += 1
            total.converged += row.converged
            total.duplicates += row.duplicates
            total.lost += row.lost
            total.leaked += row.leaked
            wiped += lost
    finally:
        total.notes = f"the reboots wiped {wiped} unsaved route(s), all typed again and saved"
        lab.record_row(total)
    assert total.converged == total.runs and total.leaked == 0
