"""The real operator manages HAProxy pool members (providers/haproxy-runtime.yaml) in the lab router.

The lab's HAProxy gets an empty backend `be_pool` behind a frontend on the router's front address;
the operator fills it with dynamic servers through the runtime API over SSH (key authentication),
and real HTTP requests from the client namespace show where the traffic goes.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.controlplane import Kubectl
from vnf_operator.testing.netns import LabConfig, LabError, LinuxRouterLab

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PROVIDER = REPO / "providers" / "haproxy-runtime.yaml"
APPLIANCE = "lb"
POOL_PORT = 8081


@pytest.fixture(scope="module")
def linux_router_lab_config() -> LabConfig:
    return LabConfig(with_peer=False, backend_count=3)


@pytest.fixture(scope="module")
def lab(linux_router_lab: LinuxRouterLab) -> Iterator[LinuxRouterLab]:
    """The lab with HAProxy reconfigured: only `fe_pool` on port 8081 and an empty `be_pool`."""
    lab = linux_router_lab
    original = lab.haproxy_config_path.read_text()
    head = original.split("\nfrontend ", 1)[0]  # global and defaults sections
    lab.haproxy_config_path.write_text(
        f"{head}\n"
        f"frontend fe_pool\n    bind {lab.front_address}:{POOL_PORT}\n    default_backend be_pool\n\n"
        "backend be_pool\n    balance roundrobin\n"
    )
    lab.haproxy_reload()
    yield lab
    lab.haproxy_config_path.write_text(original)
    lab.haproxy_reload()


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory, lab: LinuxRouterLab
) -> Iterator[OperatorProcess]:
    kubectl("apply", "--server-side", "-f", str(PROVIDER))
    proc = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("op") / "operator.log").start()
    wait_for(
        lambda: (
            condition(get_json(kubectl, "vnfprovider", "haproxy-runtime"), "Ready").get("status") == "True"
        ),
        timeout=60,
        what="VnfProvider haproxy-runtime Ready (the operator loaded the dictionary)",
    )
    yield proc
    proc.stop()
    out = proc.output()
    assert "Traceback" not in out, out[-4000:]
    key_body = "".join(lab.ssh_private_key.strip().splitlines()[1:-1])
    assert key_body[:40] not in out, "the SSH private key leaked into the operator log"


# ------------------------------------------------------------------------------------------ helpers


def apply(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    kubectl("apply", "--server-side", "--field-manager=e2e", "-f", "-", input=json.dumps(obj))


def setup_secrets(kubectl: Kubectl, ns: str, lab: LinuxRouterLab) -> None:
    for name, data in (
        ("lb-ssh", {"username": lab.ssh_user, "private_key": lab.ssh_private_key}),
        ("lb-known-hosts", {"known_hosts": lab.known_hosts_line + "\n"}),
    ):
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "stringData": data,
        }
        kubectl("apply", "-f", "-", input=json.dumps(secret))


def appliance(ns: str, lab: LinuxRouterLab, members: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": APPLIANCE, "namespace": ns},
        "spec": {
            "providerRef": {"name": "haproxy-runtime"},
            "management": {"host": lab.mgmt_address, "ports": {"runtime": lab.ssh_port}},
            "credentialsSecretRef": {"name": "lb-ssh"},
            "ssh": {"knownHostsSecretRef": {"name": "lb-known-hosts"}},
            "services": {"lb_pool_members": {"items": members}},
        },
    }


def ready_at(kubectl: Kubectl, ns: str, generation: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfappliance", APPLIANCE, "-n", ns)
        st = obj.get("status") or {}
        if st.get("observedGeneration") == generation and condition(obj, "Ready").get("status") == "True":
            return obj
        return None

    try:
        result: dict[str, Any] = wait_for(
            check, timeout=120, what=f"appliance Ready at generation {generation}"
        )
    except AssertionError:
        obj = get_json(kubectl, "vnfappliance", APPLIANCE, "-n", ns)
        raise AssertionError(f"not Ready: {json.dumps(obj.get('status'), indent=1)[:3000]}") from None
    return result


def last_plan(obj: dict[str, Any]) -> tuple[int, int, int]:
    plan = obj["status"]["services"]["lb_pool_members"]["lastPlan"]
    return plan["create"], plan["update"], plan["delete"]


def spread(lab: LinuxRouterLab, requests: int) -> Counter[str]:
    """Which backend answered each of `requests` HTTP requests sent to the pool's frontend."""
    url = f"http://{lab.front_address}:{POOL_PORT}/"
    return Counter(lab.http_get_json("client", url)["backend"] for _ in range(requests))


def pool_answers(lab: LinuxRouterLab) -> bool:
    try:
        lab.http_get_json("client", f"http://{lab.front_address}:{POOL_PORT}/")
    except (LabError, ValueError):
        return False
    return True


def pool_servers(lab: LinuxRouterLab) -> dict[str, list[str]]:
    """`show servers state be_pool`: server name → its fields."""
    lines = lab.haproxy_runtime("show servers state be_pool").splitlines()
    rows = [line.split() for line in lines if line and line[0].isdigit() and len(line.split()) > 5]
    return {row[3]: row for row in rows}


# ------------------------------------------------------------------------------------------ test


@pytest.fixture
def cleanup(kubectl: Kubectl, namespace: str) -> Iterator[None]:
    """A test that failed half-way leaves its appliance behind: delete it (and its members)."""
    yield
    kubectl(
        "delete",
        "vnfappliance",
        APPLIANCE,
        "-n",
        namespace,
        "--ignore-not-found",
        "--timeout=60s",
        check=False,
    )


def test_pool_members_receive_and_stop_receiving_traffic(
    kubectl: Kubectl, namespace: str, lab: LinuxRouterLab, operator: OperatorProcess, cleanup: None
) -> None:
    b1, b2, b3 = lab.backends
    assert not pool_answers(lab), "the pool starts empty (HAProxy answers 503)"
    members = [
        {"backend": "be_pool", "name": f"m{i}", "address": b.address, "port": b.http_port}
        for i, b in enumerate((b1, b2, b3), 1)
    ]
    setup_secrets(kubectl, namespace, lab)
    apply(kubectl, appliance(namespace, lab, members))
    obj = ready_at(kubectl, namespace, 1)
    assert last_plan(obj) == (3, 0, 0)
    assert set(pool_servers(lab)) == {"m1", "m2", "m3"}
    # Round robin over the three members: every backend gets requests.
    assert set(spread(lab, 12)) == {"backend-1", "backend-2", "backend-3"}

    # Remove m2 from the spec: it is deleted and gets no more traffic.
    apply(kubectl, appliance(namespace, lab, [members[0], members[2]]))
    obj = ready_at(kubectl, namespace, 2)
    assert last_plan(obj) == (0, 0, 1)
    assert set(pool_servers(lab)) == {"m1", "m3"}
    assert set(spread(lab, 12)) == {"backend-1", "backend-3"}

    # Disable m3 (maintenance): one update in place, all traffic goes to m1.
    apply(kubectl, appliance(namespace, lab, [members[0], {**members[2], "enabled": False}]))
    obj = ready_at(kubectl, namespace, 3)
    assert last_plan(obj) == (0, 1, 0)
    assert set(spread(lab, 6)) == {"backend-1"}

    # Weights: m1 3, m3 back in service with 1: traffic follows the weights.
    final = [{**members[0], "weight": 3}, {**members[2], "weight": 1}]
    apply(kubectl, appliance(namespace, lab, final))
    obj = ready_at(kubectl, namespace, 4)
    assert last_plan(obj) == (0, 2, 0)
    counts = spread(lab, 16)
    assert set(counts) == {"backend-1", "backend-3"}
    assert counts["backend-1"] > counts["backend-3"]

    # Drift: a reload forgets runtime-added servers; a reconcile request adds them back.
    lab.haproxy_reload()
    assert pool_servers(lab) == {}
    assert not pool_answers(lab)
    kubectl(
        "annotate", "--overwrite", "vnfappliance", APPLIANCE, "-n", namespace,
        f"vnf.operators.dev/reconcile-requested={uuid.uuid4().hex}",
    )  # fmt: skip
    wait_for(lambda: set(pool_servers(lab)) == {"m1", "m3"}, timeout=90, what="pool members restored")
    wait_for(lambda: pool_answers(lab), timeout=30, what="the pool answering again")
    assert set(spread(lab, 8)) == {"backend-1", "backend-3"}

    # Deleting the appliance removes its members and leaves a server added by hand.
    lab.haproxy_runtime(f"add server be_pool/manual {b2.address}:{b2.http_port}")
    kubectl("delete", "vnfappliance", APPLIANCE, "-n", namespace, "--wait=false")
    wait_for(
        lambda: kubectl("get", "vnfappliance", APPLIANCE, "-n", namespace, check=False).returncode != 0,
        timeout=90,
        what="appliance gone after its finalizer",
    )
    assert set(pool_servers(lab)) == {"manual"}
