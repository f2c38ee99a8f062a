"""A change that cuts the health check is rolled back automatically, and traffic passes again
(docs/lifecycle.md, "Health-gated apply and automatic rollback"), on the lab's real Linux router.

The good spec forwards the router's front port 8080 to backend-1's web server. The bad spec
points that forward at a closed port (the traffic breaks) and adds a port forward that catches
new connections to the router's own SSH port on its management interface and sends them to a
backend: the provider's `ssh_port` health check (a new TCP connection) then fails, while the
operator's established SSH session keeps working (conntrack), so the operator can put the last good
revision back. Afterwards the appliance says `RolledBack`, the device holds the good rules only,
and the client reaches backend-1 through the router again.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.e2e import test_linux_router_operator as base
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.controlplane import Kubectl
from vnf_operator.testing.netns import LinuxRouterLab

pytestmark = pytest.mark.e2e

# The Linux router module's fixtures: its lab (reset after each test) and its operator process.
lab = base.lab
operator = base.operator
APPLIANCE = base.APPLIANCE


def prerouting(lab: LinuxRouterLab, ns: str) -> list[str]:
    return sorted(r["name"] for r in base.ours(base.chain_rules(lab, "ip", "nat", "prerouting"), ns))


def test_change_that_cuts_the_health_check_is_rolled_back(
    kubectl: Kubectl, namespace: str, lab: LinuxRouterLab, operator: OperatorProcess
) -> None:
    b1, b2 = lab.backends[0], lab.backends[1]
    front = f"http://{lab.front_address}:8080/"
    web = {"name": "web", "in_interface": lab.front_interface, "port": 8080, "to_address": b1.address,
           "to_port": b1.http_port}  # fmt: skip
    base.setup_secrets(kubectl, namespace, lab)
    base.apply(kubectl, base.appliance(namespace, lab, {"port_forwards": [web]}))
    obj = base.ready_at(kubectl, namespace, 1)
    assert obj["status"]["revision"]["lastGood"] == 1
    assert lab.http_get_json("client", front)["backend"] == "backend-1", "traffic through the router"

    # The bad change: the forward goes to a closed port, and new connections to the router's SSH
    # port are sent to a backend that does not run sshd (the health check's TCP probe fails).
    broken_web = {**web, "to_port": 1}  # nothing listens there
    cut = {"name": "cut-mgmt", "in_interface": lab.mgmt_interface, "port": lab.ssh_port,
           "destination": f"{lab.mgmt_address}/32", "to_address": b2.address}  # fmt: skip
    base.apply(kubectl, base.appliance(namespace, lab, {"port_forwards": [broken_web, cut]}))

    def rolled_back() -> dict[str, Any] | None:
        found = get_json(kubectl, "vnfappliance", APPLIANCE, "-n", namespace)
        ready = condition(found, "Ready")
        gen_ok = (found.get("status") or {}).get("observedGeneration") == 2
        return (
            found
            if gen_ok and (ready.get("status"), ready.get("reason")) == ("False", "RolledBack")
            else None
        )

    obj = wait_for(rolled_back, timeout=120, what="Ready=False RolledBack at generation 2")
    message = condition(obj, "Ready")["message"]
    assert "ssh_port" in message and "rolled back to revision 1" in message, message
    assert obj["status"]["revision"]["current"] == 1 and obj["status"]["revision"]["failed"]["revision"] == 2

    # The device holds the good revision again: management answers, traffic passes again.
    assert prerouting(lab, namespace) == ["web"]
    assert lab.tcp_connect("root", lab.mgmt_address, lab.ssh_port), "a new SSH connection works again"
    assert lab.http_get_json("client", front)["backend"] == "backend-1", "traffic passes again"
    rules = base.ours(base.chain_rules(lab, "ip", "nat", "prerouting"), namespace)
    assert rules[0]["body"].endswith(f"dnat to {b1.address}:{b1.http_port}"), rules
