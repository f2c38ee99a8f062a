"""Integration fixtures: a real kube-apiserver + etcd with the CRDs and manifests installed.

The control plane is started once per session in a temporary directory (binaries are built on first
use by hack/controlplane/build.sh). There is no kubelet or controller-manager: the operator Deployment
never gets pods, namespaces never finish terminating and nothing is garbage collected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vnf_operator.testing.controlplane import ControlPlane, Kubectl

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "vnf-system"
OPERATOR_SERVICE_ACCOUNT = "vnf-operator"


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A fresh control plane with `kubectl apply --server-side -k manifests/` done."""
    # die_with_parent: if the session is killed outright, etcd and kube-apiserver go with it.
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"), die_with_parent=True)
    with plane:
        plane.kubectl("apply", "--server-side", "-k", str(REPO_ROOT / "manifests"))
        plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        plane.reset_discovery_cache()  # so `kubectl get vnf` sees the new category
        yield plane


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """kubectl as cluster admin: `kubectl("get", "ns", check=False)` returns a CompletedProcess[str]."""
    return control_plane.kubectl


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig authenticating only as ServiceAccount vnf-system/vnf-operator (TokenRequest)."""
    path = tmp_path_factory.mktemp("operator") / "operator.kubeconfig"
    return control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, path)


@pytest.fixture(scope="session")
def kubectl_as_operator(control_plane: ControlPlane, operator_kubeconfig: Path) -> Kubectl:
    """kubectl with the operator's ServiceAccount identity (and so only its RBAC)."""
    return control_plane.kubectl_as(operator_kubeconfig)


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    """A new, empty namespace for one test (left behind: without a controller-manager it never goes)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    return name
