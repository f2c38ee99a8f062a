"""manifests/ on a real kube-apiserver: it installs with one server-side apply, and RBAC is minimal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from vnf_operator.testing.controlplane import Kubectl

pytestmark = pytest.mark.integration

NAMESPACE = "vnf-system"


def test_server_side_apply_is_idempotent(kubectl: Kubectl, repo_root: Path) -> None:
    # The fixture applied it once already; a second apply must succeed without conflicts.
    output = kubectl("apply", "--server-side", "-k", str(repo_root / "manifests")).stdout
    for name in (
        "namespace/vnf-system",
        "customresourcedefinition.apiextensions.k8s.io/vnfappliances.vnf.operators.dev",
        "customresourcedefinition.apiextensions.k8s.io/clusterkopfpeerings.kopf.dev",
        "serviceaccount/vnf-operator",
        "clusterrole.rbac.authorization.k8s.io/vnf-operator",
        "clusterrolebinding.rbac.authorization.k8s.io/vnf-operator",
        "deployment.apps/vnf-operator",
        "service/vnf-operator-metrics",
    ):
        assert f"{name} serverside-applied" in output


def test_deployment_shape(kubectl: Kubectl) -> None:
    deployment = json.loads(
        kubectl("get", "deployment", "vnf-operator", f"-n={NAMESPACE}", "-o", "json").stdout
    )
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "vnf-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "vnf-operator:dev"
    assert container["command"] == [
        "kopf",
        "run",
        "-m",
        "vnf_operator.controller.main",
        "--all-namespaces",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz", "scheme": "HTTP"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"healthz": 8080, "metrics": 9090}
    assert set(container["resources"]) == {"requests", "limits"}


def test_metrics_service(kubectl: Kubectl) -> None:
    service = json.loads(
        kubectl("get", "service", "vnf-operator-metrics", f"-n={NAMESPACE}", "-o", "json").stdout
    )
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("metrics", 9090, "metrics")
    deployment = json.loads(
        kubectl("get", "deployment", "vnf-operator", f"-n={NAMESPACE}", "-o", "json").stdout
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_operator_pod_passes_restricted_pod_security(kubectl: Kubectl, repo_root: Path) -> None:
    # vnf-system enforces the "restricted" Pod Security Standard; PodSecurity admission judges a pod
    # built from the Deployment's template (server-side dry run: no kubelet needed).
    deployment = yaml.safe_load((repo_root / "manifests" / "deployment.yaml").read_text())
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-template-check", "namespace": NAMESPACE},
        "spec": deployment["spec"]["template"]["spec"],
    }
    result = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr

    # The check has teeth: the same pod running as root is refused.
    pod["spec"]["securityContext"] = {"runAsNonRoot": False}
    result = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted' in result.stderr


def test_operator_identity_is_the_service_account(
    kubectl_as_operator: Kubectl, operator_kubeconfig: Path
) -> None:
    whoami = kubectl_as_operator("auth", "whoami", "-o", "json").stdout
    assert (
        json.loads(whoami)["status"]["userInfo"]["username"]
        == "system:serviceaccount:vnf-system:vnf-operator"
    )
    (user,) = yaml.safe_load(operator_kubeconfig.read_text())["users"]
    assert set(user["user"]) == {"token"}  # no admin certificate to fall back on


# (verb, resource, extra flags)
ALLOWED = [
    ("patch", "vnfappliances", "--subresource=status"),
    ("patch", "vnfproviders", "--subresource=status"),
    ("patch", "vnfoperations", "--subresource=status"),
    ("watch", "vnfappliances", ""),
    ("patch", "vnfappliances", ""),  # kopf finalizers and progress annotations
    ("delete", "vnfoperations", ""),  # ttlSecondsAfterFinished
    ("list", "secrets", ""),
    ("create", "secrets", ""),
    ("create", "events", ""),
    ("create", "events.events.k8s.io", ""),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("watch", "namespaces", ""),
    ("patch", "clusterkopfpeerings.kopf.dev", ""),
    ("create", "controllerrevisions.apps", ""),
]
DENIED = [
    ("delete", "namespaces", ""),
    ("create", "clusterroles.rbac.authorization.k8s.io", ""),
    ("get", "pods", ""),
    ("delete", "secrets", ""),
    ("delete", "vnfappliances", ""),
    ("create", "vnfappliances", ""),
    ("update", "vnfappliances", ""),
    ("create", "namespaces", ""),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io", ""),
    ("create", "serviceaccounts", "--subresource=token"),
]


def can_i(kubectl_as_operator: Kubectl, verb: str, resource: str, extra: str) -> bool:
    args = ["auth", "can-i", verb, resource, "--all-namespaces", *([extra] if extra else [])]
    result = kubectl_as_operator(*args, check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize(("verb", "resource", "extra"), ALLOWED, ids=[f"{v}-{r}{e}" for v, r, e in ALLOWED])
def test_operator_can(kubectl_as_operator: Kubectl, verb: str, resource: str, extra: str) -> None:
    assert can_i(kubectl_as_operator, verb, resource, extra)


@pytest.mark.parametrize(("verb", "resource", "extra"), DENIED, ids=[f"{v}-{r}{e}" for v, r, e in DENIED])
def test_operator_cannot(kubectl_as_operator: Kubectl, verb: str, resource: str, extra: str) -> None:
    assert not can_i(kubectl_as_operator, verb, resource, extra)


def test_operator_can_really_patch_appliance_status(
    kubectl: Kubectl, kubectl_as_operator: Kubectl, namespace: str
) -> None:
    appliance = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": "fw1", "namespace": namespace},
        "spec": {"providerRef": {"name": "opnsense"}, "management": {"host": "127.0.0.1"}},
    }
    kubectl("create", "-f", "-", input=json.dumps(appliance))
    status = {"status": {"observedGeneration": 1, "lastSyncTime": "2026-01-01T00:00:00Z"}}
    kubectl_as_operator(
        "patch",
        "vnfa",
        "fw1",
        f"-n={namespace}",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    denied = kubectl_as_operator("delete", "vnfa", "fw1", f"-n={namespace}", check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
