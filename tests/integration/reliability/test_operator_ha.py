"""Operator HA: two replicas with kopf peering; the active one is killed mid-apply, the standby
takes over and converges, and no change reaches a device twice.

Both replicas are real `kopf run` subprocesses as the operator's ServiceAccount, in one peering
neighbourhood of their own (a ClusterKopfPeering made for the test) with a 10 s keep-alive
lifetime. The active one has the higher priority; the standby is paused by kopf from its start
and must not touch anything until the active one is gone. The active one is SIGKILLed after a
random number of creates reached the devices (a large apply in flight); the standby resumes once
the dead peer's keep-alive expires and finishes the job.

"No change applied twice" is counted on the devices: every successful `addRule` is one create;
at the end each desired rule is on the device exactly once, there were as many successful
creates as desired rules (so none was created twice, even if deleted again) and no delete.
In soak, the handover repeats: each round adds rules, a new standby (of a lower priority than
the active one, so it never preempts it) is started, and the active one is killed again.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, get_json
from tests.integration.reliability import lab

pytestmark = pytest.mark.integration

CREATE = "/api/firewall/filter/addRule"
DELETE_PREFIX = "/api/firewall/filter/delRule/"
LIFETIME_SECONDS = 10
TUNING = Path(__file__).with_name("kopf_peering_lifetime.py")
RESUMED = "Resuming operations after the pause"


@pytest.fixture
def ns(kubectl: Any, namespace: str, opnsense_providers: dict[str, str]) -> Iterator[str]:
    yield namespace
    lab.purge(kubectl, namespace, timeout=0)


@pytest.fixture
def peering(kubectl: Any) -> Iterator[str]:
    """A peering neighbourhood of this test only (kopf patches it, never creates it)."""
    name = f"ha-{uuid.uuid4().hex[:8]}"
    lab.apply(
        kubectl, [{"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}]
    )
    yield name
    kubectl("delete", "clusterkopfpeering", name, "--wait=false", check=False)


@dataclass
class Replica:
    proc: OperatorProcess
    priority: int
    peering: str

    def start(self) -> Replica:
        self.proc.start(f"--peering={self.peering}", f"--priority={self.priority}", str(TUNING))
        return self

    def log(self) -> str:
        return self.proc.output()


def start_replica(kubeconfig: Path, log: Path, peering: str, priority: int) -> Replica:
    proc = OperatorProcess(
        kubeconfig, log, env={"VNF_TEST_PEERING_LIFETIME": str(LIFETIME_SECONDS), "VNF_METRICS_PORT": "0"}
    )
    proc.standalone = False
    replica = Replica(proc, priority, peering).start()
    lab.wait_operator_up(proc)
    return replica


def wait_peers(kubectl: Any, peering: str, count: int) -> None:
    """`count` live keep-alives in the peering object (a killed replica's one expires)."""

    def live() -> int:
        now = datetime.now(UTC)
        entries = (get_json(kubectl, "clusterkopfpeering", peering).get("status") or {}).values()
        return sum(
            1
            for e in entries
            if isinstance(e, dict)
            and datetime.fromisoformat(e["lastseen"]) + timedelta(seconds=int(e["lifetime"])) > now
        )

    lab.wait_until(lambda: live() >= count or None, timeout=60, what=f"{count} live peer(s) in {peering}")


def creates(devices: list[lab.Device]) -> int:
    return sum(d.count("POST", CREATE, status=200) for d in devices)


def wait_creates(devices: list[lab.Device], target: int) -> None:
    lab.wait_until(lambda: creates(devices) >= target or None, timeout=120,
                   what=f"{target} creates on the devices", interval=0.02)  # fmt: skip


def wait_resumed(replica: Replica) -> None:
    """kopf resumes a paused replica once no live peer of a higher priority is left."""
    lab.wait_until(lambda: RESUMED in replica.log() or None, timeout=LIFETIME_SECONDS * 6,
                   what="the standby to resume", describe=lambda: replica.log()[-3000:])  # fmt: skip


def deletes(devices: list[lab.Device]) -> int:
    return sum(1 for d in devices for r in d.request_log() if r["path"].startswith(DELETE_PREFIX))


def handover_run(
    kubectl: Any,
    ns: str,
    peering: str,
    kubeconfig: Path,
    logs: Path,
    *,
    appliances: int,
    rules: int,
    rounds: int,
    seed: int,
) -> lab.ScenarioRow:
    rng = random.Random(seed)
    row = lab.ScenarioRow(f"HA handover x{rounds} ({appliances}x{rules * rounds} rules)", runs=rounds)
    devices = [lab.Device(f"ha{i}").start() for i in range(appliances)]
    names = [f"fw{i}" for i in range(appliances)]
    desired: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    replicas: list[Replica] = []
    priority = 100
    try:
        for device in devices:
            device.set_faults(latency_ms=100)
        lab.apply(
            kubectl, [o for n, d in zip(names, devices, strict=True) for o in lab.secret_objects(ns, n, d)]
        )
        active = start_replica(kubeconfig, logs / "replica-0.log", peering, priority)
        replicas.append(active)
        wait_peers(kubectl, peering, 1)
        duplicates_seen, notes = 0, []
        for round_no in range(rounds):
            priority -= 1
            standby = start_replica(kubeconfig, logs / f"replica-{round_no + 1}.log", peering, priority)
            replicas.append(standby)
            wait_peers(kubectl, peering, 2)
            base = creates(devices)
            for name in names:
                desired[name] += lab.make_rules(rules, prefix=f"{name}-{round_no}")
            lab.apply(
                kubectl,
                [lab.appliance_object(ns, n, d, desired[n]) for n, d in zip(names, devices, strict=True)],
            )
            target = base + rng.randint(2, max(2, appliances * rules // 2))
            wait_creates(devices, target)
            standby_quiet = standby.log()
            active.proc.kill()
            notes.append(f"killed after {creates(devices) - base} create(s)")
            for device in devices:
                dups = lab.duplicates_now(device, ns, names)
                duplicates_seen += sum(n - 1 for d in dups.values() for n in d.values())
            # The standby did nothing while the active one lived, then took over.
            assert "Handler '" not in standby_quiet, "the standby processed events while paused"
            wait_resumed(standby)
            try:
                lab.wait_ready(kubectl, ns, names, timeout=240)
            except AssertionError as exc:  # still a row in the table, with the reason
                stuck = [
                    ln.strip() for ln in str(exc).splitlines() if ": gen " in ln and "Ready=True" not in ln
                ]
                row.converged, row.notes = round_no, f"round {round_no + 1} stuck: " + "; ".join(stuck)[:200]
                lab.record_row(row)
                raise
            active = standby
        checks = [
            lab.check_device(device, ns, name, desired[name])
            for name, device in zip(names, devices, strict=True)
        ]
        total = sum(len(v) for v in desired.values())
        made, removed = creates(devices), deletes(devices)
        texts = [r.log() for r in replicas]
        row.converged = rounds if all(c.ok for c in checks) else 0
        row.duplicates = duplicates_seen + sum(c.duplicate_count for c in checks) + max(0, made - total)
        row.lost = sum(len(c.lost) + len(c.unapplied) for c in checks)
        row.leaked = lab.leaked_in_namespace(kubectl, ns, *texts)
        row.notes = f"{made} creates, {removed} deletes for {total} rules; " + ", ".join(notes)
        lab.record_row(row)
        problems = [str(c) for c in checks if not c.ok]
        assert duplicates_seen == 0, f"duplicates on a device right after a kill ({notes})"
        assert not problems, "\n".join(problems) + f"\n{notes}"
        assert made == total and removed == 0, f"{made} creates and {removed} deletes for {total} rules"
        assert row.leaked == 0
        found = [tb for text in texts for tb in lab.tracebacks(text)]
        assert not found, "\n---\n".join(found[:3])
        return row
    finally:
        for replica in replicas:
            replica.proc.stop()
        for device in devices:
            device.stop()


def test_standby_takes_over_a_large_apply_without_applying_twice(
    kubectl: Any, ns: str, peering: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    handover_run(
        kubectl, ns, peering, operator_kubeconfig, tmp_path, appliances=2, rules=15, rounds=1, seed=90210
    )


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_operator_ha_handovers(
    kubectl: Any, ns: str, peering: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    handover_run(
        kubectl,
        ns,
        peering,
        operator_kubeconfig,
        tmp_path,
        appliances=3,
        rules=20,
        rounds=5,
        seed=random.randrange(2**31),
    )
