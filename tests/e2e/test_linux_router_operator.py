"""The real operator drives the lab's Linux router (providers/linux-nftables-frr.yaml) over SSH.

Every claim is checked with real traffic between the lab's namespaces: a rule in the spec blocks
a TCP flow and its removal restores it, a port forward makes a backend reachable on the router's
front address, source NAT changes the source address the echo backend reports, a BGP neighbor
comes up and its prefix carries packets, a static route makes a new network reachable. Drift
(a rule deleted behind the operator's back) is repaired after a reconcile request.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, condition, get_json, wait_for

from vnf_operator.testing.controlplane import Kubectl
from vnf_operator.testing.netns import LinuxRouterLab

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PROVIDER = REPO / "providers" / "linux-nftables-frr.yaml"
APPLIANCE = "router"
ANNOTATION = "vnf.operators.dev/reconcile-requested"
PERSISTED = ("/etc/nftables.conf", "/etc/frr/frr.conf")  # written by the provider with persist "true"
# `nft -a list` rule lines: body, optional comment, handle.
_RULE_LINE = re.compile(
    r'^\s+(?!chain\s)(?P<body>.*?)(?: comment "(?P<comment>[^"]*)")? # handle (?P<handle>\d+)$'
)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
    linux_router_lab: LinuxRouterLab,
) -> Iterator[OperatorProcess]:
    kubectl("apply", "--server-side", "-f", str(PROVIDER))
    log = tmp_path_factory.mktemp("op") / "operator.log"
    proc = OperatorProcess(operator_kubeconfig, log).start()
    wait_for(
        lambda: (
            condition(get_json(kubectl, "vnfprovider", "linux-nftables-frr"), "Ready").get("status") == "True"
        ),
        timeout=60,
        what="VnfProvider linux-nftables-frr Ready (the operator loaded the dictionary)",
    )
    yield proc
    proc.stop()
    out = proc.output()
    assert "Traceback" not in out, out[-4000:]
    assert linux_router_lab.ssh_password not in out, "the SSH password leaked into the operator log"
    key_body = "".join(linux_router_lab.ssh_private_key.strip().splitlines()[1:-1])
    assert key_body[:40] not in out, "the SSH private key leaked into the operator log"


@pytest.fixture
def lab(linux_router_lab: LinuxRouterLab, kubectl: Kubectl, namespace: str) -> Iterator[LinuxRouterLab]:
    """The module's lab, put back to its base state after each test, whatever the test did
    (a test that failed half-way leaves its appliance behind: it goes first, so that the
    operator stops changing the router)."""
    saved = {path: read_router_file(linux_router_lab, path) for path in PERSISTED}
    yield linux_router_lab
    kubectl(
        "delete",
        "vnfappliance",
        APPLIANCE,
        "-n",
        namespace,
        "--ignore-not-found",
        "--timeout=60s",
        check=False,
    )
    for path, text in saved.items():
        write_router_file(linux_router_lab, path, text)
    linux_router_lab.reset_nftables()
    bgp = linux_router_lab.vtysh("router", "show running-config bgpd", check=False)
    m = re.search(r"^router bgp (\d+)", bgp, re.M)
    if m:
        linux_router_lab.vtysh("router", "configure terminal", f"no router bgp {m.group(1)}", check=False)
    for line in re.findall(
        r"^ip route .*$", linux_router_lab.vtysh("router", "show running-config staticd", check=False), re.M
    ):
        linux_router_lab.vtysh("router", "configure terminal", f"no {line}", check=False)


# ------------------------------------------------------------------------------------------ helpers


def apply(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    kubectl("apply", "--server-side", "--field-manager=e2e", "-f", "-", input=json.dumps(obj))


def setup_secrets(kubectl: Kubectl, ns: str, lab: LinuxRouterLab) -> None:
    for name, data in (
        ("router-ssh", {"username": lab.ssh_user, "password": lab.ssh_password}),
        ("router-known-hosts", {"known_hosts": lab.known_hosts_line + "\n"}),
    ):
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "stringData": data,
        }
        kubectl("apply", "-f", "-", input=json.dumps(secret))


def appliance(ns: str, lab: LinuxRouterLab, services: dict[str, Any], **variables: str) -> dict[str, Any]:
    return {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": APPLIANCE, "namespace": ns},
        "spec": {
            "providerRef": {"name": "linux-nftables-frr"},
            "management": {"host": lab.mgmt_address, "ports": {"cli": lab.ssh_port}},
            "credentialsSecretRef": {"name": "router-ssh"},
            "ssh": {"knownHostsSecretRef": {"name": "router-known-hosts"}},
            "vars": {"bgp_asn": str(lab.router_asn), **variables},
            "services": {name: {"items": items} for name, items in services.items()},
        },
    }


def ready_at(kubectl: Kubectl, ns: str, generation: int | None = None) -> dict[str, Any]:
    """The appliance once Ready=True for `generation` (default: its current one)."""

    def check() -> dict[str, Any] | None:
        obj = get_json(kubectl, "vnfappliance", APPLIANCE, "-n", ns)
        st = obj.get("status") or {}
        gen = generation or obj.get("metadata", {}).get("generation")
        if st.get("observedGeneration") == gen and condition(obj, "Ready").get("status") == "True":
            return obj
        return None

    try:
        result: dict[str, Any] = wait_for(
            check, timeout=120, what=f"appliance Ready at generation {generation}"
        )
    except AssertionError:
        obj = get_json(kubectl, "vnfappliance", APPLIANCE, "-n", ns)
        raise AssertionError(f"not Ready: {json.dumps(obj.get('status'), indent=1)[:3000]}") from None
    return result


def last_plan(obj: dict[str, Any], service: str) -> tuple[int, int, int, int]:
    plan = obj["status"]["services"][service]["lastPlan"]
    return plan["create"], plan["update"], plan["delete"], plan["move"]


def wait_plan(kubectl: Kubectl, ns: str, service: str, plan: tuple[int, int, int, int]) -> None:
    """Wait until the status reports `plan` as the service's last (create, update, delete, move)."""

    def check() -> bool:
        obj = get_json(kubectl, "vnfappliance", APPLIANCE, "-n", ns)
        ready = condition(obj, "Ready").get("status") == "True"
        return ready and last_plan(obj, service) == plan

    wait_for(check, timeout=90, what=f"{service} lastPlan {plan}")


def request_reconcile(kubectl: Kubectl, ns: str) -> None:
    kubectl(
        "annotate", "--overwrite", "vnfappliance", APPLIANCE, "-n", ns, f"{ANNOTATION}={uuid.uuid4().hex}"
    )


def delete_appliance(kubectl: Kubectl, ns: str) -> None:
    kubectl("delete", "vnfappliance", APPLIANCE, "-n", ns, "--wait=false")
    wait_for(
        lambda: kubectl("get", "vnfappliance", APPLIANCE, "-n", ns, check=False).returncode != 0,
        timeout=90,
        what="appliance gone after its finalizer",
    )


def finished_operation(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any] | None:
    """The status of a VnfOperation once it succeeded or failed."""
    status: dict[str, Any] = get_json(kubectl, "vnfoperation", name, "-n", ns).get("status") or {}
    return status if status.get("phase") in ("Succeeded", "Failed") else None


def read_router_file(lab: LinuxRouterLab, path: str) -> str:
    return lab.run_in("router", "cat", path).stdout


def write_router_file(lab: LinuxRouterLab, path: str, text: str) -> None:
    lab.run_in("router", "sh", "-c", f"cat > {path}", input=text)


def chain_rules(lab: LinuxRouterLab, family: str, table: str, chain: str) -> list[dict[str, str]]:
    """Rules of a chain in order: {body, comment, handle}."""
    out = lab.nft("-a", "list", "chain", family, table, chain)
    rules = []
    for line in out.splitlines():
        m = _RULE_LINE.match(line)
        if m:
            rules.append({k: v or "" for k, v in m.groupdict().items()})
    return rules


def ours(rules: list[dict[str, str]], ns: str) -> list[dict[str, str]]:
    """The rules this appliance owns, their comment reduced to the item name."""
    marker = f"vnf:{ns}/{APPLIANCE}: "
    return [{**r, "name": r["comment"][len(marker) :]} for r in rules if r["comment"].startswith(marker)]


def forward_rules(lab: LinuxRouterLab, ns: str) -> list[dict[str, str]]:
    return ours(chain_rules(lab, "inet", "filter", "forward"), ns)


# ------------------------------------------------------------------------------------------ tests


def test_firewall_rules_block_and_restore_traffic(
    kubectl: Kubectl, namespace: str, lab: LinuxRouterLab, operator: OperatorProcess
) -> None:
    b1, b2 = lab.backends[0], lab.backends[1]
    assert lab.tcp_connect("client", b1.address, b1.tcp_port), "lab baseline: client reaches backend-1"
    rules: list[dict[str, Any]] = [
        {
            "name": "block-b1-tcp",
            "action": "drop",
            "protocol": "tcp",
            "source": "10.66.1.0/24",
            "destination": f"{b1.address}/32",
            "destination_port": b1.tcp_port,
        },
        {"name": "allow-b2", "action": "accept", "protocol": "tcp", "destination": f"{b2.address}/32"},
    ]
    setup_secrets(kubectl, namespace, lab)
    apply(kubectl, appliance(namespace, lab, {"firewall_rules": rules}))
    obj = ready_at(kubectl, namespace, 1)
    assert condition(obj, "InSync")["status"] == "True"
    assert last_plan(obj, "firewall_rules") == (2, 0, 0, 0)

    # The rules are in the forward chain, in spec order, marked as ours.
    device = forward_rules(lab, namespace)
    assert [r["name"] for r in device] == ["block-b1-tcp", "allow-b2"]
    assert "tcp dport 9000" in device[0]["body"] and device[0]["body"].endswith("drop")
    # Real traffic: the blocked flow fails, its neighbours do not.
    assert not lab.tcp_connect("client", b1.address, b1.tcp_port)
    assert lab.http_get_json("client", b1.url)["backend"] == "backend-1"
    assert lab.tcp_identity("client", b2.address, b2.tcp_port)["backend"] == "backend-2"

    # Edit one rule: exactly one device change, made in place (same handle).
    handle = device[0]["handle"]
    rules[0] = {**rules[0], "destination_port": b1.http_port}
    apply(kubectl, appliance(namespace, lab, {"firewall_rules": rules}))
    obj = ready_at(kubectl, namespace, 2)
    assert last_plan(obj, "firewall_rules") == (0, 1, 0, 0)
    summary = obj["status"]["services"]["firewall_rules"]["lastPlan"]["summary"]
    assert summary == [f"update firewall_rules[name=block-b1-tcp] id={handle}: destination_port"]
    device = forward_rules(lab, namespace)
    assert [(r["name"], r["handle"]) for r in device] == [
        ("block-b1-tcp", handle),
        ("allow-b2", device[1]["handle"]),
    ]
    assert lab.tcp_connect("client", b1.address, b1.tcp_port)
    assert not lab.tcp_connect("client", b1.address, b1.http_port)

    # Drift: the rule is deleted behind the operator's back; traffic flows again...
    lab.nft("delete", "rule", "inet", "filter", "forward", "handle", handle)
    assert lab.tcp_connect("client", b1.address, b1.http_port)
    # ...until a reconcile request puts it back, first in the chain again.
    request_reconcile(kubectl, namespace)
    wait_for(
        lambda: [r["name"] for r in forward_rules(lab, namespace)] == ["block-b1-tcp", "allow-b2"],
        timeout=90,
        what="the deleted rule restored in front of allow-b2",
    )
    assert not lab.tcp_connect("client", b1.address, b1.http_port)
    wait_plan(kubectl, namespace, "firewall_rules", (1, 0, 0, 0))

    # A rule edited by hand (an extra match) is drift too: replaced with the spec's version.
    restored = forward_rules(lab, namespace)[0]
    lab.nft(
        "replace", "rule", "inet", "filter", "forward", "handle", restored["handle"],
        "iifname", "lo", *restored["body"].split(), "comment", f'"{restored["comment"]}"',
    )  # fmt: skip
    assert lab.tcp_connect("client", b1.address, b1.http_port), "the hand edit disarmed the rule"
    request_reconcile(kubectl, namespace)
    wait_for(
        lambda: not lab.tcp_connect("client", b1.address, b1.http_port),
        timeout=90,
        what="the hand-edited rule replaced by the spec's",
    )
    assert "iifname" not in forward_rules(lab, namespace)[0]["body"]
    wait_plan(kubectl, namespace, "firewall_rules", (0, 1, 0, 0))

    # Reorder: the spec order wins with one move.
    apply(kubectl, appliance(namespace, lab, {"firewall_rules": [rules[1], rules[0]]}))
    obj = ready_at(kubectl, namespace, 3)
    assert last_plan(obj, "firewall_rules") == (0, 0, 0, 1)
    assert [r["name"] for r in forward_rules(lab, namespace)] == ["allow-b2", "block-b1-tcp"]

    # Removing the rule from the spec restores the traffic.
    apply(kubectl, appliance(namespace, lab, {"firewall_rules": [rules[1]]}))
    obj = ready_at(kubectl, namespace, 4)
    assert last_plan(obj, "firewall_rules") == (0, 0, 1, 0)
    assert lab.tcp_connect("client", b1.address, b1.http_port)
    assert [r["name"] for r in forward_rules(lab, namespace)] == ["allow-b2"]

    # Deleting the appliance removes its rules, and only its rules: a rule made by hand stays.
    foreign = lab.nft_add_rule("inet", "filter", "forward", "ip", "daddr", "10.66.2.250", "drop")
    delete_appliance(kubectl, namespace)
    assert forward_rules(lab, namespace) == []
    assert str(foreign) in [r["handle"] for r in chain_rules(lab, "inet", "filter", "forward")]


def test_port_forward_and_source_nat(
    kubectl: Kubectl, namespace: str, lab: LinuxRouterLab, operator: OperatorProcess
) -> None:
    b1, b2 = lab.backends[0], lab.backends[1]
    front_url = f"http://{lab.front_address}:8080/"
    # Day 0: the router lacks its NAT table; the provider's bootstrap creates it.
    lab.nft("delete", "table", "ip", "nat")
    assert not lab.tcp_connect("client", lab.front_address, 8080)
    assert lab.http_get_json("client", b2.url)["client_address"] == lab.client_address

    forwards = [
        {
            "name": "web-b1",
            "in_interface": lab.front_interface,
            "port": 8080,
            "to_address": b1.address,
            "to_port": b1.http_port,
        },
        {
            "name": "tcp-b2",
            "in_interface": lab.front_interface,
            "destination": f"{lab.front_address}/32",
            "port": 9100,
            "to_address": b2.address,
            "to_port": b2.tcp_port,
        },
    ]
    snat = [{"name": "clients-out", "out_interface": lab.back_interface, "source": "10.66.1.0/24"}]
    setup_secrets(kubectl, namespace, lab)
    apply(kubectl, appliance(namespace, lab, {"port_forwards": forwards, "source_nat": snat}, persist="true"))
    obj = ready_at(kubectl, namespace, 1)
    assert condition(obj, "Bootstrapped")["status"] == "True"
    assert (obj["status"].get("bootstrap") or {}).get("completed") is True
    assert "nat_chains" in obj["status"]["bootstrap"]["steps"]

    # persist: the boot-time ruleset file holds the rules (and nft accepts it).
    persisted = read_router_file(lab, "/etc/nftables.conf")
    assert f'comment "vnf:{namespace}/{APPLIANCE}: web-b1"' in persisted
    lab.run_in("router", "nft", "-c", "-f", "/etc/nftables.conf")

    # Port forwards: the backends answer on the router's front address.
    seen = lab.http_get_json("client", front_url)
    assert seen["backend"] == "backend-1"
    assert lab.tcp_identity("client", lab.front_address, 9100)["backend"] == "backend-2"
    # Source NAT (masquerade on back0): the backend sees the router's back address, not the client.
    assert seen["client_address"] == lab.back_address
    assert lab.http_get_json("client", b2.url)["client_address"] == lab.back_address

    # SNAT to another address of the router: one update, and the backend sees that address.
    extra = "10.66.2.50"
    lab.run_in("router", "ip", "addr", "add", f"{extra}/32", "dev", lab.back_interface)
    try:
        snat2 = [{**snat[0], "to_address": extra}]
        apply(
            kubectl,
            appliance(namespace, lab, {"port_forwards": forwards, "source_nat": snat2}, persist="true"),
        )
        obj = ready_at(kubectl, namespace, 2)
        assert last_plan(obj, "source_nat") == (0, 1, 0, 0)
        assert last_plan(obj, "port_forwards") == (0, 0, 0, 0)
        assert lab.http_get_json("client", b2.url)["client_address"] == extra

        # Without source NAT the backend sees the client again; the forwards stay.
        apply(
            kubectl, appliance(namespace, lab, {"port_forwards": forwards, "source_nat": []}, persist="true")
        )
        obj = ready_at(kubectl, namespace, 3)
        assert last_plan(obj, "source_nat") == (0, 0, 1, 0)
        assert lab.http_get_json("client", b2.url)["client_address"] == lab.client_address
        assert lab.http_get_json("client", front_url)["client_address"] == lab.client_address
    finally:
        lab.run_in("router", "ip", "addr", "del", f"{extra}/32", "dev", lab.back_interface, check=False)

    # Deleting the appliance removes the forwards.
    delete_appliance(kubectl, namespace)
    assert ours(chain_rules(lab, "ip", "nat", "prerouting"), namespace) == []
    assert not lab.tcp_connect("client", lab.front_address, 8080)


def test_static_route_and_bgp_neighbor(
    kubectl: Kubectl, namespace: str, lab: LinuxRouterLab, operator: OperatorProcess
) -> None:
    # A network behind backend-1 that the router does not know yet.
    net, host = "10.77.0.0/16", "10.77.0.1"
    lab.run_in("backend", "ip", "addr", "add", f"{host}/32", "dev", "lo")
    try:
        assert not lab.ping("client", host)
        assert not lab.ping("client", lab.peer_prefix_host)

        services = {
            "static_routes": [{"prefix": net, "nexthop": lab.backends[0].address}],
            "bgp_neighbors": [
                {"address": lab.peer_address, "remote_as": lab.peer_asn, "description": "lab peer"}
            ],
            "bgp_networks": [{"prefix": "10.66.1.0/24"}],
        }
        setup_secrets(kubectl, namespace, lab)
        apply(kubectl, appliance(namespace, lab, services, persist="true"))
        obj = ready_at(kubectl, namespace, 1)
        assert [last_plan(obj, s) for s in services] == [(1, 0, 0, 0)] * 3
        saved = read_router_file(lab, "/etc/frr/frr.conf")  # `write memory` by the commit steps
        assert f"ip route {net} {lab.backends[0].address}" in saved
        assert f"neighbor {lab.peer_address} remote-as {lab.peer_asn}" in saved
        assert "network 10.66.1.0/24" in saved

        # Static route: in the kernel (installed by zebra) and carrying packets.
        assert lab.has_route("router", net, protocol="static")
        assert lab.ping("client", host)

        # BGP: the session comes up, the peer's prefix is installed and carries packets both ways
        # (the peer answers the client through the network the router announces).
        wait_for(lambda: lab.bgp_state(lab.peer_address) == "Established", timeout=90, what="BGP Established")
        wait_for(
            lambda: lab.has_route("router", lab.peer_prefix, protocol="bgp"), timeout=60, what="peer prefix"
        )
        wait_for(
            lambda: lab.has_route("peer", "10.66.1.0/24", protocol="bgp"), timeout=60, what="our network"
        )
        assert lab.ping("client", lab.peer_prefix_host)
        summary = lab.vtysh_json("router", "show bgp summary json")["ipv4Unicast"]["peers"][lab.peer_address]
        assert summary["desc"] == f"vnf:{namespace}/{APPLIANCE}: lab peer"
        # The same, asked through the operator: a VnfOperation running monitoring/bgp_summary.
        operation = {
            "apiVersion": "vnf.operators.dev/v1alpha1",
            "kind": "VnfOperation",
            "metadata": {"name": "bgp-summary", "namespace": namespace},
            "spec": {
                "applianceRef": {"name": APPLIANCE},
                "service": "monitoring",
                "operation": "bgp_summary",
            },
        }
        apply(kubectl, operation)
        done = wait_for(lambda: finished_operation(kubectl, namespace, "bgp-summary"), what="bgp-summary")
        assert done["phase"] == "Succeeded", done
        peers = {row["neighbor"]: row for row in done["rows"]}
        assert peers[lab.peer_address]["remote_as"] == str(lab.peer_asn)
        assert peers[lab.peer_address]["state_or_prefixes"] == "1"  # Established, one prefix received

        # Next hop of the static route changes: one update, the new path carries the packets.
        b2 = lab.backends[1]
        services["static_routes"] = [{"prefix": net, "nexthop": b2.address, "distance": 5}]
        apply(kubectl, appliance(namespace, lab, services))
        obj = ready_at(kubectl, namespace, 2)
        assert last_plan(obj, "static_routes") == (0, 1, 0, 0)
        route = [r for r in lab.routes_in("router") if r.get("dst") == net]
        assert [r.get("gateway") for r in route] == [b2.address]

        # Removing the neighbor tears the session down and withdraws the prefix.
        services["bgp_neighbors"] = []
        apply(kubectl, appliance(namespace, lab, services))
        obj = ready_at(kubectl, namespace, 3)
        assert last_plan(obj, "bgp_neighbors") == (0, 0, 1, 0)
        wait_for(
            lambda: not lab.has_route("router", lab.peer_prefix), timeout=60, what="peer prefix withdrawn"
        )
        assert not lab.ping("client", lab.peer_prefix_host)

        # Deleting the appliance removes the static route and the announced network.
        delete_appliance(kubectl, namespace)
        assert not lab.has_route("router", net)
        assert "network 10.66.1.0/24" not in lab.vtysh("router", "show running-config bgpd")
        assert not lab.ping("client", host)
    finally:
        lab.run_in("backend", "ip", "addr", "del", f"{host}/32", "dev", "lo", check=False)
