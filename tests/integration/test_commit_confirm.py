"""Native commit-confirm in the health-gated apply (docs/lifecycle.md, "Native commit-confirm"),
against the real apiserver and operator, with `providers/vyos.yaml` and the VyOS simulator.

The simulated VyOS refuses its API health check (401) while a firewall rule described
`BREAKS-HEALTH` is in its running configuration, standing in for a change that cuts management.
Its clock is scaled down (`time_scale`): the one-minute confirm window lasts six seconds.

- A good change is committed with `confirm_time`, confirmed after the health checks passed, then
  saved: the device has no pending confirm and the boot config holds the change.
- A bad change is neither confirmed nor saved: VyOS reverts it by itself when the window closes, and
  the appliance reports `RolledBack` with the last good revision applied.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition

from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators.base import Credentials, SimulatorConfig
from vnf_operator.testing.simulators.vyos import VyosSimulator
from vnf_operator.testing.simulators.vyos.api import ApiError

pytestmark = pytest.mark.integration

BREAKER = "BREAKS-HEALTH"


class FragileVyos(VyosSimulator):
    """VyOS whose `show version` (the provider's `api_key_accepted` check) fails while a rule
    described BREAKS-HEALTH is committed."""

    def show_version(self) -> str:
        if BREAKER in json.dumps(self.running):
            raise ApiError("Valid API key is required", 401)  # an answer the transport does not retry
        return super().show_version()


@pytest.fixture(scope="module")
def api_key() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="module")
def vyos(api_key: str) -> Iterator[SimulatorThread]:
    config = SimulatorConfig(
        tls=True,
        ssh=False,
        credentials=Credentials(username="vyos", password="p" * 12, api_key=api_key),
        time_scale=0.1,  # one minute of commit-confirm = 6 s
    )
    sim = SimulatorThread("vyos", config)
    sim.sim = FragileVyos(config)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, kubectl: Any, tmp_path_factory: pytest.TempPathFactory, api_key: str
) -> Iterator[OperatorProcess]:
    objects.install_provider(kubectl, "vyos", force=True)
    with objects.operator_process(
        operator_kubeconfig,
        tmp_path_factory.mktemp("confirm"),
        env={"VNF_COMMIT_CONFIRM_MINUTES": "1", "VNF_COMMIT_CONFIRM_REVERT_SECONDS": "20"},
        never_logged=[api_key],
    ) as proc:
        yield proc


def rule(number: int, description: str, port: str) -> dict[str, Any]:
    return {
        "ruleset": "forward",
        "number": number,
        "action": "accept",
        "protocol": "tcp",
        "destination_port": port,
        "description": description,
    }


def appliance(ns: str, sim: SimulatorThread, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return objects.appliance(
        ns,
        "router",
        "vyos",
        ports={"api": sim.sim.port},
        credentials="router-api",
        ca="router-ca",
        services=objects.firewall_rules(rules),
        bootstrapCredentialsSecretRef={"name": "router-boot"},
    )


def setup_secrets(kubectl: Any, ns: str, sim: SimulatorThread, api_key: str) -> None:
    assert sim.sim.tls_ca_pem is not None
    objects.apply(
        kubectl,
        objects.secret(ns, "router-api", {"api_key": api_key}),
        objects.secret(ns, "router-boot", {"bootstrap_username": "vyos", "bootstrap_password": "p" * 12}),
        objects.secret(ns, "router-ca", {"ca.crt": sim.sim.tls_ca_pem}),
    )


def apply(kubectl: Any, obj: dict[str, Any]) -> None:
    objects.apply(kubectl, obj)


def settled(kubectl: Any, ns: str, generation: int, ready: str, reason: str | None = None) -> dict[str, Any]:
    return objects.settled(kubectl, ns, "router", generation, ready, reason)


def state(sim: SimulatorThread) -> dict[str, Any]:
    return objects.device_state(sim)


def rule_lines(lines: list[str], ns: str) -> set[str]:
    """`number port` of this appliance's forward rules in `set` lines."""
    numbers = {ln.split(" rule ")[1].split()[0] for ln in lines if f"vnf:{ns}/router" in ln}
    ports: dict[str, str] = {}
    for ln in lines:
        if " forward filter rule " in ln and " destination port " in ln:
            number = ln.split(" rule ")[1].split()[0]
            ports[number] = ln.rsplit(" ", 1)[1].strip("'")
    return {f"{n} {ports.get(n, '')}" for n in numbers}


def events(kubectl: Any, ns: str, reason: str) -> list[dict[str, Any]]:
    return objects.events(kubectl, ns, reason)


def test_good_change_is_confirmed_bad_change_reverts_by_itself(  # type: ignore[no-untyped-def]
    kubectl, namespace, vyos, operator, api_key
) -> None:
    setup_secrets(kubectl, namespace, vyos, api_key)
    good = [rule(10, "allow-ssh", "22")]
    apply(kubectl, appliance(namespace, vyos, good))
    obj = settled(kubectl, namespace, 1, "True")
    assert obj["status"]["revision"]["current"] == 1
    dump = state(vyos)
    # confirmed (no revert pending) and then saved: the boot config has the rule
    assert dump["commit_confirm_pending"] is False
    assert rule_lines(dump["running"], namespace) == rule_lines(dump["saved"], namespace) == {"10 22"}
    assert dump["events"] == []

    bad = [*good, rule(20, BREAKER, "8080")]
    apply(kubectl, appliance(namespace, vyos, bad))
    obj = settled(kubectl, namespace, 2, "False", "RolledBack")
    dump = state(vyos)
    # the device reverted the unconfirmed commit itself; nothing of it was saved
    assert dump["events"] == [{"event": "commit-confirm timeout", "action": "reverted"}]
    assert rule_lines(dump["running"], namespace) == rule_lines(dump["saved"], namespace) == {"10 22"}
    assert obj["status"]["revision"]["current"] == 1 and obj["status"]["revision"]["failed"]["revision"] == 2
    assert "api_key_accepted" in condition(obj, "Ready")["message"]
    note = events(kubectl, namespace, "CommitNotConfirmed")
    assert note and "reverted the unconfirmed commit by itself" in note[0]["message"]
    assert note[0]["type"] == "Normal"

    # the spec is not retried; a fixed spec is applied, confirmed and saved again
    fixed = [*good, rule(20, "allow-alt", "8080")]
    apply(kubectl, appliance(namespace, vyos, fixed))
    settled(kubectl, namespace, 3, "True")
    dump = state(vyos)
    assert dump["commit_confirm_pending"] is False
    assert rule_lines(dump["saved"], namespace) == {"10 22", "20 8080"}
