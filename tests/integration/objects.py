"""Set-up the integration and e2e tests need again and again: Secrets, appliances, applying them
with kubectl and waiting for an appliance to be Ready; the OPNsense simulator and the operator
process (context managers, and module fixtures built on them).

Plain dicts in, plain dicts out; `kubectl` is the session fixture (admin) or `kubectl_as`.
"""

from __future__ import annotations

import json
import secrets as token
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators.base import BaseSimulator, Credentials, SimulatorConfig

API = "vnf.operators.dev/v1alpha1"
PROVIDERS = Path(__file__).resolve().parents[2] / "providers"
Kubectl = Callable[..., Any]


@contextmanager
def opnsense_device(
    creds: Mapping[str, str],
    sim_class: type[BaseSimulator] | None = None,
    *,
    password: str = "x" * 12,
) -> Iterator[SimulatorThread]:
    """An OPNsense simulator with TLS that accepts the API key `creds` and root's `password`, running
    for the block (`sim_class`: a subclass of the simulator to run instead)."""
    config = SimulatorConfig(
        tls=True, credentials=Credentials(username="root", password=password, **creds), ssh=False
    )
    sim = SimulatorThread("opnsense", config)
    if sim_class is not None:
        sim.sim = sim_class(config)
    sim.start()
    yield sim
    sim.stop()


@contextmanager
def operator_process(
    kubeconfig: Path,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    never_logged: Iterable[str] = (),
) -> Iterator[OperatorProcess]:
    """The operator running for the block; afterwards its log has no Traceback nor `never_logged`."""
    proc = OperatorProcess(kubeconfig, log_dir / "operator.log", env=env).start()
    yield proc
    proc.stop()
    out = proc.output()
    assert "Traceback" not in out, out[-4000:]
    for value in never_logged:
        assert value not in out, "a credential leaked into the operator log"


def install_provider(kubectl: Kubectl, name: str, *, force: bool = False) -> None:
    """`providers/<name>.yaml` applied server-side (`force`: taking over fields of other managers)."""
    conflicts = ["--force-conflicts"] if force else []
    kubectl("apply", "--server-side", *conflicts, "-f", str(PROVIDERS / f"{name}.yaml"))


# Module fixtures: a test module takes one by naming it (`api_creds = objects.api_creds`).


@pytest.fixture(scope="module")
def api_creds() -> dict[str, str]:
    """A fresh OPNsense API key and secret (`api_key`, `api_secret`)."""
    return {"api_key": token.token_hex(16), "api_secret": "S3cret-" + token.token_urlsafe(20)}


@pytest.fixture(scope="module")
def opnsense(api_creds: dict[str, str]) -> Iterator[SimulatorThread]:
    """An OPNsense simulator that accepts `api_creds`."""
    with opnsense_device(api_creds) as sim:
        yield sim


@pytest.fixture(scope="module")
def opnsense_operator(
    operator_kubeconfig: Path, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """`providers/opnsense.yaml` installed and the operator running with its defaults."""
    install_provider(kubectl, "opnsense")
    with operator_process(operator_kubeconfig, tmp_path_factory.mktemp("op")) as proc:
        yield proc


def filter_rule(description: str, port: str, action: str = "pass") -> dict[str, Any]:
    """An OPNsense TCP filter rule on wan."""
    return {
        "description": description,
        "action": action,
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": port,
    }


def secret(ns: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
    """An Opaque Secret with `data` as stringData."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": dict(data),
    }


def opnsense_secrets(
    ns: str, name: str, *, api_key: str, api_secret: str, ca_pem: str
) -> list[dict[str, Any]]:
    """`<name>-api` (the API key) and `<name>-ca` (the device's CA), as `appliance()` names them."""
    return [
        secret(ns, f"{name}-api", {"api_key": api_key, "api_secret": api_secret}),
        secret(ns, f"{name}-ca", {"ca.crt": ca_pem}),
    ]


def appliance(
    ns: str,
    name: str,
    provider: str,
    *,
    ports: Mapping[str, int] | None = None,
    services: Mapping[str, Any] | None = None,
    credentials: str | None = None,
    ca: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A VnfAppliance on 127.0.0.1; `credentials`/`ca` name Secrets; extra spec fields as keywords."""
    body: dict[str, Any] = {"providerRef": {"name": provider}, "management": {"host": "127.0.0.1"}}
    if ports is not None:
        body["management"]["ports"] = dict(ports)
    if credentials is not None:
        body["credentialsSecretRef"] = {"name": credentials}
    if ca is not None:
        body["tls"] = {"caSecretRef": {"name": ca}}
    body["services"] = dict(services or {})
    body.update(spec)
    return {
        "apiVersion": API,
        "kind": "VnfAppliance",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def firewall_rules(items: list[dict[str, Any]], policy: str = "replaced") -> dict[str, Any]:
    """`services` with the OPNsense firewall_rules service only."""
    return {"firewall_rules": {"policy": policy, "items": items}}


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """`obj` with the given spec fields set (for variants of one appliance)."""
    obj["spec"].update(spec)
    return obj


def apply(
    kubectl: Kubectl,
    *objs: Mapping[str, Any],
    field_manager: str = "test",
    force: bool = False,
    check: bool = True,
) -> Any:
    """One server-side apply of the objects (a v1 List when there are several)."""
    doc: Mapping[str, Any] = (
        objs[0] if len(objs) == 1 else {"apiVersion": "v1", "kind": "List", "items": list(objs)}
    )
    args = ["apply", "--server-side", f"--field-manager={field_manager}", "-f", "-"]
    if force:
        args.insert(2, "--force-conflicts")
    return kubectl(*args, input=json.dumps(doc), check=check)


def wait_ready(
    kubectl: Kubectl, ns: str, name: str, generation: int | None = None, *, timeout: float = 90
) -> dict[str, Any]:
    """The appliance once `Ready=True` at `generation` (default: its current one)."""

    def check() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfappliance", name, "-n", ns)
        gen = generation or (obj.get("metadata") or {}).get("generation")
        observed = (obj.get("status") or {}).get("observedGeneration")
        return obj if observed == gen and condition(obj, "Ready").get("status") == "True" else None

    result: dict[str, Any] = wait_for(
        check, timeout=timeout, what=f"{ns}/{name} Ready at generation {generation}"
    )
    return result


def settled(
    kubectl: Kubectl,
    ns: str,
    name: str,
    generation: int,
    status: str,
    reason: str | None = None,
    *,
    ctype: str = "Ready",
    timeout: float = 120,
) -> dict[str, Any]:
    """The appliance once its status reflects `generation` with `ctype`=`status` (and `reason`)."""

    def check() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfappliance", name, "-n", ns)
        cond = condition(obj, ctype)
        if (obj.get("status") or {}).get("observedGeneration") != generation:
            return None
        if cond.get("status") != status or reason not in (None, cond.get("reason")):
            return None
        return obj

    result: dict[str, Any] = wait_for(
        check, timeout=timeout, what=f"{ctype}={status} {reason or ''} at {generation}"
    )
    return result


def annotate(kubectl: Kubectl, ns: str, name: str, *pairs: str) -> None:
    """`key=value` annotations on the appliance, overwriting."""
    kubectl("annotate", "--overwrite", "vnfappliance", name, "-n", ns, *pairs)


def request_reconcile(kubectl: Kubectl, ns: str, name: str) -> None:
    """A new `reconcile-requested` value: the operator reconciles the appliance now."""
    annotate(kubectl, ns, name, f"vnf.operators.dev/reconcile-requested={token.token_hex(4)}")


def events(kubectl: Kubectl, ns: str, reason: str, name: str | None = None) -> list[dict[str, Any]]:
    """The namespace's events with `reason` (about the object `name` only, if given)."""
    items = get_json(kubectl, "events", "-n", ns).get("items", [])
    return [e for e in items if e.get("reason") == reason and name in (None, e["involvedObject"]["name"])]


def device_state(sim: SimulatorThread) -> dict[str, Any]:
    """The simulator's `dump_state()`, taken on its own loop."""

    async def dump() -> dict[str, Any]:
        return sim.sim.dump_state()

    result: dict[str, Any] = sim.call(dump())
    return result
