"""The CRDs as the real kube-apiserver enforces them: schemas, CEL rules, printer columns, categories."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from vnf_operator.testing.controlplane import Kubectl

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
API_VERSION = "vnf.operators.dev/v1alpha1"
DELETE = object()  # marks a key to remove in `changed`


def changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with `changes` merged in (nested dicts merge, DELETE removes a key)."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DELETE:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = changed(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


PROVIDER: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "VnfProvider",
    "metadata": {"name": "test-provider"},
    "spec": {
        "language": "v1",
        "info": {
            "name": "Test provider",
            "vendor": "Example",
            "version": "1.2.0",
            "capabilities": {"commitModel": "staged", "rollback": False, "batching": True},
        },
        "credentials": {"apiKey": {"description": "API key", "required": True}},
        "connections": {"https": {"type": "http", "port": 443}},
        "services": {"aliases": {"fields": {"name": {"type": "string"}}}},
        "templates": {"auth": "{{ credentials.apiKey }}"},
    },
}

APPLIANCE: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "VnfAppliance",
    "metadata": {"name": "fw1"},
    "spec": {
        "providerRef": {"name": "test-provider"},
        "management": {"host": "127.0.0.1", "ports": {"https": 8443}},
        "credentialsSecretRef": {"name": "fw1-credentials"},
        "services": {"aliases": {"items": [{"name": "web", "content": ["10.0.0.1"]}]}},
    },
}

OPERATION: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "VnfOperation",
    "metadata": {"name": "arp"},
    "spec": {"applianceRef": {"name": "fw1"}, "service": "diagnostics", "operation": "arpTable"},
}

KEY_REF = {"name": "bastion", "key": "secret"}

# (id, manifest, texts the apiserver's message must contain: the field path and what is wrong)
REJECTED: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "missing-providerRef",
        changed(APPLIANCE, {"spec": {"providerRef": DELETE}}),
        ["spec.providerRef: Required value"],
    ),
    (
        "missing-management-host",
        changed(APPLIANCE, {"spec": {"management": {"host": DELETE}}}),
        ["spec.management.host: Required value"],
    ),
    (
        "wrong-type-paused",
        changed(APPLIANCE, {"spec": {"paused": "yes"}}),
        ["spec.paused", "must be of type boolean"],
    ),
    (
        "bad-enum-driftPolicy",
        changed(APPLIANCE, {"spec": {"driftPolicy": "ignore"}}),
        ['spec.driftPolicy: Unsupported value: "ignore"', '"revert"', '"report"'],
    ),
    (
        "bad-enum-service-policy",
        changed(APPLIANCE, {"spec": {"services": {"aliases": {"policy": "everything"}}}}),
        ["spec.services.aliases.policy: Unsupported value", '"overridden"'],
    ),
    (
        "port-too-high",
        changed(APPLIANCE, {"spec": {"management": {"ports": {"https": 70000}}}}),
        ["spec.management.ports.https", "less than or equal to 65535"],
    ),
    (
        "port-zero",
        changed(APPLIANCE, {"spec": {"management": {"ports": {"ssh": 0}}}}),
        ["spec.management.ports.ssh", "greater than or equal to 1"],
    ),
    (
        "bad-host",
        changed(APPLIANCE, {"spec": {"management": {"host": "fw 1/admin"}}}),
        ["spec.management.host", "must be an IPv4 address, an IPv6 address or a DNS name"],
    ),
    (
        "tls-ca-and-insecure",
        changed(APPLIANCE, {"spec": {"tls": {"caSecretRef": {"name": "ca"}, "insecureSkipVerify": True}}}),
        ["spec.tls", "tls.caSecretRef and tls.insecureSkipVerify are mutually exclusive"],
    ),
    (
        "jumpHost-mode-without-jumpHost",
        changed(APPLIANCE, {"spec": {"reach": {"mode": "jumpHost"}}}),
        ["spec.reach", "reach.jumpHost is required when reach.mode is jumpHost"],
    ),
    (
        "jumpHost-without-credentials",
        changed(
            APPLIANCE,
            {"spec": {"reach": {"mode": "jumpHost", "jumpHost": {"host": "127.0.0.2", "username": "ops"}}}},
        ),
        ["spec.reach.jumpHost", "exactly one of passwordSecretKeyRef or privateKeySecretKeyRef"],
    ),
    (
        "jumpHost-password-and-key",
        changed(
            APPLIANCE,
            {
                "spec": {
                    "reach": {
                        "mode": "jumpHost",
                        "jumpHost": {
                            "host": "bastion.example",
                            "username": "ops",
                            "passwordSecretKeyRef": KEY_REF,
                            "privateKeySecretKeyRef": KEY_REF,
                        },
                    }
                }
            },
        ),
        ["spec.reach.jumpHost", "exactly one of passwordSecretKeyRef or privateKeySecretKeyRef"],
    ),
    (
        "proxy-settings-in-direct-mode",
        changed(
            APPLIANCE, {"spec": {"reach": {"mode": "direct", "proxy": {"url": "http://127.0.0.1:3128"}}}}
        ),
        ["spec.reach", "reach.proxy is only allowed when reach.mode is proxy"],
    ),
    (
        "proxy-url-bad-scheme",
        changed(APPLIANCE, {"spec": {"reach": {"mode": "proxy", "proxy": {"url": "ftp://127.0.0.1"}}}}),
        ["spec.reach.proxy.url", "must be an http:// URL (HTTP CONNECT; SOCKS is not supported)"],
    ),
    (
        "proxy-url-socks",
        changed(
            APPLIANCE, {"spec": {"reach": {"mode": "proxy", "proxy": {"url": "socks5://127.0.0.1:1080"}}}}
        ),
        ["spec.reach.proxy.url", "SOCKS is not supported"],
    ),
    (
        "overridden-without-protected",
        changed(APPLIANCE, {"spec": {"services": {"aliases": {"policy": "overridden"}}}}),
        ["spec.services[aliases]", "protected must list at least one item when policy is overridden"],
    ),
    (
        "overridden-with-empty-protected",
        changed(APPLIANCE, {"spec": {"services": {"aliases": {"policy": "overridden", "protected": []}}}}),
        ["spec.services[aliases]", "protected must list at least one item when policy is overridden"],
    ),
    (
        "bad-service-name",
        changed(APPLIANCE, {"spec": {"services": {"no spaces": {"items": []}}}}),
        ["spec.services", "service names must start with a letter"],
    ),
    (
        "bad-duration",
        changed(APPLIANCE, {"spec": {"resyncInterval": "5 minutes"}}),
        ["spec.resyncInterval", "resyncInterval must be a duration such as 30s, 5m or 1h30m"],
    ),
    (
        "duration-too-short",
        changed(APPLIANCE, {"spec": {"resyncInterval": "1s"}}),
        ["spec.resyncInterval", "resyncInterval must be at least 10s"],
    ),
    (
        "requestsPerSecond-zero",
        changed(APPLIANCE, {"spec": {"limits": {"requestsPerSecond": 0}}}),
        ["spec.limits.requestsPerSecond", "greater than 0"],
    ),
    (
        "maxConcurrency-zero",
        changed(APPLIANCE, {"spec": {"limits": {"maxConcurrency": 0}}}),
        ["spec.limits.maxConcurrency", "greater than or equal to 1"],
    ),
    (
        "bad-provider-pin",
        changed(APPLIANCE, {"spec": {"providerRef": {"version": "latest"}}}),
        ["spec.providerRef.version", "must be a semantic version"],
    ),
    (
        "unknown-field",
        changed(APPLIANCE, {"spec": {"hostname": "fw1"}}),
        ['unknown field "spec.hostname"'],
    ),
    (
        "provider-bad-version",
        changed(PROVIDER, {"spec": {"info": {"version": "one"}}}),
        ["spec.info.version", "info.version must be a semantic version such as 1.2.0"],
    ),
    (
        "provider-bad-commitModel",
        changed(PROVIDER, {"spec": {"info": {"capabilities": {"commitModel": "eventual"}}}}),
        ["spec.info.capabilities.commitModel: Unsupported value", '"commitConfirm"'],
    ),
    (
        "provider-without-connections",
        changed(PROVIDER, {"spec": {"connections": DELETE}}),
        ["spec.connections: Required value"],
    ),
    (
        "operation-missing-service",
        changed(OPERATION, {"spec": {"service": DELETE}}),
        ["spec.service: Required value"],
    ),
    (
        "operation-negative-ttl",
        changed(OPERATION, {"spec": {"ttlSecondsAfterFinished": -1}}),
        ["spec.ttlSecondsAfterFinished", "greater than or equal to 0"],
    ),
]


@pytest.mark.parametrize(
    ("manifest", "expected"), [(m, e) for _, m, e in REJECTED], ids=[i for i, _, _ in REJECTED]
)
def test_malformed_object_is_rejected_naming_the_field(
    kubectl: Kubectl, namespace: str, manifest: dict[str, Any], expected: list[str]
) -> None:
    result = kubectl(
        "create",
        "--dry-run=server",
        f"--namespace={namespace}",
        "-f",
        "-",
        input=json.dumps(manifest),
        check=False,
    )
    assert result.returncode != 0, f"accepted: {result.stdout}"
    for text in expected:
        assert text in result.stderr


@pytest.mark.parametrize(
    "manifest",
    [
        PROVIDER,
        APPLIANCE,
        OPERATION,
        changed(
            APPLIANCE,
            {
                "spec": {
                    "management": {"host": "fd00::1"},
                    "tls": {"caSecretRef": {"name": "fw1-ca"}},
                    "ssh": {"knownHostsSecretRef": {"name": "fw1-hosts"}, "trustOnFirstUse": False},
                    "reach": {
                        "mode": "jumpHost",
                        "jumpHost": {
                            "host": "bastion.example.",
                            "username": "ops",
                            "privateKeySecretKeyRef": KEY_REF,
                        },
                    },
                    "services": {
                        "aliases": {"policy": "overridden", "protected": [{"name": "mgmt"}], "items": []}
                    },
                    "resyncInterval": "1h30m",
                    "limits": {"requestsPerSecond": 0.5, "maxConcurrency": 2},
                }
            },
        ),
        changed(
            APPLIANCE,
            {
                "spec": {
                    "reach": {
                        "mode": "broker",
                        "broker": {"url": "https://broker.example:8443", "tokenSecretKeyRef": KEY_REF},
                    }
                }
            },
        ),
    ],
    ids=["provider", "appliance", "operation", "appliance-everything", "appliance-broker"],
)
def test_valid_object_is_accepted(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    kubectl("create", "--dry-run=server", f"--namespace={namespace}", "-f", "-", input=json.dumps(manifest))


def test_defaults_are_applied(kubectl: Kubectl, namespace: str) -> None:
    manifest = changed(APPLIANCE, {"spec": {"tls": {"caSecretRef": {"name": "fw1-ca"}}}})
    result = kubectl(
        "create",
        "--dry-run=server",
        f"--namespace={namespace}",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(manifest),
    )
    spec = json.loads(result.stdout)["spec"]
    assert spec["resyncInterval"] == "5m"
    assert spec["driftPolicy"] == "revert"
    assert spec["deletionPolicy"] == "Delete"
    assert spec["paused"] is False
    assert spec["dryRun"] is False
    assert spec["tls"]["caSecretRef"]["key"] == "ca.crt"
    # The policy stays unset so the provider's defaultPolicy can apply.
    assert "policy" not in spec["services"]["aliases"]


def test_operation_spec_is_immutable(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", f"--namespace={namespace}", "-f", "-", input=json.dumps(OPERATION))
    result = kubectl(
        "patch",
        "vnfoperation",
        "arp",
        f"--namespace={namespace}",
        "--type=merge",
        "-p",
        '{"spec":{"operation":"routes"}}',
        check=False,
    )
    assert result.returncode != 0
    assert "spec: Invalid value" in result.stderr
    assert "spec is immutable; create a new VnfOperation" in result.stderr
    # Status stays writable.
    kubectl(
        "patch", "vnfoperation", "arp", f"--namespace={namespace}", "--subresource=status", "--type=merge",
        "-p", '{"status":{"phase":"Running"}}',
    )  # fmt: skip


def test_condition_schema_is_enforced_on_status(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", f"--namespace={namespace}", "-f", "-", input=json.dumps(APPLIANCE))
    bad = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "Maybe",
                    "reason": "Synced",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ]
        }
    }
    result = kubectl(
        "patch",
        "vnfappliance",
        "fw1",
        f"--namespace={namespace}",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(bad),
        check=False,
    )
    assert result.returncode != 0
    assert 'status.conditions[0].status: Unsupported value: "Maybe"' in result.stderr
    missing_reason = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ]
        }
    }
    result = kubectl(
        "patch",
        "vnfappliance",
        "fw1",
        f"--namespace={namespace}",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(missing_reason),
        check=False,
    )
    assert result.returncode != 0
    assert "status.conditions[0].reason: Required value" in result.stderr


def test_full_appliance_status_is_accepted_and_kept(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", f"--namespace={namespace}", "-f", "-", input=json.dumps(APPLIANCE))
    now = "2026-01-01T00:00:00Z"
    status = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": "Synced",
                "message": "",
                "lastTransitionTime": now,
                "observedGeneration": 1,
            }
            for t in ("Ready", "ProviderResolved", "Healthy", "Bootstrapped", "InSync")
        ]
        + [
            {
                "type": t,
                "status": "False",
                "reason": "Idle",
                "message": "",
                "lastTransitionTime": now,
                "observedGeneration": 1,
            }
            for t in ("Reconciling", "Stalled")
        ],
        "provider": {"name": "test-provider", "version": "1.2.0", "generation": 3},
        "services": {
            "aliases": {
                "desired": 1,
                "actual": 4,
                "managed": 1,
                "lastPlan": {
                    "create": 1,
                    "update": 0,
                    "delete": 0,
                    "move": 0,
                    "summary": ["create alias web"],
                },
                "managedIds": ["5f0c"],
                "lastError": "",
                "lastSyncTime": now,
            }
        },
        "health": {
            "phases": [{"name": "network", "status": "Passed", "latencyMs": 3, "message": ""}],
            "checkedAt": now,
        },
        "bootstrap": {"completed": True, "completedAt": now, "outputsSecret": "fw1-bootstrap"},
        "hostKeys": {"ssh": "SHA256:abc"},
        "plan": ["create alias web"],
        "lastSyncTime": now,
        "revision": {"current": 2, "lastGood": "fw1-6d5f"},
    }
    kubectl(
        "patch", "vnfappliance", "fw1", f"--namespace={namespace}", "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    stored = json.loads(
        kubectl("get", "vnfappliance", "fw1", f"--namespace={namespace}", "-o", "json").stdout
    )
    # Nothing pruned: every field the operator writes is in the schema.
    assert stored["status"] == status


def test_explain_documents_the_api(kubectl: Kubectl) -> None:
    services = kubectl("explain", "vnfappliance.spec.services").stdout
    assert "Desired configuration per service the provider declares" in services
    assert "protected\t<[]Object>" in services
    assert "Required, non-empty," in services
    reach = kubectl("explain", "vnfappliance.spec.reach.jumpHost").stdout
    assert "SSH bastion" in reach
    provider = kubectl("explain", "vnfprovider.spec.info.capabilities.commitModel").stdout
    assert "commitConfirm" in provider
    operation = kubectl("explain", "vnfoperation.status.rows").stdout
    assert "Result rows" in operation


def test_every_field_has_a_description(repo_root: Path) -> None:
    def walk(schema: dict[str, Any], path: str) -> list[str]:
        missing = [] if "description" in schema or path.endswith(".metadata") else [path]
        for name, child in schema.get("properties", {}).items():
            missing += walk(child, f"{path}.{name}")
        if isinstance(schema.get("items"), dict):
            missing += walk(schema["items"], f"{path}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            missing += walk(schema["additionalProperties"], f"{path}{{}}")
        return missing

    missing: list[str] = []
    for path in sorted((repo_root / "crds").glob("vnf.operators.dev_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            missing += walk(version["schema"]["openAPIV3Schema"], f"{crd['spec']['names']['kind']}")
    assert missing == []


def test_category_vnf_lists_every_kind(kubectl: Kubectl, namespace: str) -> None:
    for manifest in (changed(PROVIDER, {"metadata": {"name": f"p-{namespace}"}}), APPLIANCE, OPERATION):
        kubectl("create", f"--namespace={namespace}", "-f", "-", input=json.dumps(manifest))
    listed = kubectl("get", "vnf", f"--namespace={namespace}", "-o", "name").stdout.split()
    assert f"vnfprovider.vnf.operators.dev/p-{namespace}" in listed
    assert "vnfappliance.vnf.operators.dev/fw1" in listed
    assert "vnfoperation.vnf.operators.dev/arp" in listed


def test_short_names(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", f"--namespace={namespace}", "-f", "-", input=json.dumps(OPERATION))
    assert (
        kubectl("get", "vnfop", f"--namespace={namespace}", "-o", "name").stdout.strip()
        == "vnfoperation.vnf.operators.dev/arp"
    )
    assert kubectl("get", "vnfa", f"--namespace={namespace}", "-o", "name").stdout.strip() == ""
    kubectl("get", "vnfp")


def test_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", f"--namespace={namespace}", "-f", "-", input=json.dumps(APPLIANCE))
    ready = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "HealthCheckFailed",
                    "message": "api: 401",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ]
        }
    }
    kubectl(
        "patch",
        "vnfa",
        "fw1",
        f"--namespace={namespace}",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(ready),
    )
    header, row = kubectl("get", "vnfa", f"--namespace={namespace}").stdout.splitlines()
    assert header.split() == ["NAME", "PROVIDER", "HOST", "READY", "REASON", "AGE"]
    assert row.split()[:5] == ["fw1", "test-provider", "127.0.0.1", "False", "HealthCheckFailed"]
    wide_header = kubectl("get", "vnfa", f"--namespace={namespace}", "-o", "wide").stdout.splitlines()[0]
    assert "MESSAGE" in wide_header.split()

    kubectl("create", f"--namespace={namespace}", "-f", "-", input=json.dumps(OPERATION))
    header = kubectl("get", "vnfop", f"--namespace={namespace}").stdout.splitlines()[0]
    assert header.split() == ["NAME", "APPLIANCE", "SERVICE", "OPERATION", "PHASE", "AGE"]


def test_provider_printer_columns(kubectl: Kubectl) -> None:
    manifest = changed(PROVIDER, {"metadata": {"name": "columns-provider"}})
    kubectl("create", "-f", "-", input=json.dumps(manifest))
    lines = kubectl("get", "vnfp", "columns-provider").stdout.splitlines()
    assert lines[0].split() == ["NAME", "VENDOR", "VERSION", "READY", "REASON", "AGE"]
    assert lines[1].split()[:3] == ["columns-provider", "Example", "1.2.0"]


def test_sample_applies(kubectl: Kubectl, namespace: str, repo_root: Path) -> None:
    kubectl(
        "apply", "--server-side", f"--namespace={namespace}", "-k", str(repo_root / "manifests" / "samples")
    )
    appliance = json.loads(kubectl("get", "vnfa", "fw1", f"--namespace={namespace}", "-o", "json").stdout)
    assert appliance["spec"]["providerRef"]["name"] == "opnsense"
    assert appliance["spec"]["credentialsSecretRef"]["name"] == "fw1-credentials"
    secret = json.loads(
        kubectl("get", "secret", "fw1-credentials", f"--namespace={namespace}", "-o", "json").stdout
    )
    # The sample speaks the shipped dictionary's names: its credentials, connections and services.
    provider = yaml.safe_load((repo_root / "providers" / "opnsense.yaml").read_text())["spec"]
    # (bootstrap credentials live in a separate Secret, which the sample does not use)
    credentials = {name for name, c in provider["credentials"].items() if not (c or {}).get("bootstrap")}
    assert set(secret["data"]) == credentials
    assert set(appliance["spec"]["management"]["ports"]) <= set(provider["connections"])
    assert set(appliance["spec"]["services"]) <= set(provider["services"])


PROVIDER_FILES = sorted(p for p in (REPO_ROOT / "providers").glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", PROVIDER_FILES, ids=[p.stem for p in PROVIDER_FILES])
def test_shipped_provider_fits_the_crd(kubectl: Kubectl, path: Path) -> None:
    # Strict field validation: a field the dictionary model has but the CRD lacks is an error here.
    # apply, not create: another test may have installed the same provider already.
    kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=crd-test", "--dry-run=server",
        "--validate=strict", "-f", str(path),
    )  # fmt: skip


def test_provider_schema_matches_the_dictionary_model(repo_root: Path) -> None:
    # The structural top of the VnfProvider schema must name exactly the model's fields: a field only in
    # the model would be refused by strict validation, one only in the CRD would be refused by the operator.
    from vnf_operator.core.model import Capabilities, Credential, Info, ProviderDictionary

    def fields(model: Any) -> set[str]:
        return {info.alias or name for name, info in model.model_fields.items()}

    crd = yaml.safe_load((repo_root / "crds" / "vnf.operators.dev_vnfproviders.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    info = spec["info"]["properties"]
    # `rollout` is the operator's (how to roll the dictionary out), not the language's.
    assert set(spec) - {"rollout"} == fields(ProviderDictionary)
    assert set(info) == fields(Info)
    assert set(info["capabilities"]["properties"]) == fields(Capabilities)
    assert set(spec["credentials"]["additionalProperties"]["properties"]) == fields(Credential)
    assert info["capabilities"]["properties"]["commitModel"]["enum"] == ["live", "staged", "commitConfirm"]


def doc_samples(path: Path) -> list[dict[str, Any]]:
    """Every manifest in the ```yaml blocks of a Markdown document."""
    blocks = path.read_text().split("```yaml\n")[1:]
    documents = [d for block in blocks for d in yaml.safe_load_all(block.split("```", 1)[0])]
    return [d for d in documents if isinstance(d, dict) and "kind" in d]


def test_api_doc_samples_are_valid(kubectl: Kubectl, namespace: str, repo_root: Path) -> None:
    from vnf_operator.core.model import ProviderManifest

    samples = doc_samples(repo_root / "docs" / "api.md")
    assert {s["kind"] for s in samples} == {"VnfProvider", "VnfAppliance", "VnfOperation", "Secret"}
    for sample in samples:
        kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=crd-test", "--dry-run=server",
            "--validate=strict", f"--namespace={namespace}", "-f", "-",
            input=json.dumps(sample),
        )  # fmt: skip
        if sample["kind"] == "VnfProvider":
            ProviderManifest.model_validate(sample)
