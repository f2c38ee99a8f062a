"""Two operator shards split the appliances: each is handled by exactly one, and all are handled."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.controller.sharding import shard_of

pytestmark = pytest.mark.integration

RECONCILED = re.compile(r"reconciled (\S+)/(\S+) in \S+ \(shard (\d+)\)")


def handled(proc: OperatorProcess, namespace: str) -> set[str]:
    return {m.group(2) for m in RECONCILED.finditer(proc.output()) if m.group(1) == namespace}


def test_each_appliance_is_handled_by_exactly_one_shard(
    kubectl: Any, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    names = [f"fw-{i}" for i in range(8)]
    for name in names:
        obj = {
            "apiVersion": "vnf.operators.dev/v1alpha1",
            "kind": "VnfAppliance",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"providerRef": {"name": "absent-provider"}, "management": {"host": "127.0.0.1"}},
        }
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj))
    shards = [
        OperatorProcess(
            operator_kubeconfig,
            tmp_path / f"shard{i}.log",
            env={"VNF_SHARD": f"{i}/2", "VNF_LOG_LEVEL": "DEBUG", "VNF_METRICS_PORT": "0"},
        ).start()
        for i in range(2)
    ]
    try:

        def all_reported() -> bool:
            return all(
                condition(get_json(kubectl, "vnfappliance", n, "-n", namespace), "Ready").get("reason")
                == "ProviderNotFound"
                for n in names
            )

        wait_for(all_reported, timeout=90, what="every appliance reconciled")
        # A reconcile is logged after its status patch: give the last log lines a moment to land.
        wait_for(
            lambda: set().union(*(handled(p, namespace) for p in shards)) == set(names),
            timeout=30,
            what="every reconcile in the shards' logs",
        )
        seen = [handled(p, namespace) for p in shards]
        assert seen[0] | seen[1] == set(names)
        assert not seen[0] & seen[1], "an appliance was handled by both shards"
        for i, names_of_shard in enumerate(seen):
            assert all(shard_of(namespace, n, 2) == i for n in names_of_shard)
    finally:
        for p in shards:
            p.stop()
