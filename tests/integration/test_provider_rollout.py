"""Provider versions and progressive rollout against the real apiserver and operator
(docs/lifecycle.md, "Provider versions").

One simulated OPNsense serves five appliances (each manages only the rules marked with its own
name). Four follow the provider; one pins version 1.0.0. The provider allows one appliance not Ready
at a time (`spec.rollout.maxUnavailable: 1`):

- a good change moves the four one at a time, the pinned one stays on 1.0.0;
- a bad change (its list endpoint does not exist) pauses after the first appliance fails, naming it;
  the other three keep the previous dictionary and stay Ready; the resume annotation lets the next
  one move (and fail); after an operator restart everyone stays on the dictionary it was on (the
  history is read back); a fixed version resumes and completes the rollout.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.demo import SimulatorThread

pytestmark = pytest.mark.integration

FOLLOWERS = ["a0", "a1", "a2", "a3"]
PINNED = "pinned"
HISTORY_NAMESPACE = "vnf-system"


# The credentials and simulator fixtures of `objects`.
api_creds, opnsense = objects.api_creds, objects.opnsense


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory, api_creds: dict[str, str]
) -> Iterator[OperatorProcess]:
    with objects.operator_process(
        operator_kubeconfig,
        tmp_path_factory.mktemp("rollout"),
        env={"VNF_ROLLOUT_POLL_SECONDS": "0.3", "VNF_PROVIDER_HISTORY_LIMIT": "3"},
        never_logged=api_creds.values(),
    ) as proc:
        yield proc


def provider(name: str, version: str, *, broken: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((objects.PROVIDERS / "opnsense.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["metadata"] = {"name": name}
    doc["spec"]["info"]["version"] = version
    doc["spec"]["info"]["description"] = f"rollout test, version {version}"
    doc["spec"]["rollout"] = {"maxUnavailable": 1}
    if broken:  # every sync fails: the list endpoint does not exist
        doc["spec"]["services"]["firewall_rules"]["operations"]["list"]["http"]["path"] = (
            "/firewall/filter/gone"
        )
    return doc


def appliance(ns: str, name: str, pname: str, sim: SimulatorThread, pin: str = "") -> dict[str, Any]:
    obj = objects.appliance(
        ns,
        name,
        pname,
        ports={"api": sim.sim.port},
        credentials="fw-api",
        ca="fw-ca",
        services=objects.firewall_rules([objects.filter_rule(f"allow-{name}", "22")], policy="merged"),
    )
    if pin:
        obj["spec"]["providerRef"]["version"] = pin
    return obj


def apply(kubectl: Any, obj: dict[str, Any]) -> None:
    objects.apply(kubectl, obj, force=True)


def setup_secrets(kubectl: Any, ns: str, sim: SimulatorThread, creds: dict[str, str]) -> None:
    assert sim.sim.tls_ca_pem is not None
    objects.apply(kubectl, *objects.opnsense_secrets(ns, "fw", ca_pem=sim.sim.tls_ca_pem, **creds))


def used(kubectl: Any, ns: str) -> dict[str, tuple[str, str, str]]:
    """Appliance name -> (provider revision, provider version, Ready status) from its status."""
    items = get_json(kubectl, "vnfappliances", "-n", ns).get("items", [])
    out = {}
    for obj in items:
        prov = (obj.get("status") or {}).get("provider") or {}
        settled = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
        ready = condition(obj, "Ready").get("status", "") if settled else ""
        out[obj["metadata"]["name"]] = (prov.get("revision", ""), prov.get("version", ""), ready)
    return out


def appliances(kubectl: Any, ns: str) -> list[dict[str, Any]]:
    return list(get_json(kubectl, "vnfappliances", "-n", ns).get("items", []))


def provider_status(kubectl: Any, name: str) -> dict[str, Any]:
    return dict(get_json(kubectl, "vnfprovider", name).get("status") or {})


def settled_on(kubectl: Any, ns: str, pname: str, version: str) -> dict[str, Any]:
    """Wait until the provider reports `version` and every follower uses it and is Ready."""

    def check() -> dict[str, Any] | None:
        status = provider_status(kubectl, pname)
        if status.get("version") != version:
            return None
        states = used(kubectl, ns)
        if all(states.get(a) == (status["revision"], version, "True") for a in FOLLOWERS):
            return status
        return None

    result: dict[str, Any] = wait_for(check, timeout=90, what=f"all followers on {version}")
    return result


def moves(operator: OperatorProcess, version: str) -> list[list[str]]:
    """The batches the operator logged moving to `version`."""
    found = re.findall(rf"moving (.+?) to version {re.escape(version)} ", operator.output())
    return [batch.split(", ") for batch in found]


def test_rollout_moves_one_at_a_time_pauses_on_failure_and_keeps_pins(  # type: ignore[no-untyped-def]
    kubectl, namespace, opnsense, operator, api_creds
) -> None:
    pname = f"rollout-{uuid.uuid4().hex[:8]}"
    setup_secrets(kubectl, namespace, opnsense, api_creds)
    apply(kubectl, provider(pname, "1.0.0"))
    for name in FOLLOWERS:
        apply(kubectl, appliance(namespace, name, pname, opnsense))
    apply(kubectl, appliance(namespace, PINNED, pname, opnsense, pin="1.0.0"))
    v1 = settled_on(kubectl, namespace, pname, "1.0.0")
    wait_for(
        lambda: used(kubectl, namespace).get(PINNED) == (v1["revision"], "1.0.0", "True"), what="pinned Ready"
    )

    # 1. A good change: the four move one at a time (one per logged batch), the pinned one stays.
    apply(kubectl, provider(pname, "1.1.0"))
    v11 = settled_on(kubectl, namespace, pname, "1.1.0")
    assert v11["revision"] != v1["revision"]
    batches = moves(operator, "1.1.0")
    assert all(len(b) == 1 for b in batches), batches
    assert sorted(b[0] for b in batches) == [f"{namespace}/{a}" for a in FOLLOWERS]
    rollout = wait_for(lambda: provider_status(kubectl, pname).get("rollout", {}).get("updated") == 4 and provider_status(kubectl, pname)["rollout"], what="rollout status")  # fmt: skip
    assert (
        rollout["total"] == 4 and rollout["ready"] == 4 and rollout["pinned"] == 1 and rollout["failed"] == 0
    )
    assert condition(get_json(kubectl, "vnfprovider", pname), "RolloutPaused")["reason"] in (
        "RolloutComplete",
        "RollingOut",
    )
    assert used(kubectl, namespace)[PINNED] == (v1["revision"], "1.0.0", "True")

    # 2. A bad change: the first appliance moved fails, the rollout pauses naming it, the rest stay.
    apply(kubectl, provider(pname, "2.0.0", broken=True))

    def paused() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfprovider", pname)
        cond = condition(obj, "RolloutPaused")
        return obj if cond.get("status") == "True" and obj["status"]["version"] == "2.0.0" else None

    obj = wait_for(paused, timeout=90, what="RolloutPaused")
    bad = obj["status"]["revision"]
    failing = obj["status"]["rollout"]["failing"]
    assert len(failing) == 1 and failing[0] in condition(obj, "RolloutPaused")["message"]
    first = failing[0].split("/", 1)[1]
    states = used(kubectl, namespace)
    assert states[first][0] == bad and states[first][2] == "False"
    for name in FOLLOWERS:
        if name != first:
            assert states[name] == (v11["revision"], "1.1.0", "True"), (name, states[name])
    assert states[PINNED] == (v1["revision"], "1.0.0", "True")
    # every dictionary still in use is kept in the history, owned by the provider
    history = get_json(
        kubectl, "controllerrevisions", "-n", HISTORY_NAMESPACE, "-l", f"vnf.operators.dev/provider={pname}"
    )
    kept = {
        i["metadata"]["annotations"]["vnf.operators.dev/provider-revision"] for i in history.get("items", [])
    }
    assert {v1["revision"], v11["revision"], bad} <= kept
    assert all(i["metadata"]["ownerReferences"][0]["kind"] == "VnfProvider" for i in history["items"])

    # 3. Acknowledging the failure moves the next one (which fails too: still paused, two named).
    kubectl("annotate", "--overwrite", "vnfprovider", pname, "vnf.operators.dev/rollout-resume=1")
    two = wait_for(lambda: len(provider_status(kubectl, pname).get("rollout", {}).get("failing", [])) == 1 and provider_status(kubectl, pname)["rollout"]["failed"] == 1 and sum(1 for s in used(kubectl, namespace).values() if s[0] == bad) == 2 and provider_status(kubectl, pname), what="the next appliance moved")  # fmt: skip
    assert two["rollout"]["acknowledged"]["appliances"] == [f"{namespace}/{first}"]
    assert sum(1 for s in used(kubectl, namespace).values() if s == (v11["revision"], "1.1.0", "True")) == 2

    # 4. After a restart the older dictionaries come from the history: a forced reconcile of every
    #    appliance leaves each on the dictionary it was on.
    # (failing ones do not sync, so only the Ready ones are waited for)
    before = {
        o["metadata"]["name"]: o["status"]["lastSyncTime"]
        for o in appliances(kubectl, namespace)
        if condition(o, "Ready").get("status") == "True"
    }
    operator.stop()
    operator.start()
    time.sleep(1.1)  # lastSyncTime has a one-second resolution
    for name in used(kubectl, namespace):
        kubectl("annotate", "--overwrite", "vnfappliance", name, "-n", namespace,
                f"vnf.operators.dev/reconcile-requested={uuid.uuid4().hex}")  # fmt: skip
    wait_for(
        lambda: all(o["status"].get("lastSyncTime") != before[o["metadata"]["name"]] for o in appliances(kubectl, namespace) if o["metadata"]["name"] in before),
        timeout=90,
        what="every appliance reconciled after the restart",
    )  # fmt: skip
    after = used(kubectl, namespace)
    assert sum(1 for s in after.values() if s[0] == bad) == 2
    assert sum(1 for s in after.values() if s == (v11["revision"], "1.1.0", "True")) == 2
    assert after[PINNED] == (v1["revision"], "1.0.0", "True")

    # 5. A fixed version resumes: all four move and are Ready; the pin still holds.
    apply(kubectl, provider(pname, "2.0.1"))
    settled_on(kubectl, namespace, pname, "2.0.1")
    assert condition(get_json(kubectl, "vnfprovider", pname), "RolloutPaused")["status"] == "False"
    assert used(kubectl, namespace)[PINNED] == (v1["revision"], "1.0.0", "True")
