"""Offline checks of the Linux router and HAProxy dictionaries: exact renders, parsing of real
device output, and the round trip render → device → list → diff that must plan no change.

The device outputs below were captured from the e2e lab (Debian 12: nftables 1.0.6, FRR 8.4.4,
HAProxy 2.6.12) after running exactly the commands these dictionaries render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vnf_operator.core import diff
from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.errors import InjectionError, ItemValidationError, TemplateError
from vnf_operator.core.itemschema import validate_item
from vnf_operator.core.loader import LoadedProvider, load_provider_file
from vnf_operator.core.model import Policy
from vnf_operator.core.parse import Parsed, parse_response
from vnf_operator.core.render import (
    render_bootstrap_step,
    render_call,
    render_connection,
    render_marker,
    render_operation,
)
from vnf_operator.core.rendered import CliCommands, RawResponse
from vnf_operator.engine.sync import add_marker, comparison_rules, strip_marker

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINUX = load_provider_file(ROOT / "providers" / "linux-nftables-frr.yaml")
HAPROXY = load_provider_file(ROOT / "providers" / "haproxy-runtime.yaml")
APPLIANCE = ApplianceInfo(name="r1", namespace="edge", host="192.0.2.1", vars={"bgp_asn": "65001"})
CTX = TemplateContext(appliance=APPLIANCE, credentials={"username": "vnfadmin", "password": "pw-0123456789"})
MARKER = "vnf:edge/r1:"


def _item(lp: LoadedProvider, service: str, item: dict[str, Any]) -> dict[str, Any]:
    """A desired item as the engine sends it: validated, defaults applied, marker written."""
    svc = lp.dictionary.services[service]
    valid = validate_item(svc, item, where="item")
    return add_marker(valid, svc, render_marker(lp, service, CTX) or "")


def _commands(lp: LoadedProvider, service: str, op: str, ctx: TemplateContext = CTX) -> list[str]:
    rendered = render_operation(lp, service, op, ctx)
    assert isinstance(rendered, CliCommands)
    assert rendered.mode == "exec"
    return list(rendered.commands)


def _parse(lp: LoadedProvider, service: str, op: str, text: str) -> Parsed:
    svc = lp.dictionary.services[service]
    conn = render_connection(lp, next(iter(lp.dictionary.connections)), CTX)
    return parse_response(
        svc.operations[op].response,
        RawResponse(text=text, outputs=(text,), exit_status=0),
        where=f"{service}.{op}",
        operation_kind=op,
        error_patterns=conn.error_patterns,
    )


def _plan(lp: LoadedProvider, service: str, desired: list[dict[str, Any]], listed: str) -> diff.Plan:
    """What the engine would do: desired items against the parsed, marker-stripped listing."""
    svc = lp.dictionary.services[service]
    rules = comparison_rules(svc, service)
    wanted = [validate_item(svc, d, where="item") for d in desired]
    actual, owned = strip_marker(_parse(lp, service, "list", listed).items, svc, MARKER, rules)
    return diff.plan(wanted, actual, rules, Policy.REPLACED, managed_keys=owned)


# ------------------------------------------------------------------------------------------ captured

FORWARD = """\
table inet filter {
\tchain forward { # handle 2
\t\ttype filter hook forward priority filter; policy accept;
\t\tip saddr 10.66.1.0/24 ip daddr 10.66.2.2 tcp dport 22 counter packets 0 bytes 0 drop comment "vnf:edge/r1: block-ssh" # handle 15
\t\ttcp dport 8000-8080 counter packets 3 bytes 180 accept comment "vnf:edge/r1: web-range" # handle 16
\t\tip6 saddr 2001:db8::/32 meta l4proto icmp counter packets 0 bytes 0 accept comment "vnf:edge/r1: v6-icmp" # handle 17
\t\tip daddr 10.66.2.0/24 meta l4proto udp counter packets 0 bytes 0 reject with icmp port-unreachable comment "vnf:edge/r1: reject-udp" # handle 18
\t\tct state established,related accept # handle 19
\t}
}
"""
FORWARD_DESIRED: list[dict[str, Any]] = [
    {
        "name": "block-ssh",
        "action": "drop",
        "protocol": "tcp",
        "source": "10.66.1.0/24",
        "destination": "10.66.2.2/32",
        "destination_port": 22,
    },
    {"name": "web-range", "action": "accept", "protocol": "tcp", "destination_port": "8000-8080"},
    {"name": "v6-icmp", "protocol": "icmp", "source": "2001:db8::/32"},
    {"name": "reject-udp", "action": "reject", "protocol": "udp", "destination": "10.66.2.0/24"},
]
PREROUTING = """\
table ip nat {
\tchain prerouting { # handle 1
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname "front0" tcp dport 8080 counter packets 0 bytes 0 dnat to 10.66.2.2:80 comment "vnf:edge/r1: web" # handle 10
\t\tiifname "front0" ip daddr 10.66.1.1 udp dport 53 counter packets 0 bytes 0 dnat to 10.66.2.3 comment "vnf:edge/r1: dns" # handle 11
\t}
}
"""
PREROUTING_DESIRED: list[dict[str, Any]] = [
    {"name": "web", "in_interface": "front0", "port": 8080, "to_address": "10.66.2.2", "to_port": 80},
    {
        "name": "dns",
        "in_interface": "front0",
        "protocol": "udp",
        "destination": "10.66.1.1/32",
        "port": 53,
        "to_address": "10.66.2.3",
    },
]
POSTROUTING = """\
table ip nat {
\tchain postrouting { # handle 2
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname "back0" ip saddr 10.66.1.0/24 counter packets 0 bytes 0 masquerade comment "vnf:edge/r1: masq" # handle 12
\t\toifname "back0" counter packets 0 bytes 0 snat to 10.66.2.1 comment "vnf:edge/r1: snat" # handle 13
\t}
}
"""
POSTROUTING_DESIRED: list[dict[str, Any]] = [
    {"name": "masq", "out_interface": "back0", "source": "10.66.1.0/24"},
    {"name": "snat", "out_interface": "back0", "to_address": "10.66.2.1"},
]
_FRR_HEAD = """\
Building configuration...

Current configuration:
!
frr version 8.4.4
frr defaults traditional
hostname router
service integrated-vtysh-config
!
"""
STATICD = (
    _FRR_HEAD
    + """\
ip route 10.77.0.0/16 10.66.2.2
ip route 10.78.0.0/16 10.66.9.9 50
!
end
"""
)
STATIC_DESIRED: list[dict[str, Any]] = [
    {"prefix": "10.77.0.0/16", "nexthop": "10.66.2.2"},
    {"prefix": "10.78.0.0/16", "nexthop": "10.66.9.9", "distance": 50},
]
BGPD = (
    _FRR_HEAD
    + """\
router bgp 65001
 no bgp ebgp-requires-policy
 neighbor 10.66.3.2 remote-as 65002
 neighbor 10.66.3.2 description vnf:edge/r1: lab peer
 neighbor 10.66.3.9 remote-as 65009
 neighbor 10.66.3.9 description vnf:edge/r1:
 neighbor 10.66.3.20 remote-as external
 !
 address-family ipv4 unicast
  network 10.66.1.0/24
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:db8::/32
 exit-address-family
exit
!
end
"""
)
NEIGHBORS_DESIRED: list[dict[str, Any]] = [
    {"address": "10.66.3.2", "remote_as": 65002, "description": "lab peer"},
    {"address": "10.66.3.9", "remote_as": 65009},
]
SERVERS_STATE = """\
1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be_web 1 backend-1 10.66.2.2 2 0 1 1 973 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0
3 be_web 2 backend-2 10.66.2.3 2 0 1 1 973 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0
5 be_pool 1 m1 10.66.2.2 2 0 3 3 7 1 0 0 0 0 0 0 - 8080 - 0 0 - - 0
5 be_pool 2 m2 10.66.2.3 0 1 1 1 6 1 0 0 0 0 0 0 - 8080 - 0 0 - - 0

"""
MEMBERS_DESIRED: list[dict[str, Any]] = [
    {"backend": "be_pool", "name": "m1", "address": "10.66.2.2", "port": 8080, "weight": 3},
    {"backend": "be_pool", "name": "m2", "address": "10.66.2.3", "port": 8080, "enabled": False},
]


# ------------------------------------------------------------------------------------------ loading


def test_dictionaries_load_with_their_services() -> None:
    assert sorted(LINUX.dictionary.services) == [
        "bgp_neighbors",
        "bgp_networks",
        "firewall_rules",
        "monitoring",
        "port_forwards",
        "source_nat",
        "static_routes",
    ]
    assert sorted(HAPROXY.dictionary.services) == ["lb_pool_members", "monitoring"]
    for lp in (LINUX, HAPROXY):
        conn = render_connection(lp, next(iter(lp.dictionary.connections)), CTX)
        assert conn.mode == "exec"


# ------------------------------------------------------------------------------------------ renders


def test_firewall_rule_renders_one_quoted_nft_command_per_placement() -> None:
    rule = _item(LINUX, "firewall_rules", FORWARD_DESIRED[0])
    body = (
        "ip saddr 10.66.1.0/24 ip daddr 10.66.2.2/32 tcp dport 22 counter drop "
        'comment "vnf:edge/r1: block-ssh"'
    )
    assert _commands(LINUX, "firewall_rules", "create", CTX.for_item(rule)) == [
        f"nft -e -a 'add rule inet filter forward {body}'"
    ]
    assert _commands(LINUX, "firewall_rules", "create", CTX.replace(item=rule, before_id="16")) == [
        f"nft -e -a 'insert rule inet filter forward position 16 {body}'"
    ]
    assert _commands(LINUX, "firewall_rules", "create", CTX.replace(item=rule, after_id="15")) == [
        f"nft -e -a 'add rule inet filter forward position 15 {body}'"
    ]
    assert _commands(LINUX, "firewall_rules", "update", CTX.for_item(rule, id="15")) == [
        f"nft -e -a 'replace rule inet filter forward handle 15 {body}'"
    ]
    assert _commands(LINUX, "firewall_rules", "delete", CTX.for_item(None, actual=rule, id="15")) == [
        "if nft -a list chain inet filter forward | grep -q ' # handle 15$'; "
        "then nft delete rule inet filter forward handle 15; fi"
    ]


def test_firewall_rule_variants() -> None:
    def body(item: dict[str, Any]) -> str:
        (line,) = _commands(
            LINUX, "firewall_rules", "create", CTX.for_item(_item(LINUX, "firewall_rules", item))
        )
        assert line.startswith("nft -e -a 'add rule inet filter forward ") and line.endswith("'")
        return line[len("nft -e -a 'add rule inet filter forward ") : -1]

    assert body(FORWARD_DESIRED[1]) == 'tcp dport 8000-8080 counter accept comment "vnf:edge/r1: web-range"'
    assert body(FORWARD_DESIRED[2]) == (
        'ip6 saddr 2001:db8::/32 meta l4proto icmp counter accept comment "vnf:edge/r1: v6-icmp"'
    )
    assert body({"name": "any"}) == 'counter accept comment "vnf:edge/r1: any"'
    assert body({"name": "r", "protocol": "udp", "destination_port": "60:70"}) == (
        'udp dport 60-70 counter accept comment "vnf:edge/r1: r"'
    )


def test_firewall_move_reinserts_the_rule_text_atomically() -> None:
    (line,) = _commands(LINUX, "firewall_rules", "move", CTX.replace(id="18", before_id="15"))
    assert line == (
        "R=$(nft -a list chain inet filter forward | sed -n "
        "'s/^[[:space:]]*\\(.*\\) # handle 18$/\\1/p') && [ -n \"$R\" ] && printf '%s\\n' "
        '"insert rule inet filter forward position 15 $R" '
        "'delete rule inet filter forward handle 18' | nft -e -a -f -"
    )
    (line,) = _commands(LINUX, "firewall_rules", "move", CTX.replace(id="18"))
    assert "\"add rule inet filter forward $R\" 'delete rule inet filter forward handle 18'" in line


def test_nat_renders() -> None:
    fwd = _item(LINUX, "port_forwards", PREROUTING_DESIRED[1])
    assert _commands(LINUX, "port_forwards", "create", CTX.for_item(fwd)) == [
        'nft -e -a \'add rule ip nat prerouting iifname "front0" ip daddr 10.66.1.1/32 '
        'udp dport 53 counter dnat to 10.66.2.3 comment "vnf:edge/r1: dns"\''
    ]
    fwd = _item(LINUX, "port_forwards", PREROUTING_DESIRED[0])
    assert _commands(LINUX, "port_forwards", "update", CTX.for_item(fwd, id="10")) == [
        'nft -e -a \'replace rule ip nat prerouting handle 10 iifname "front0" '
        'tcp dport 8080 counter dnat to 10.66.2.2:80 comment "vnf:edge/r1: web"\''
    ]
    masq = _item(LINUX, "source_nat", POSTROUTING_DESIRED[0])
    assert _commands(LINUX, "source_nat", "create", CTX.for_item(masq)) == [
        'nft -e -a \'add rule ip nat postrouting oifname "back0" ip saddr 10.66.1.0/24 '
        'counter masquerade comment "vnf:edge/r1: masq"\''
    ]
    snat = _item(LINUX, "source_nat", POSTROUTING_DESIRED[1])
    assert _commands(LINUX, "source_nat", "create", CTX.for_item(snat)) == [
        'nft -e -a \'add rule ip nat postrouting oifname "back0" counter snat to 10.66.2.1 '
        'comment "vnf:edge/r1: snat"\''
    ]


def test_frr_renders() -> None:
    route = _item(LINUX, "static_routes", STATIC_DESIRED[0])
    old = {"prefix": "10.77.0.0/16", "nexthop": "10.66.2.3", "distance": 1}
    assert _commands(LINUX, "static_routes", "create", CTX.for_item(route)) == [
        "vtysh -c 'configure terminal' -c 'ip route 10.77.0.0/16 10.66.2.2 1'"
    ]
    assert _commands(LINUX, "static_routes", "update", CTX.for_item(route, actual=old)) == [
        "vtysh -c 'configure terminal' -c 'no ip route 10.77.0.0/16 10.66.2.3' "
        "-c 'ip route 10.77.0.0/16 10.66.2.2 1'"
    ]
    assert _commands(LINUX, "static_routes", "delete", CTX.for_item(None, actual=old)) == [
        "vtysh -c 'configure terminal' -c 'no ip route 10.77.0.0/16 10.66.2.3'"
    ]
    peer = _item(LINUX, "bgp_neighbors", NEIGHBORS_DESIRED[0])
    assert _commands(LINUX, "bgp_neighbors", "create", CTX.for_item(peer)) == [
        "vtysh -c 'configure terminal' -c 'router bgp 65001' -c 'no bgp ebgp-requires-policy' "
        "-c 'neighbor 10.66.3.2 remote-as 65002' -c 'neighbor 10.66.3.2 description vnf:edge/r1: lab peer'"
    ]
    policy = CTX.replace(
        appliance=ApplianceInfo(
            name="r1",
            namespace="edge",
            vars={"bgp_asn": "64512", "bgp_router_id": "10.0.0.1", "ebgp_requires_policy": "True"},
        ),
        item=_item(LINUX, "bgp_networks", {"prefix": "10.66.1.0/24"}),
    )
    assert _commands(LINUX, "bgp_networks", "create", policy) == [
        "vtysh -c 'configure terminal' -c 'router bgp 64512' -c 'bgp router-id 10.0.0.1' "
        "-c 'bgp ebgp-requires-policy' -c 'address-family ipv4 unicast' -c 'network 10.66.1.0/24'"
    ]
    assert _commands(LINUX, "bgp_neighbors", "delete", CTX.for_item(None, actual=peer)) == [
        "vtysh -c 'configure terminal' -c 'router bgp 65001' -c 'no neighbor 10.66.3.2'"
    ]


def test_commits_save_only_when_persist_is_true() -> None:
    for service in ("firewall_rules", "port_forwards", "source_nat", "static_routes", "bgp_neighbors"):
        assert _commands(LINUX, service, "commit") == ["true"]
    persist = CTX.replace(appliance=ApplianceInfo(name="r1", namespace="edge", vars={"persist": "true"}))
    assert _commands(LINUX, "source_nat", "commit", persist) == [
        "{ echo '#!/usr/sbin/nft -f'; echo 'flush ruleset'; nft list ruleset; } > /run/vnf-nftables.conf.new "
        "&& nft -c -f /run/vnf-nftables.conf.new && cat /run/vnf-nftables.conf.new > /etc/nftables.conf "
        "&& rm -f /run/vnf-nftables.conf.new"
    ]
    assert _commands(LINUX, "bgp_networks", "commit", persist) == ["vtysh -c 'write memory'"]


def test_bootstrap_and_health_renders() -> None:
    boot = LINUX.dictionary.bootstrap
    assert boot is not None
    assert [s.name for s in boot.steps] == [
        "tables",
        "filter_table",
        "filter_chain",
        "nat_table",
        "nat_chains",
    ]
    rendered = render_bootstrap_step(LINUX, "nat_chains", CTX)
    assert isinstance(rendered, CliCommands)
    assert rendered.commands == (
        "nft 'add chain ip nat prerouting { type nat hook prerouting priority dstnat; policy accept; }'",
        "nft 'add chain ip nat postrouting { type nat hook postrouting priority srcnat; policy accept; }'",
    )
    (needed,) = boot.needed_when
    assert needed.cli is not None
    call = render_call(LINUX, needed.cli, CTX, where="bootstrap.neededWhen[0].cli")
    assert isinstance(call, CliCommands)
    assert call.commands == (
        "nft list chain inet filter forward",
        "nft list chain ip nat prerouting",
        "nft list chain ip nat postrouting",
    )


def test_haproxy_renders() -> None:
    m1 = _item(HAPROXY, "lb_pool_members", MEMBERS_DESIRED[0])
    sock = "socat stdio unix-connect:/run/haproxy/admin.sock"
    assert _commands(HAPROXY, "lb_pool_members", "create", CTX.for_item(m1)) == [
        f'echo "add server be_pool/m1 10.66.2.2:8080 weight 3" | {sock}',
        f'echo "enable server be_pool/m1" | {sock}',
    ]
    m2 = _item(HAPROXY, "lb_pool_members", MEMBERS_DESIRED[1])
    assert _commands(HAPROXY, "lb_pool_members", "create", CTX.for_item(m2)) == [
        f'echo "add server be_pool/m2 10.66.2.3:8080 weight 1" | {sock}'
    ]
    assert _commands(HAPROXY, "lb_pool_members", "update", CTX.for_item(m2, actual=m2)) == [
        f'echo "set server be_pool/m2 addr 10.66.2.3 port 8080" | {sock}',
        f'echo "set server be_pool/m2 weight 1" | {sock}',
        f'echo "set server be_pool/m2 state maint" | {sock}',
    ]
    delete = _commands(HAPROXY, "lb_pool_members", "delete", CTX.for_item(None, actual=m2))
    assert delete[:2] == [
        f'echo "set server be_pool/m2 state maint" | {sock}',
        f'echo "shutdown sessions server be_pool/m2" | {sock}',
    ]
    assert f'out=$(echo "del server be_pool/m2" | {sock})' in delete[2]
    other = CTX.replace(
        appliance=ApplianceInfo(name="lb1", vars={"runtime_socket": "/var/lib/haproxy/stats"}), item=m1
    )
    assert _commands(HAPROXY, "lb_pool_members", "create", other)[0].endswith(
        "| socat stdio unix-connect:/var/lib/haproxy/stats"
    )


# ------------------------------------------------------------------------------------------ injection


@pytest.mark.parametrize(
    "name",
    ["a' >/tmp/x '", "a b", 'a"b', "a$HOME", "a;b", "a\nb", "a`id`", "-rf", ""],
)
def test_firewall_names_that_could_escape_the_shell_are_refused(name: str) -> None:
    with pytest.raises(ItemValidationError):
        validate_item(LINUX.dictionary.services["firewall_rules"], {"name": name}, where="item")


@pytest.mark.parametrize("text", ["it's", "a  b", " a", 'say "hi"', "$(id)", "a|b", "tab\there"])
def test_bgp_descriptions_that_could_escape_are_refused(text: str) -> None:
    svc = LINUX.dictionary.services["bgp_neighbors"]
    with pytest.raises(ItemValidationError):
        validate_item(svc, {"address": "10.0.0.1", "remote_as": 1, "description": text}, where="item")


def test_unvalidated_values_are_still_refused_by_the_renderer() -> None:
    # The engine validates first; the CLI rules are the second line of defence.
    bad = {"name": "x", "in_interface": "eth0'; reboot; '", "protocol": "tcp", "port": 80,
           "destination": "any", "to_address": "10.0.0.1"}  # fmt: skip
    with pytest.raises((InjectionError, TemplateError)):
        render_operation(LINUX, "port_forwards", "create", CTX.for_item(bad))
    peer = {"address": "10.0.0.1", "remote_as": 1, "description": "a;b"}
    with pytest.raises((InjectionError, TemplateError)):
        render_operation(LINUX, "bgp_neighbors", "create", CTX.for_item(peer))


# ------------------------------------------------------------------------------------------ parsing


def test_forward_chain_is_parsed() -> None:
    parsed = _parse(LINUX, "firewall_rules", "list", FORWARD)
    assert parsed.ok
    assert parsed.items == [
        {
            "handle": "15",
            "name": "vnf:edge/r1: block-ssh",
            "action": "drop",
            "destination_port": "22",
            "protocol": "tcp",
            "source": "10.66.1.0/24",
            "destination": "10.66.2.2/32",
        },
        {
            "handle": "16",
            "name": "vnf:edge/r1: web-range",
            "action": "accept",
            "destination_port": "8000-8080",
            "protocol": "tcp",
        },
        {
            "handle": "17",
            "name": "vnf:edge/r1: v6-icmp",
            "action": "accept",
            "protocol": "icmp",
            "source": "2001:db8::/32",
        },
        {
            "handle": "18",
            "name": "vnf:edge/r1: reject-udp",
            "action": "reject",
            "protocol": "udp",
            "destination": "10.66.2.0/24",
        },
        {"handle": "19", "action": "accept", "protocol": "any", "unparsed": "ct state established,related"},
    ]


@pytest.mark.parametrize(
    ("service", "desired", "listed"),
    [
        ("firewall_rules", FORWARD_DESIRED, FORWARD),
        ("port_forwards", PREROUTING_DESIRED, PREROUTING),
        ("source_nat", POSTROUTING_DESIRED, POSTROUTING),
        ("static_routes", STATIC_DESIRED, STATICD),
        ("bgp_neighbors", NEIGHBORS_DESIRED, BGPD),
        ("bgp_networks", [{"prefix": "10.66.1.0/24"}], BGPD),
    ],
)
def test_what_the_device_shows_matches_what_was_rendered(
    service: str, desired: list[dict[str, Any]], listed: str
) -> None:
    """No perpetual drift: the listing of rendered items compares equal to the spec."""
    plan = _plan(LINUX, service, desired, listed)
    assert plan.is_empty, plan.summary()


def test_hand_edits_of_owned_items_are_drift() -> None:
    edited = FORWARD.replace(
        "ip saddr 10.66.1.0/24 ip daddr 10.66.2.2 tcp dport 22",
        'iifname "lo" ip saddr 10.66.1.0/24 ip daddr 10.66.2.2 tcp dport 22',
    ).replace("tcp dport 8000-8080", "tcp dport 8000-8081")
    plan = _plan(LINUX, "firewall_rules", FORWARD_DESIRED, edited)
    changed = {u.key: sorted(c.field for c in u.changed_fields) for u in plan.updates}
    assert changed[("block-ssh",)] == ["destination", "destination_port", "protocol", "source", "unparsed"]
    assert changed[("web-range",)] == ["destination_port"]
    assert not plan.creates and not plan.deletes

    routes = STATICD.replace("10.66.9.9 50", "10.66.9.9 tag 7 50")
    plan = _plan(LINUX, "static_routes", STATIC_DESIRED, routes)
    assert [[c.field for c in u.changed_fields] for u in plan.updates] == [["unparsed"]]


def test_reorder_is_one_move_and_unowned_rules_stay() -> None:
    plan = _plan(LINUX, "firewall_rules", [FORWARD_DESIRED[i] for i in (1, 0, 2, 3)], FORWARD)
    assert (len(plan.moves), len(plan.creates), len(plan.deletes), len(plan.updates)) == (1, 0, 0, 0)
    assert [u.actual.get("unparsed") for u in plan.unmanaged] == ["ct state established,related"]
    plan = _plan(LINUX, "firewall_rules", FORWARD_DESIRED[:1], FORWARD)
    assert sorted(d.device_id for d in plan.deletes if d.device_id is not None) == ["16", "17", "18"]


def test_frr_listings_are_parsed() -> None:
    assert _parse(LINUX, "static_routes", "list", STATICD).items == [
        {"prefix": "10.77.0.0/16", "nexthop": "10.66.2.2", "distance": 1},
        {"prefix": "10.78.0.0/16", "nexthop": "10.66.9.9", "distance": 50},
    ]
    assert _parse(LINUX, "bgp_neighbors", "list", BGPD).items == [
        {"address": "10.66.3.2", "description": "vnf:edge/r1: lab peer", "remote_as": 65002},
        {"address": "10.66.3.9", "description": "vnf:edge/r1:", "remote_as": 65009},
        {"address": "10.66.3.20", "description": "", "remote_as": "external"},
    ]
    assert _parse(LINUX, "bgp_networks", "list", BGPD).items == [{"prefix": "10.66.1.0/24"}]
    empty = _FRR_HEAD + "end\n"
    for service in ("static_routes", "bgp_neighbors", "bgp_networks"):
        assert _parse(LINUX, service, "list", empty).items == []


def test_frr_and_nft_errors_fail_the_operation() -> None:
    for text in ("% Unknown command: ip rout 10.0.0.0/8", "% Can not configure the local system as neighbor"):
        parsed = _parse(LINUX, "static_routes", "create", text)
        assert not parsed.ok and parsed.error == text
    # FRR's answer to removing a route that is already gone is not an error.
    assert _parse(LINUX, "static_routes", "delete", "% Refusing to remove a non-existent route").ok


def test_haproxy_servers_state_is_parsed() -> None:
    parsed = _parse(HAPROXY, "lb_pool_members", "list", SERVERS_STATE)
    assert parsed.items == [
        {"backend": "be_web", "name": "backend-1", "address": "10.66.2.2", "port": 8080, "weight": 1, "enabled": True},
        {"backend": "be_web", "name": "backend-2", "address": "10.66.2.3", "port": 8080, "weight": 1, "enabled": True},
        {"backend": "be_pool", "name": "m1", "address": "10.66.2.2", "port": 8080, "weight": 3, "enabled": True},
        {"backend": "be_pool", "name": "m2", "address": "10.66.2.3", "port": 8080, "weight": 1, "enabled": False},
    ]  # fmt: skip
    svc = HAPROXY.dictionary.services["lb_pool_members"]
    rules = comparison_rules(svc, "lb_pool_members")
    wanted = [validate_item(svc, d, where="item") for d in MEMBERS_DESIRED]
    keys = [("be_pool", "m1"), ("be_pool", "m2")]
    plan = diff.plan(wanted, parsed.items, rules, Policy.REPLACED, managed_keys=keys)
    assert plan.is_empty and len(plan.unmanaged) == 2


def test_monitoring_answers_are_parsed() -> None:
    summary = """\
BGP router identifier 10.66.250.2, local AS number 65001 vrf-id 0
BGP table version 1
RIB entries 1, using 192 bytes of memory
Peers 2, using 1448 KiB of memory

Neighbor        V         AS   MsgRcvd   MsgSent   TblVer  InQ OutQ  Up/Down State/PfxRcd   PfxSnt Desc
10.66.3.2       4      65002         4         5        0    0    0 00:00:03            1        1 vnf:a/b: lab peer
10.66.3.9       4      65009         0         0        0    0    0    never      Connect        0 N/A

Total number of neighbors 2
"""
    rows = _parse(LINUX, "monitoring", "bgp_summary", summary).items
    assert [(r["neighbor"], r["remote_as"], r["up_down"], r["state_or_prefixes"]) for r in rows] == [
        ("10.66.3.2", "65002", "00:00:03", "1"),
        ("10.66.3.9", "65009", "never", "Connect"),
    ]
    routes = """\
default via 10.66.3.2 dev peer0 proto static metric 20
10.66.1.0/24 dev front0 proto kernel scope link src 10.66.1.1
10.66.200.0/24 nhid 18 via 10.66.3.2 dev peer0 proto bgp metric 20
"""
    assert _parse(LINUX, "monitoring", "routes", routes).items == [
        {"destination": "default", "gateway": "10.66.3.2", "dev": "peer0", "protocol": "static"},
        {"destination": "10.66.1.0/24", "dev": "front0", "protocol": "kernel"},
        {"destination": "10.66.200.0/24", "gateway": "10.66.3.2", "dev": "peer0", "protocol": "bgp"},
    ]


@pytest.mark.parametrize(
    "answer",
    [
        "Already exists a server with the same name in backend.",
        "No such server.",
        "No such backend.",
        "Absolute weight can only be between 0 and 256 inclusive.",
        "Unknown command, but maybe one of the following ones is a better match:",
        "unknown keyword 'foo'; did you mean 'tfo' maybe ?",
        "Server still has connections attached to it, cannot remove it.",
        'socat[123] E connect(5, AF=1 "/run/haproxy/admin.sock", 25): No such file or directory',
    ],
)
def test_haproxy_error_answers_fail_the_operation(answer: str) -> None:
    parsed = _parse(HAPROXY, "lb_pool_members", "update", answer + "\n")
    assert not parsed.ok and parsed.error == answer


def test_haproxy_normal_answers_are_not_errors() -> None:
    info = "Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPoolFailed: 0\nFailedResolutions: 0\nDroppedLogs: 0\n"
    assert _parse(HAPROXY, "monitoring", "server_stats", info).ok
    assert _parse(HAPROXY, "lb_pool_members", "list", SERVERS_STATE).ok
    change = (
        "IP changed from '10.66.2.3' to '10.66.2.2', no need to change the port by 'stats socket command'"
    )
    assert _parse(HAPROXY, "lb_pool_members", "update", change).ok
    assert not _parse(HAPROXY, "lb_pool_members", "create", "\n").ok  # `add server` said nothing
