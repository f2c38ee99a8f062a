"""Two shards and the finalizer: each appliance gets ours once, from its owner, and keeps it.

kopf decided per object and filter whether its finalizer was needed, so the shard that did not own
an appliance removed the finalizer its owner had just added, and the two shards patched every
object back and forth. The operator now manages its finalizer itself and kopf patches nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.controller.finalizers import FINALIZER

pytestmark = pytest.mark.integration

NAMES = [f"fw-{i}" for i in range(6)]


def appliances(kubectl: Any, namespace: str) -> dict[str, dict[str, Any]]:
    items = json.loads(kubectl("get", "vnfappliances", "-n", namespace, "-o", "json").stdout)["items"]
    return {o["metadata"]["name"]: o for o in items}


def test_shards_add_the_finalizer_once_and_do_not_fight(
    kubectl: Any, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    for name in NAMES:
        obj = {
            "apiVersion": "vnf.operators.dev/v1alpha1",
            "kind": "VnfAppliance",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "providerRef": {"name": "absent-provider"},
                "management": {"host": "127.0.0.1"},
                "deletionPolicy": "Orphan",
            },
        }
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))
    shards = [
        OperatorProcess(operator_kubeconfig, tmp_path / f"shard{i}.log", env={"VNF_SHARD": f"{i}/2"}).start()
        for i in range(2)
    ]
    try:

        def settled() -> dict[str, dict[str, Any]] | None:
            objs = appliances(kubectl, namespace)
            done = all(
                FINALIZER in (o["metadata"].get("finalizers") or [])
                and condition(o, "Ready").get("reason") == "ProviderNotFound"
                for o in objs.values()
            )
            return objs if done and len(objs) == len(NAMES) else None

        first = wait_for(settled, timeout=90, what="every appliance reconciled and finalized")
        # Both shards have seen every event by now; with the old fight the metadata kept changing.
        time.sleep(3)
        later = appliances(kubectl, namespace)
        for name, obj in first.items():
            meta = later[name]["metadata"]
            assert meta["finalizers"] == [FINALIZER], meta
            assert meta["resourceVersion"] == obj["metadata"]["resourceVersion"], f"{name} kept changing"
            assert not any(
                k.startswith("vnf.operators.dev/last-handled") for k in meta.get("annotations") or {}
            )

        # Deletion: the owner of each removes the finalizer, so every appliance goes.
        kubectl("delete", "vnfappliances", "--all", "-n", namespace, "--wait=false")
        wait_for(lambda: not appliances(kubectl, namespace), timeout=60, what="every appliance deleted")
    finally:
        for p in shards:
            p.stop()


def test_a_deleted_appliance_is_cleaned_up_by_one_operator(
    kubectl: Any, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    """A finalizer present before the operator starts (an older version added it) is honoured."""
    obj = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": "old", "namespace": namespace, "finalizers": [FINALIZER]},
        "spec": {
            "providerRef": {"name": "absent-provider"},
            "management": {"host": "127.0.0.1"},
            "deletionPolicy": "Orphan",
        },
    }
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))
    kubectl("delete", "vnfappliance", "old", "-n", namespace, "--wait=false")
    assert get_json(kubectl, "vnfappliance", "old", "-n", namespace)["metadata"]["deletionTimestamp"]
    op = OperatorProcess(operator_kubeconfig, tmp_path / "op.log").start()
    try:
        wait_for(
            lambda: kubectl("get", "vnfappliance", "old", "-n", namespace, check=False).returncode != 0,
            timeout=60,
            what="appliance released by the operator",
        )
    finally:
        op.stop()
