"""Least privilege: what the operator's ServiceAccount can do is exactly what manifests/rbac.yaml
documents, it really cannot do the dangerous rest, and the admission policy in manifests/webhook/
closes what RBAC cannot express (which Secrets it writes, and never a spec change).

tests/integration/test_manifests.py checks single verbs with `kubectl auth can-i`; here:
- the SA's complete effective rule list equals the ClusterRole (so no binding widens it unseen);
- real requests, made with the SA's token, are refused (delete a namespace, read pods, create a
  Deployment, change or delete a CRD, bind cluster-admin, mint a token, impersonate);
- with `manifests/webhook/operator-write-policy.yaml` installed, the SA can write only
  `<appliance>-bootstrap-outputs` Secrets owned by that appliance and cannot change any spec, while
  the running operator still reconciles and finalizes appliances normally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from tests.integration.operator_runner import OperatorProcess
from tests.integration.reliability import lab

pytestmark = pytest.mark.integration

RBAC = lab.REPO / "manifests" / "rbac.yaml"
POLICY = lab.REPO / "manifests" / "webhook" / "operator-write-policy.yaml"
# Granted to every authenticated user by the default discovery/self-review roles.
BASELINE = {
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
    "selfsubjectreviews.authentication.k8s.io",
}


def _documented() -> set[tuple[str, str]]:
    docs = list(yaml.safe_load_all(RBAC.read_text()))
    role = next(d for d in docs if d and d["kind"] == "ClusterRole")
    out: set[tuple[str, str]] = set()
    for rule in role["rules"]:
        for group in rule.get("apiGroups", [""]):
            for res in rule["resources"]:
                for verb in rule["verbs"]:
                    base, _, sub = res.partition("/")  # can-i --list writes `plural.group/subresource`
                    name = f"{base}.{group}" if group else base
                    out.add((f"{name}/{sub}" if sub else name, verb))
    return out


def _effective(kubectl_as_operator: Any, namespace: str) -> set[tuple[str, str]]:
    proc = kubectl_as_operator("auth", "can-i", "--list", "-n", namespace)
    out: set[tuple[str, str]] = set()
    for line in proc.stdout.splitlines()[1:]:
        m = re.match(r"^(\S+)\s+(\[.*?\])\s+(\[.*?\])\s+\[(.*)\]\s*$", line)
        if m is None or m.group(2) != "[]":  # non-resource URLs are discovery, not our concern
            continue
        resource, names, verbs = m.group(1), m.group(3), m.group(4).split()
        assert names == "[]", f"unexpected resourceNames rule: {line}"
        if resource in BASELINE:
            continue
        out.update((resource, v) for v in verbs)
    return out


def test_effective_permissions_are_exactly_the_documented_ones(
    kubectl_as_operator: Any, namespace: str
) -> None:
    effective, documented = _effective(kubectl_as_operator, namespace), _documented()
    assert effective == documented, (
        f"granted but not in rbac.yaml: {sorted(effective - documented)}; "
        f"in rbac.yaml but not granted: {sorted(documented - effective)}"
    )


@pytest.mark.parametrize(
    ("what", "args", "stdin"),
    [
        ("delete a namespace", ["delete", "namespace", "{ns}", "--wait=false"], None),
        ("read pods", ["get", "pods", "-A"], None),
        ("read configmaps", ["get", "configmaps", "-n", "kube-system"], None),
        ("create a Deployment", ["create", "deployment", "evil", "--image=busybox", "-n", "{ns}"], None),
        (
            "patch a CRD",
            [
                "patch",
                "crd",
                "vnfappliances.vnf.operators.dev",
                "--type=merge",
                "-p",
                '{"metadata":{"labels":{"owned":"yes"}}}',
            ],
            None,
        ),
        ("delete a CRD", ["delete", "crd", "vnfoperations.vnf.operators.dev", "--dry-run=server"], None),
        (
            "bind cluster-admin",
            [
                "create",
                "clusterrolebinding",
                "evil",
                "--clusterrole=cluster-admin",
                "--serviceaccount=vnf-system:vnf-operator",
            ],
            None,
        ),
        ("mint a token", ["create", "token", "default", "-n", "kube-system"], None),
        ("impersonate", ["get", "secrets", "-n", "{ns}", "--as=system:admin"], None),
        ("delete a Secret", ["delete", "secret", "victim", "-n", "{ns}"], None),
        ("create a VnfAppliance", ["apply", "-f", "-"], "appliance"),
        ("delete a VnfAppliance", ["delete", "vnfappliance", "target", "-n", "{ns}"], None),
        ("register a webhook", ["create", "-f", "-"], "webhook"),
    ],
)
def test_operator_really_cannot(
    kubectl: Any, kubectl_as_operator: Any, namespace: str, what: str, args: list[str], stdin: str | None
) -> None:
    kubectl("create", "secret", "generic", "victim", "-n", namespace, "--from-literal=k=v")
    target = lab.appliance_object(namespace, "target", None, [])
    lab.apply(kubectl, [target])
    bodies = {
        "appliance": json.dumps(lab.appliance_object(namespace, "evil", None, [])),
        "webhook": json.dumps(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "evil"},
                "webhooks": [],
            }
        ),
    }
    argv = [a.replace("{ns}", namespace) for a in args]
    proc = kubectl_as_operator(*argv, input=bodies.get(stdin or ""), check=False)
    assert proc.returncode != 0, f"the operator could {what}: {proc.stdout}"
    assert "forbidden" in proc.stderr.lower(), proc.stderr
    assert kubectl("get", "namespace", namespace, check=False).returncode == 0
    kubectl("delete", "vnfappliance", "target", "-n", namespace, "--wait=false", check=False)


def test_what_rbac_cannot_narrow_is_documented(kubectl_as_operator: Any) -> None:
    """The Secret-access model of docs/security.md, as it is (cluster-wide ClusterRole)."""

    def can(*args: str) -> bool:
        return bool(kubectl_as_operator("auth", "can-i", *args, check=False).stdout.strip() == "yes")

    # Reads: credentials live in each appliance's namespace, so the operator reads Secrets everywhere.
    assert can("get", "secrets", "-n", "kube-system")
    assert can("watch", "secrets", "--all-namespaces")
    # Writes: RBAC cannot restrict `create` by name; the admission policy below does.
    assert can("create", "secrets", "-n", "kube-system")
    # kopf needs `patch` on the objects (finalizers, annotations); RBAC cannot exclude spec.
    assert can("patch", "vnfappliances", "--all-namespaces")
    assert not can("delete", "secrets", "--all-namespaces")


@pytest.fixture
def write_policy(kubectl: Any) -> Iterator[None]:
    kubectl("apply", "--server-side", "-f", str(POLICY))
    yield
    kubectl("delete", "-f", str(POLICY), "--ignore-not-found")


def test_admission_policy_confines_the_operators_writes(
    kubectl: Any,
    kubectl_as_operator: Any,
    namespace: str,
    write_policy: None,
    operator: OperatorProcess,
    opnsense_providers: dict[str, str],
) -> None:
    def as_operator(*args: str, body: dict[str, Any] | None = None) -> Any:
        return kubectl_as_operator(*args, input=json.dumps(body) if body else None, check=False)

    def secret(
        name: str, *, labels: dict[str, str] | None = None, owner: str | None = None
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
        if owner:
            meta["ownerReferences"] = [
                {"apiVersion": lab.API, "kind": "VnfAppliance", "name": owner,
                 "uid": "00000000-0000-0000-0000-000000000001"}
            ]  # fmt: skip
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {"k": "v"}}

    # The policy is enforced asynchronously once created: wait until a forbidden write is refused.
    probe = secret("probe")
    lab.wait_until(
        lambda: (
            "vnf-operator may only write"
            in as_operator("create", "--dry-run=server", "-f", "-", body=probe).stderr
            or None
        ),
        timeout=30,
        what="the admission policy to be enforced",
    )
    refused = {
        "any Secret": secret("db-password"),
        "a Secret in kube-system": {
            **secret("evil"),
            "metadata": {"name": "evil", "namespace": "kube-system"},
        },
        "an unowned outputs Secret": secret(
            "fw-bootstrap-outputs", labels={"vnf.operators.dev/appliance": "fw"}
        ),
        "an outputs Secret of another name": secret(
            "x-bootstrap-outputs", labels={"vnf.operators.dev/appliance": "fw"}, owner="fw"
        ),
    }
    for what, body in refused.items():
        proc = as_operator("create", "-f", "-", body=body)
        assert proc.returncode != 0 and "vnf-operator may only write" in proc.stderr, (what, proc.stderr)
    ok = as_operator(
        "create",
        "-f",
        "-",
        body=secret("fw-bootstrap-outputs", labels={"vnf.operators.dev/appliance": "fw"}, owner="fw"),
    )
    assert ok.returncode == 0, ok.stderr

    # No spec change, whatever the verb; metadata and status still work.
    with lab.Device("policy") as device:
        rules = lab.make_rules(2, "p")
        lab.apply(
            kubectl,
            [
                *lab.secret_objects(namespace, "fw", device),
                lab.appliance_object(namespace, "fw", device, rules),
            ],
        )
        lab.wait_ready(kubectl, namespace, ["fw"], timeout=90)  # the live operator works under the policy
        proc = as_operator(
            "patch", "vnfappliance", "fw", "-n", namespace, "--type=merge", "-p", '{"spec":{"paused":true}}'
        )
        assert (
            proc.returncode != 0
            and "may not create vnf.operators.dev objects or change their spec" in proc.stderr
        )
        proc = as_operator("annotate", "vnfappliance", "fw", "-n", namespace, "example.com/note=ok")
        assert proc.returncode == 0, proc.stderr
        # Deletion: kopf's finalizer runs and is removed under the policy (Orphan: device untouched).
        kubectl("delete", "vnfappliance", "fw", "-n", namespace, "--wait=false")
        lab.wait_until(
            lambda: "fw" not in lab.appliances(kubectl, namespace) or None,
            timeout=60,
            what="the operator to finalize the appliance under the policy",
        )
        assert lab.check_device(device, namespace, "fw", rules).ok
