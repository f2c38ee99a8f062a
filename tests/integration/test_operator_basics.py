"""The operator, running as its own ServiceAccount, reports status and reacts to its provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("op") / "operator.log").start()
    yield proc
    proc.stop()
    out = proc.output()
    assert "Traceback" not in out, out[-4000:]


def appliance(ns: str, name: str, provider: str) -> dict:
    return objects.appliance(ns, name, provider, credentials=f"{name}-creds")


def test_missing_provider_is_reported_then_provider_appearing_triggers(kubectl, namespace, operator) -> None:  # type: ignore[no-untyped-def]
    provider = f"late-{namespace}"
    objects.apply(kubectl, appliance(namespace, "fw1", provider))

    def not_found():  # type: ignore[no-untyped-def]
        obj = get_json(kubectl, "vnfappliance", "fw1", "-n", namespace)
        ready = condition(obj, "Ready")
        gen_ok = obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"]
        return obj if gen_ok and ready.get("reason") == "ProviderNotFound" else None

    obj = wait_for(not_found, what="Ready=False/ProviderNotFound")
    types = [c["type"] for c in obj["status"]["conditions"]]
    assert {"Ready", "Reconciling", "Stalled", "ProviderResolved"} <= set(types)
    assert condition(obj, "Ready")["status"] == "False"
    assert provider in condition(obj, "Ready")["message"]

    # The provider appears: the appliance is reconciled again without any change to it.
    text = (REPO / "providers" / "opnsense.yaml").read_text()
    text = text.replace("name: opnsense\n", f"name: {provider}\n", 1)
    kubectl("apply", "--server-side", "--field-manager=test", "-f", "-", input=text)

    def resolved():  # type: ignore[no-untyped-def]
        obj = get_json(kubectl, "vnfappliance", "fw1", "-n", namespace)
        return obj if condition(obj, "ProviderResolved").get("status") == "True" else None

    obj = wait_for(resolved, what="ProviderResolved=True after the provider appeared")
    # No credentials Secret exists: the appliance stalls with a precise reason, nothing sent anywhere.
    assert condition(obj, "Ready")["status"] == "False"
    assert condition(obj, "Ready")["reason"] in {"SecretNotFound", "SecretKeyMissing"}
    assert f"{namespace}/fw1-creds" in condition(obj, "Ready")["message"]


def test_provider_status_reports_validity(kubectl, operator) -> None:  # type: ignore[no-untyped-def]
    bad = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfProvider",
        "metadata": {"name": "broken-provider"},
        "spec": {
            "language": "v1",
            "info": {"name": "broken", "vendor": "x"},
            "connections": {"api": {"type": "https", "port": 443}},
            "services": {
                "rules": {
                    "identity": {"key": ["nope"]},
                    "operations": {"list": {"http": {"path": "/x/{{ undefined_thing }}"}}},
                }
            },
        },
    }
    objects.apply(kubectl, bad)

    def invalid():  # type: ignore[no-untyped-def]
        obj = get_json(kubectl, "vnfprovider", "broken-provider")
        return (
            obj if condition(obj, "Ready").get("status") == "False" and obj["status"].get("errors") else None
        )

    obj = wait_for(invalid, what="provider marked invalid")
    assert condition(obj, "Stalled")["status"] == "True"
    paths = [e["path"] for e in obj["status"]["errors"]]
    assert any("identity" in p for p in paths), paths
