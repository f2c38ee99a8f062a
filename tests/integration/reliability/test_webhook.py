"""The validating admission webhook, called by the real kube-apiserver over TLS.

The webhook server (`vnf_operator.controller.webhook.start_webhook_server`) runs in a thread with
a CA and a serving certificate made for 127.0.0.1; a ValidatingWebhookConfiguration built from
manifests/webhook/ (only its clientConfig becomes `url: https://127.0.0.1:PORT/validate` plus the
caBundle, and each webhook is scoped to this test's objects) makes the apiserver call it.

- a VnfAppliance with an invalid item is refused by `kubectl apply` with the item's path and the
  allowed values; a valid one is admitted; so is one naming a provider nobody knows yet (with a
  warning); a malformed VnfProvider is refused with every problem listed;
- updates that leave the spec alone (labels, finalizers) are admitted even for an appliance that
  is invalid under today's provider, and even when the webhook is down (failurePolicy Fail
  applies only to spec changes of our kinds): the trade-off documented in docs/security.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from tests.integration.reliability import lab
from tests.leakcheck import record_output

from vnf_operator.controller.webhook import start_webhook_server, webhook_port
from vnf_operator.engine.providers import ProviderEntry, load_entry
from vnf_operator.testing.controlplane import find_binaries
from vnf_operator.testing.simulators.tls import generate_tls_material

pytestmark = pytest.mark.integration

WEBHOOK_DIR = lab.REPO / "manifests" / "webhook"
BAD_ITEMS = [
    {"description": "a", "interface": "wan"},
    {"description": "b", "interface": "wan"},
    {"description": "c", "interface": "wan", "action": "allow"},
]
EXPECTED = 'spec.services.firewall_rules.items[2].action: "allow" is not one of pass, block, reject'


class WebhookThread:
    """The webhook server on its own event loop, as the operator would run it in kopf's loop."""

    def __init__(self, cert: Path, key: Path, providers: dict[str, ProviderEntry]) -> None:
        self.cert, self.key, self.providers = cert, key, providers
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.calls = 0

    def lookup(self, name: str) -> ProviderEntry | None:
        self.calls += 1
        return self.providers.get(name)

    def start(self) -> int:
        self.thread.start()
        coro = start_webhook_server("127.0.0.1", 0, self.cert, self.key, self.lookup)
        self.runner = asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)
        return webhook_port(self.runner)

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
            self.runner = None
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebhookThread, int, str]]:
    tls = generate_tls_material("localhost", "127.0.0.1")
    d = tmp_path_factory.mktemp("webhook")
    cert, key = d / "tls.crt", d / "tls.key"
    cert.write_text(tls.cert_pem)
    key.touch(mode=0o600)
    key.write_text(tls.key_pem)
    doc = lab.opnsense_provider("opnsense")
    providers = {"opnsense": load_entry("opnsense", 1, doc["spec"])}
    server = WebhookThread(cert, key, providers)
    port = server.start()
    yield server, port, tls.ca_pem
    server.stop()


def webhook_configuration(name: str, port: int, ca_pem: str, ns: str) -> dict[str, Any]:
    """manifests/webhook's configuration, pointed at 127.0.0.1 and scoped to this test's objects."""
    config: dict[str, Any] = yaml.safe_load((WEBHOOK_DIR / "validatingwebhookconfiguration.yaml").read_text())
    config["metadata"] = {"name": name}
    for hook in config["webhooks"]:
        hook["clientConfig"] = {
            "url": f"https://127.0.0.1:{port}/validate",
            "caBundle": base64.b64encode(ca_pem.encode()).decode(),
        }
        if hook["rules"][0]["resources"] == ["vnfappliances"]:
            hook["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
        else:  # cluster-scoped providers: only the ones this test labels
            hook["objectSelector"] = {"matchLabels": {"vnf-test-webhook": ns}}
    return config


def appliance(ns: str, name: str, items: list[dict[str, Any]], provider: str = "opnsense") -> dict[str, Any]:
    obj = lab.appliance_object(ns, name, None, items, provider=provider)
    obj["spec"]["services"]["firewall_rules"].pop("policy")
    return obj


def kubectl_apply(kubectl: Any, obj: dict[str, Any], *, dry_run: bool = False) -> Any:
    args = ["apply", "--server-side", "--field-manager=webhook-test", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    proc = kubectl(*args, input=json.dumps(obj), check=False)
    record_output(f"kubectl apply {obj['kind']}/{obj['metadata']['name']}", proc.stdout + proc.stderr)
    return proc


@pytest.fixture
def registered(
    kubectl: Any, namespace: str, webhook: tuple[WebhookThread, int, str]
) -> Iterator[tuple[str, WebhookThread]]:
    server, port, ca = webhook
    # Created before the webhook exists: invalid under the provider, and it must stay manageable.
    legacy = appliance(namespace, "legacy", BAD_ITEMS)
    assert kubectl_apply(kubectl, legacy).returncode == 0
    name = f"vnf-test-{namespace}"
    kubectl("apply", "-f", "-", input=json.dumps(webhook_configuration(name, port, ca, namespace)))
    # The apiserver picks the configuration up asynchronously: wait until it calls us (dry run).
    probe = appliance(namespace, "probe", BAD_ITEMS)
    lab.wait_until(
        lambda: "denied the request" in kubectl_apply(kubectl, probe, dry_run=True).stderr or None,
        timeout=30,
        what="the apiserver to call the webhook",
    )
    yield namespace, server
    kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
    lab.purge(kubectl, namespace, timeout=0)


def test_apiserver_calls_the_webhook_and_refuses_bad_items(
    kubectl: Any, registered: tuple[str, WebhookThread]
) -> None:
    ns, _ = registered
    proc = kubectl_apply(kubectl, appliance(ns, "bad", BAD_ITEMS))
    assert proc.returncode != 0
    assert 'admission webhook "vnfappliances.vnf.operators.dev" denied the request' in proc.stderr
    assert EXPECTED in proc.stderr, proc.stderr
    assert kubectl("get", "vnfappliance", "bad", "-n", ns, check=False).returncode != 0

    good = [dict(BAD_ITEMS[0]), dict(BAD_ITEMS[1]), {**BAD_ITEMS[2], "action": "reject"}]
    proc = kubectl_apply(kubectl, appliance(ns, "good", good))
    assert proc.returncode == 0, proc.stderr

    # An update that breaks an item is refused too; the stored object keeps its valid spec.
    proc = kubectl_apply(kubectl, appliance(ns, "good", BAD_ITEMS))
    assert proc.returncode != 0 and EXPECTED in proc.stderr, proc.stderr

    # Several problems at once: all listed, including an unknown service.
    worse = appliance(ns, "worse", [{"description": "x", "interface": "WAN!", "bogus": 1}])
    worse["spec"]["services"]["firewal_rules"] = {"items": []}
    proc = kubectl_apply(kubectl, worse)
    assert proc.returncode != 0
    for needle in (
        "spec.services.firewall_rules.items[0].interface",
        "spec.services.firewall_rules.items[0].bogus: unknown field",
        "spec.services.firewal_rules: provider opnsense has no such service",
    ):
        assert needle in proc.stderr, proc.stderr


def test_unknown_provider_is_admitted_with_a_warning(
    kubectl: Any, registered: tuple[str, WebhookThread]
) -> None:
    ns, _ = registered
    proc = kubectl_apply(kubectl, appliance(ns, "later", BAD_ITEMS, provider="not-there-yet"))
    assert proc.returncode == 0, proc.stderr
    assert "VnfProvider 'not-there-yet' is not known yet" in proc.stderr


def test_malformed_provider_is_refused_with_every_problem(
    kubectl: Any, registered: tuple[str, WebhookThread]
) -> None:
    ns, _ = registered
    doc = lab.opnsense_provider(f"webhook-{ns}")
    doc["metadata"]["labels"] = {"vnf-test-webhook": ns}
    # Mistakes the CRD schema cannot see (those parts are free-form there), structural and semantic.
    doc["spec"]["connections"]["api"]["port"] = "not-a-port"
    doc["spec"]["services"]["firewall_rules"]["bogusKey"] = 1
    proc = kubectl_apply(kubectl, doc)
    assert proc.returncode != 0
    assert 'admission webhook "vnfproviders.vnf.operators.dev" denied the request' in proc.stderr
    assert "spec.connections.api.port: Input should be a valid integer" in proc.stderr, proc.stderr
    assert "spec.services.firewall_rules.bogusKey: unknown key `bogusKey`" in proc.stderr
    doc = lab.opnsense_provider(f"webhook-{ns}")
    doc["metadata"]["labels"] = {"vnf-test-webhook": ns}
    doc["spec"]["services"]["firewall_rules"]["identity"]["key"] = ["nope"]
    doc["spec"]["services"]["static_routes"]["dependsOn"] = ["no_such_service"]
    proc = kubectl_apply(kubectl, doc)
    assert proc.returncode != 0
    assert "spec.services.firewall_rules.identity.key[0]: key field `nope` is not in `fields`" in proc.stderr
    assert "spec.services.static_routes.dependsOn[0]: no service `no_such_service`" in proc.stderr
    fixed = lab.opnsense_provider(f"webhook-{ns}")
    fixed["metadata"]["labels"] = {"vnf-test-webhook": ns}
    proc = kubectl_apply(kubectl, fixed)
    assert proc.returncode == 0, proc.stderr
    kubectl("delete", "vnfprovider", f"webhook-{ns}")


def test_metadata_updates_never_depend_on_the_webhook(
    kubectl: Any, registered: tuple[str, WebhookThread]
) -> None:
    ns, server = registered
    # The legacy appliance is invalid today; labels and finalizers still change (webhook not called).
    calls = server.calls
    kubectl("label", "vnfappliance", "legacy", "-n", ns, "team=netops")
    kubectl(
        "patch", "vnfappliance", "legacy", "-n", ns, "--type=merge",
        "-p", '{"metadata":{"finalizers":["vnf.operators.dev/cleanup"]}}',
    )  # fmt: skip
    assert server.calls == calls, "the webhook was called for a metadata-only update"

    # The webhook goes away (operator down): spec changes fail closed, metadata still works.
    server.stop()
    proc = kubectl_apply(kubectl, appliance(ns, "while-down", BAD_ITEMS[:2]))
    assert proc.returncode != 0
    assert "failed calling webhook" in proc.stderr, proc.stderr
    kubectl("label", "vnfappliance", "legacy", "-n", ns, "team=secops", "--overwrite")
    kubectl(
        "patch", "vnfappliance", "legacy", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    kubectl("delete", "vnfappliance", "legacy", "-n", ns, "--wait=true", "--timeout=30s")


def test_webhook_component_builds(tmp_path: Path) -> None:
    """manifests/webhook is a kustomize Component: an overlay adds it to manifests/."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = os.path.relpath(lab.REPO / "manifests", overlay)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [base],
                "components": [f"{base}/webhook"],
            }
        )
    )
    out = subprocess.run(
        [str(find_binaries() / "kubectl"), "kustomize", str(overlay)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    assert ("ValidatingWebhookConfiguration", "vnf-operator") in docs
    assert ("Service", "vnf-operator-webhook") in docs
    assert ("ValidatingAdmissionPolicy", "vnf-operator-writes") in docs
    (container,) = docs[("Deployment", "vnf-operator")]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}  # valueFrom entries have none
    assert env["VNF_WEBHOOK_PORT"] == "9443"
    assert {p["name"] for p in container["ports"]} >= {"webhook", "metrics", "healthz"}


def test_the_operator_serves_the_webhook(
    kubectl: Any,
    namespace: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
    opnsense_providers: dict[str, str],
) -> None:
    """The real operator process (VNF_WEBHOOK_PORT) validates against the providers it watches."""
    tls = generate_tls_material("localhost", "127.0.0.1")
    (tmp_path / "tls.crt").write_text(tls.cert_pem)
    (tmp_path / "tls.key").touch(mode=0o600)
    (tmp_path / "tls.key").write_text(tls.key_pem)
    port = lab.free_port()
    proc = lab.start_operator(
        operator_kubeconfig,
        tmp_path / "operator.log",
        VNF_WEBHOOK_PORT=str(port),
        VNF_WEBHOOK_HOST="127.0.0.1",
        VNF_WEBHOOK_CERT_DIR=str(tmp_path),
    )
    name = f"vnf-test-op-{namespace}"
    try:
        lab.wait_operator_up(proc)
        kubectl(
            "apply", "-f", "-", input=json.dumps(webhook_configuration(name, port, tls.ca_pem, namespace))
        )
        # Denied once the apiserver uses the configuration and the operator has seen the provider.
        lab.wait_until(
            lambda: (
                EXPECTED
                in kubectl_apply(kubectl, appliance(namespace, "probe", BAD_ITEMS), dry_run=True).stderr
                or None
            ),
            timeout=60,
            what="the operator's webhook to refuse a bad appliance",
        )
        ok = [dict(BAD_ITEMS[0]), dict(BAD_ITEMS[1])]
        proc_ok = kubectl_apply(kubectl, appliance(namespace, "good", ok))
        assert proc_ok.returncode == 0, proc_ok.stderr
    finally:
        kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
        proc.stop()
        lab.purge(kubectl, namespace, timeout=0)
    assert not lab.tracebacks(proc.output()), proc.output()[-3000:]
