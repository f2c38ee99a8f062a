"""The Linux router lab itself, proven with real traffic: daemons driven directly, no operator."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from vnf_operator.testing.netns import (
    LabConfig,
    LabError,
    LinuxRouterLab,
    await_until,
    cleanup_stale,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(linux_router_lab: LinuxRouterLab) -> Iterator[LinuxRouterLab]:
    """The module's lab, with the router's nftables ruleset restored after each test."""
    yield linux_router_lab
    linux_router_lab.reset_nftables()


def _known_hosts(lab: LinuxRouterLab) -> asyncssh.SSHKnownHosts:
    return asyncssh.import_known_hosts(lab.known_hosts_line + "\n")


# ------------------------------------------------------------------------------------------ topology


def test_forwarding_only_in_router_and_routed_traffic_keeps_source(lab: LinuxRouterLab) -> None:
    for role, expected in (("router", "1"), ("client", "0"), ("backend", "0"), ("peer", "0")):
        out = lab.run_in(role, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip()
        assert out == expected, role
    seen = lab.http_get_json("client", lab.backends[0].url)
    assert seen["backend"] == "backend-1"
    assert seen["client_address"] == lab.client_address
    tcp = lab.tcp_identity("client", lab.backends[1].address, lab.backends[1].tcp_port)
    assert (tcp["backend"], tcp["client_address"]) == ("backend-2", lab.client_address)
    assert lab.tcp_connect("root", lab.mgmt_address, lab.ssh_port)


def test_base_ruleset_has_filter_and_nat_chains(lab: LinuxRouterLab) -> None:
    items = lab.nft_ruleset_json()["nftables"]
    chains = {
        (c["chain"]["family"], c["chain"]["table"], c["chain"]["name"]): c["chain"]
        for c in items
        if "chain" in c
    }
    for key in (("inet", "filter", "input"), ("inet", "filter", "forward")):
        assert chains[key]["policy"] == "accept"
    assert chains[("ip", "nat", "prerouting")]["prio"] == -100
    assert chains[("ip", "nat", "postrouting")]["prio"] == 100
    assert not any("rule" in item for item in items)


# ------------------------------------------------------------------------------------------ nftables


def test_forward_drop_rule_blocks_and_deleting_it_restores(lab: LinuxRouterLab) -> None:
    target = lab.backends[0]
    assert lab.tcp_connect("client", target.address, target.http_port)
    rule = f"inet filter forward ip daddr {target.address} tcp dport {target.http_port} drop"
    handle = lab.nft_add_rule(*rule.split())
    rules = [i["rule"] for i in lab.nft_ruleset_json()["nftables"] if "rule" in i]
    assert [(r["chain"], r["handle"]) for r in rules] == [("forward", handle)]
    assert not lab.tcp_connect("client", target.address, target.http_port, timeout=1.0)
    # the other backend is not affected
    assert lab.tcp_connect("client", lab.backends[1].address, lab.backends[1].http_port)
    lab.nft("delete", "rule", "inet", "filter", "forward", "handle", str(handle))
    assert lab.tcp_connect("client", target.address, target.http_port)


def test_dnat_makes_backend_reachable_on_front_address(lab: LinuxRouterLab) -> None:
    target = lab.backends[1]
    assert not lab.tcp_connect("client", lab.front_address, 8081, timeout=1.0)
    to = f"{target.address}:{target.http_port}"
    rule = f"ip nat prerouting iifname {lab.front_interface} tcp dport 8081 dnat to {to}"
    lab.nft_add_rule(*rule.split())
    seen = lab.http_get_json("client", f"http://{lab.front_address}:8081/dnat")
    assert (seen["backend"], seen["path"]) == (target.name, "/dnat")
    assert seen["client_address"] == lab.client_address  # no source NAT


@pytest.mark.parametrize("nat", ["masquerade", "snat"])
def test_source_nat_changes_the_source_the_backend_sees(lab: LinuxRouterLab, nat: str) -> None:
    url = lab.backends[0].url
    assert lab.http_get_json("client", url)["client_address"] == lab.client_address
    action = ["masquerade"] if nat == "masquerade" else ["snat", "to", lab.back_address]
    lab.nft_add_rule("ip", "nat", "postrouting", "oifname", lab.back_interface, *action)
    assert lab.http_get_json("client", url)["client_address"] == lab.back_address
    lab.reset_nftables()
    assert lab.http_get_json("client", url)["client_address"] == lab.client_address


# ------------------------------------------------------------------------------------------ FRR


def test_bgp_with_peer_establishes_and_installs_the_peer_prefix(lab: LinuxRouterLab) -> None:
    assert lab.bgp_state(lab.peer_address) is None
    assert not lab.has_route("router", lab.peer_prefix)
    lab.vtysh(
        "router",
        "configure terminal",
        f"router bgp {lab.router_asn}",
        f"bgp router-id {lab.router_peer_address}",
        "no bgp ebgp-requires-policy",
        f"neighbor {lab.peer_address} remote-as {lab.peer_asn}",
        f"neighbor {lab.peer_address} timers 3 9",
        f"neighbor {lab.peer_address} timers connect 2",
        "end",
    )
    try:
        wait_until(
            lambda: lab.bgp_state(lab.peer_address) == "Established", timeout=60, what="BGP Established"
        )
        assert lab.bgp_state(lab.router_peer_address, ns="peer") == "Established"
        wait_until(
            lambda: lab.has_route("router", lab.peer_prefix, protocol="bgp"), timeout=30, what="BGP route"
        )
        summary = json.loads(lab.vtysh("router", "show ip bgp summary json"))
        assert summary["ipv4Unicast"]["peers"][lab.peer_address]["pfxRcd"] >= 1
        # real traffic to the announced prefix, from the router and routed from the client
        assert lab.ping("router", lab.peer_prefix_host)
        assert lab.ping("client", lab.peer_prefix_host)
    finally:
        lab.vtysh("router", "configure terminal", f"no router bgp {lab.router_asn}", "end")
    wait_until(lambda: not lab.has_route("router", lab.peer_prefix), timeout=30, what="BGP route withdrawn")


def test_static_route_is_installed_by_staticd(lab: LinuxRouterLab) -> None:
    lab.vtysh("router", "configure terminal", f"ip route 10.66.99.0/24 {lab.backends[0].address}", "end")
    try:
        wait_until(
            lambda: lab.has_route("router", "10.66.99.0/24", protocol="static"), timeout=30, what="route"
        )
        routes = json.loads(lab.vtysh("router", "show ip route static json"))
        assert routes["10.66.99.0/24"][0]["installed"] is True
    finally:
        lab.vtysh(
            "router", "configure terminal", f"no ip route 10.66.99.0/24 {lab.backends[0].address}", "end"
        )
    wait_until(lambda: not lab.has_route("router", "10.66.99.0/24"), timeout=30, what="route removed")


# ------------------------------------------------------------------------------------------ HAProxy


def test_haproxy_balances_connections_over_two_backends(lab: LinuxRouterLab) -> None:
    seen = [lab.http_get_json("client", lab.frontend_url) for _ in range(4)]
    assert {s["backend"] for s in seen} == {"backend-1", "backend-2"}
    assert {s["client_address"] for s in seen} == {lab.back_address}  # proxied by the router
    assert {s["x_forwarded_for"] for s in seen} == {lab.client_address}


def test_haproxy_reload_applies_a_new_configuration(lab: LinuxRouterLab) -> None:
    original = lab.haproxy_config_path.read_text()
    extra = (
        "\nfrontend fe_extra\n"
        f"    bind {lab.front_address}:8090\n"
        "    default_backend be_one\n"
        "backend be_one\n"
        f"    server only {lab.backends[1].address}:{lab.backends[1].http_port}\n"
    )
    assert not lab.tcp_connect("client", lab.front_address, 8090, timeout=1.0)
    try:
        lab.haproxy_config_path.write_text(original + extra)
        lab.haproxy_reload()
        seen = lab.http_get_json("client", f"http://{lab.front_address}:8090/")
        assert seen["backend"] == "backend-2"
        assert "be_one" in lab.haproxy_runtime("show backend")
    finally:
        lab.haproxy_config_path.write_text(original)
        lab.haproxy_reload()
    assert not lab.tcp_connect("client", lab.front_address, 8090, timeout=1.0)
    assert lab.http_get_json("client", lab.frontend_url)["backend"].startswith("backend-")


# ------------------------------------------------------------------------------------------ SSH


async def test_ssh_with_key_and_pinned_host_key_runs_router_tools(lab: LinuxRouterLab) -> None:
    async with asyncssh.connect(
        lab.mgmt_address,
        port=lab.ssh_port,
        username=lab.ssh_user,
        client_keys=[asyncssh.import_private_key(lab.ssh_private_key)],
        known_hosts=_known_hosts(lab),
        agent_path=None,
        password=None,
    ) as conn:
        nft = await conn.run("nft -j list ruleset", check=True)
        assert any("table" in i for i in json.loads(str(nft.stdout))["nftables"])
        frr = await conn.run("vtysh -c 'show version'", check=True)
        assert "FRRouting" in str(frr.stdout)
        check = await conn.run("haproxy -c -f /etc/haproxy/haproxy.cfg", check=True)
        assert "valid" in str(check.stdout)
        proc = await conn.run(
            "echo 'show proc' | socat stdio unix-connect:/run/haproxy/master.sock", check=True
        )
        assert "master" in str(proc.stdout)
        host = await conn.run("hostname", check=True)
        assert str(host.stdout).strip() == "router"


async def test_ssh_with_password(lab: LinuxRouterLab) -> None:
    async with asyncssh.connect(
        lab.mgmt_address,
        port=lab.ssh_port,
        username=lab.ssh_user,
        password=lab.ssh_password,
        client_keys=None,
        known_hosts=_known_hosts(lab),
        agent_path=None,
    ) as conn:
        result = await conn.run("id -u; echo $HOME", check=True)
        assert str(result.stdout).split() == ["0", f"/home/{lab.ssh_user}"]


async def test_ssh_refuses_a_wrong_host_key_and_a_wrong_password(lab: LinuxRouterLab) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    wrong = asyncssh.import_known_hosts(f"{lab.mgmt_address} {other}\n")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            lab.mgmt_address,
            port=lab.ssh_port,
            username=lab.ssh_user,
            password=lab.ssh_password,
            client_keys=None,
            known_hosts=wrong,
            agent_path=None,
        )
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            lab.mgmt_address,
            port=lab.ssh_port,
            username=lab.ssh_user,
            password="not-" + lab.ssh_password,
            client_keys=None,
            known_hosts=_known_hosts(lab),
            agent_path=None,
        )


async def test_async_helpers(lab: LinuxRouterLab) -> None:
    assert await lab.atcp_connect("client", lab.front_address, lab.haproxy_port)
    body = await lab.ahttp_get("client", lab.frontend_url)
    assert json.loads(body)["backend"].startswith("backend-")
    assert "nftables" in await lab.anft_ruleset_json()
    assert await await_until(lambda: lab.ping("client", lab.front_address), timeout=10, what="ping")


# ------------------------------------------------------------------------------------------ lifecycle


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_cleanup_removes_what_a_crashed_lab_left(lab: LinuxRouterLab) -> None:
    pid = _dead_pid()
    ns, link = f"vnflab{pid}x0-client", f"vnl{pid}m0"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "300"])
    subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", f"vnl{pid}p"], check=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"vnflab{pid}x0-"))
    try:
        cleanup_stale()  # (a lab starting in a parallel session may get there first: check the result)
        assert not workdir.exists()
        assert sleeper.wait(timeout=10) != 0
        assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert link not in subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        # the running lab is left alone
        assert lab.tcp_connect("root", lab.mgmt_address, lab.ssh_port)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        subprocess.run(["ip", "link", "delete", link], capture_output=True)
        sleeper.kill()
        sleeper.wait()


def test_a_second_lab_runs_alongside_and_leaves_nothing_behind(lab: LinuxRouterLab) -> None:
    second = LinuxRouterLab(LabConfig(with_peer=False))
    with second:
        assert second.mgmt_subnet != lab.mgmt_subnet
        assert second.tcp_connect("root", second.mgmt_address, second.ssh_port)
        assert second.http_get_json("client", second.frontend_url)["backend"].startswith("backend-")
        names = list(second.namespaces.values())
        workdir, root_link = second.workdir, second.root_link
        pids = [
            int(p)
            for n in names
            for p in subprocess.run(["ip", "netns", "pids", n], capture_output=True, text=True).stdout.split()
        ]
        assert len(pids) >= 6
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [n for n in names if n in listed]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert root_link not in links
    assert not workdir.exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    # the first lab is untouched
    assert lab.tcp_connect("root", lab.mgmt_address, lab.ssh_port)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_lab_requires_start_for_runtime_attributes() -> None:
    lab = LinuxRouterLab()
    with pytest.raises(LabError, match="not running"):
        _ = lab.mgmt_address
