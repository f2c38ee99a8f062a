"""Operator crashes: kill -9 at random instants of a large apply, restart, converge, no duplicate.

Three appliances with 30 rules each, on three simulated OPNsense devices with latency. The operator
(a real `kopf run` subprocess, as its ServiceAccount) is killed with SIGKILL at random instants:
either after a random number of creates reached the devices (so mostly in the middle of a sync,
between a create and the status patch that would record it) or after a random delay (start-up,
listing, health checks). After every kill the devices must hold no duplicate; after the last
restart every appliance must converge with each rule exactly once, applied, values right.

A create that landed just before the kill is invisible to the next operator except through the
device itself: it lists the device, finds the rule by its natural key and ownership marker and
adopts it instead of creating it again. A kill between an edit's writes and its commit must still
end with the edit applied (not only staged).

Control-plane faults: kube-apiserver is SIGKILLed mid-apply and started again on the same port
(etcd keeps the data); the operator's watches must resume (a spec change made afterwards is
applied) and the status must catch up. Soak: a 180 s outage, longer than kopf's watch retries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.reliability import lab

from vnf_operator.testing.controlplane import ControlPlane

pytestmark = pytest.mark.integration

CREATE = "/api/firewall/filter/addRule"
OUTAGE_SECONDS = 180.0


@pytest.fixture
def ns(kubectl: Any, namespace: str, opnsense_providers: dict[str, str]) -> Iterator[str]:
    yield namespace
    lab.purge(kubectl, namespace, timeout=0)


def creates(devices: list[lab.Device]) -> int:
    return sum(d.count("POST", CREATE, status=200) for d in devices)


def crash_run(
    kubectl: Any,
    ns: str,
    kubeconfig: Path,
    log: Path,
    *,
    appliances: int,
    rules: int,
    latency_ms: int,
    kills: int,
    seed: int,
) -> lab.ScenarioRow:
    rng = random.Random(seed)
    row = lab.ScenarioRow(f"kill -9 x{kills} ({appliances}x{rules} rules)", runs=1)
    devices = [lab.Device(f"crash{i}").start() for i in range(appliances)]
    names = [f"fw{i}" for i in range(appliances)]
    desired = {n: lab.make_rules(rules, prefix=n) for n in names}
    proc = None
    try:
        objs: list[dict[str, Any]] = []
        for name, device in zip(names, devices, strict=True):
            device.set_faults(latency_ms=latency_ms)
            objs += lab.secret_objects(ns, name, device)
            objs.append(lab.appliance_object(ns, name, device, desired[name]))
        lab.apply(kubectl, objs)
        done_kills, duplicates_seen = 0, 0
        modes: list[str] = []
        for _ in range(kills):
            proc = lab.start_operator(kubeconfig, log)
            base = creates(devices)
            if rng.random() < 0.7:
                target = base + rng.randint(1, 5)
                modes.append(f"after {target - base} create(s)")
                reached = _wait_creates(devices, target)
                if not reached:  # nothing left to create: every appliance converged already
                    proc.kill()
                    break
            else:
                delay = rng.uniform(0.3, 4.0)
                modes.append(f"after {delay:.1f}s")
                time.sleep(delay)
            proc.kill()
            done_kills += 1
            for device in devices:
                dups = lab.duplicates_now(device, ns, names)
                duplicates_seen += sum(n - 1 for d in dups.values() for n in d.values())
        proc = lab.start_operator(kubeconfig, log)
        lab.wait_ready(kubectl, ns, names, timeout=240)
        checks = [
            lab.check_device(device, ns, name, desired[name])
            for name, device in zip(names, devices, strict=True)
        ]
        proc.stop()
        row.scenario = f"kill -9 x{done_kills} ({appliances}x{rules} rules)"
        row.converged = int(all(c.ok for c in checks))
        row.duplicates = duplicates_seen + sum(c.duplicate_count for c in checks)
        row.lost = sum(len(c.lost) + len(c.unapplied) for c in checks)
        row.leaked = lab.leaked_in_namespace(kubectl, ns, log.read_text(errors="replace"))
        row.notes = f"{creates(devices)} creates for {appliances * rules} rules"
        lab.record_row(row)
        problems = [str(c) for c in checks if not c.ok]
        assert done_kills >= min(kills, 3), f"only {done_kills} kill(s) happened mid-apply ({modes})"
        assert duplicates_seen == 0, f"duplicates on a device after a kill ({modes})"
        assert not problems, "\n".join(problems) + f"\nkills: {modes}"
        assert row.leaked == 0
        found = lab.tracebacks(log.read_text(errors="replace"))
        assert not found, "\n---\n".join(found[:3])
        return row
    finally:
        if proc is not None:
            proc.stop()
        for d in devices:
            d.stop()


def _wait_creates(devices: list[lab.Device], target: int, timeout: float = 120.0) -> bool:
    try:
        lab.wait_until(
            lambda: creates(devices) >= target or None, timeout=timeout, what="creates", interval=0.02
        )
    except AssertionError:
        return False
    return True


def test_kill_9_during_a_large_apply(
    kubectl: Any, ns: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    crash_run(
        kubectl,
        ns,
        operator_kubeconfig,
        tmp_path / "operator.log",
        appliances=3,
        rules=30,
        latency_ms=100,
        kills=5,
        seed=424242,
    )


def test_kill_9_between_the_writes_of_an_edit_and_the_commit(
    kubectl: Any, ns: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    rules = lab.make_rules(4, prefix="k")
    edited = [{**r, "destination_port": str(2000 + i)} for i, r in enumerate(rules)]
    update = "/api/firewall/filter/setRule/"
    with lab.Device("crash-commit") as device:
        lab.apply(
            kubectl, [*lab.secret_objects(ns, "fw", device), lab.appliance_object(ns, "fw", device, rules)]
        )
        proc = lab.start_operator(operator_kubeconfig, log)
        try:
            lab.wait_ready(kubectl, ns, ["fw"], timeout=60)
            device.set_faults(latency_ms=200)
            device.reset_stats()
            lab.apply(kubectl, [lab.appliance_object(ns, "fw", device, edited)])

            def updates_done() -> bool | None:
                n = sum(
                    1 for r in device.request_log() if r["path"].startswith(update) and r["status"] == 200
                )
                return n >= len(rules) or None

            lab.wait_until(updates_done, timeout=60, what="every update on the device", interval=0.01)
            # The commit is in flight (200 ms of latency): make sure it does not land, then crash.
            device.set_faults(error_rate=1.0)
            proc.kill()
            device.clear_faults()
            proc = lab.start_operator(operator_kubeconfig, log)
            lab.wait_ready(kubectl, ns, ["fw"], timeout=120)
            check = lab.check_device(device, ns, "fw", edited)
        finally:
            proc.stop()
    lab.record_check(
        "kill -9 between an edit's writes and its commit", check, if_unapplied="edit staged, never applied"
    )
    assert check.ok, str(check)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_kill_9(kubectl: Any, ns: str, operator_kubeconfig: Path, tmp_path: Path) -> None:
    crash_run(
        kubectl,
        ns,
        operator_kubeconfig,
        tmp_path / "operator.log",
        appliances=3,
        rules=30,
        latency_ms=400,
        kills=24,
        seed=random.randrange(2**31),
    )


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restart_mid_apply(
    control_plane: ControlPlane,
    kubectl: Any,
    ns: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
    component: str,
) -> None:
    """kube-apiserver (or etcd under it) dies mid-apply and comes back: the operator resumes its
    watches and converges.

    While the apiserver is down the operator keeps working on the device but cannot write status;
    afterwards the status must catch up, and a spec change made after the restart (seen only
    through a re-established watch) must be applied.
    """
    log = tmp_path / "operator.log"
    rules = lab.make_rules(20, prefix="a")
    with lab.Device(f"{component}-restart") as device:
        device.set_faults(latency_ms=150)
        lab.apply(
            kubectl, [*lab.secret_objects(ns, "fw", device), lab.appliance_object(ns, "fw", device, rules)]
        )
        proc = lab.start_operator(operator_kubeconfig, log)
        try:
            _wait_creates([device], 5)

            def while_down() -> None:
                # The device work goes on without the apiserver, up to the commit; then the
                # status patch (and the events) fail until it is back. Bounded waits only.
                lab.wait_until(
                    lambda: device.count("POST", "/api/firewall/filter/apply", status=200) >= 1 or None,
                    timeout=60,
                    what="the apply to finish on the device while the apiserver is down",
                    interval=0.05,
                )
                time.sleep(2)

            control_plane.restart(component, while_down)
            lab.wait_ready(kubectl, ns, ["fw"], timeout=180)
            more = [*rules, {**rules[0], "description": "after-restart", "destination_port": "7777"}]
            lab.apply(kubectl, [lab.appliance_object(ns, "fw", device, more)])
            lab.wait_ready(kubectl, ns, ["fw"], timeout=120)
            check = lab.check_device(device, ns, "fw", more)
        finally:
            proc.stop()
    text = log.read_text(errors="replace")
    unhandled = len(lab.tracebacks(text))
    lab.record_row(
        lab.ScenarioRow(
            f"{component} SIGKILL + restart",
            runs=1,
            converged=int(check.ok),
            duplicates=check.duplicate_count,
            lost=len(check.lost) + len(check.unapplied),
            leaked=lab.leaked_in_namespace(kubectl, ns, text),
            notes=f"{unhandled} unhandled traceback(s) logged while it was down" if unhandled else "",
        )
    )
    assert check.ok, str(check)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_apiserver_long_outage(
    control_plane: ControlPlane, kubectl: Any, ns: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    """kube-apiserver gone for longer than kopf's watch retries (9 attempts: 1+1+2+...+21 s of backoff
    plus connect timeouts; a 75 s outage is survived by retrying).

    Acceptable: the operator resumes, or it exits (its Deployment restarts it). Not acceptable: a
    live process whose watches are gone, silently ignoring every change.
    """
    log = tmp_path / "operator.log"
    rules = lab.make_rules(5, prefix="o")
    with lab.Device("apiserver-outage") as device:
        lab.apply(
            kubectl, [*lab.secret_objects(ns, "fw", device), lab.appliance_object(ns, "fw", device, rules)]
        )
        proc = lab.start_operator(operator_kubeconfig, log)
        try:
            lab.wait_ready(kubectl, ns, ["fw"], timeout=120)
            control_plane.restart("kube-apiserver", lambda: time.sleep(OUTAGE_SECONDS))
            exited = proc.proc is not None and proc.proc.poll() is not None
            more = [*rules, {**rules[0], "description": "after-outage", "destination_port": "7778"}]
            lab.apply(kubectl, [lab.appliance_object(ns, "fw", device, more)])
            if exited:
                proc = lab.start_operator(operator_kubeconfig, log)
            lab.wait_ready(kubectl, ns, ["fw"], timeout=120)
            check = lab.check_device(device, ns, "fw", more)
        finally:
            proc.stop()
    lab.record_row(
        lab.ScenarioRow(
            f"kube-apiserver down {OUTAGE_SECONDS:g} s",
            runs=1,
            converged=int(check.ok),
            duplicates=check.duplicate_count,
            lost=len(check.lost) + len(check.unapplied),
            notes="operator exited (restarted)" if exited else "operator resumed its watches",
        )
    )
    assert check.ok, str(check)
