"""Configuration files of the Linux router lab's daemons, rendered as text.

Paths inside the files are the Debian defaults (`/etc/frr`, `/run/haproxy`, ...): the lab's
router and peer run their daemons in a private mount namespace where those paths are bind mounts
of per-lab directories (see `vnf_operator.testing.netns`).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The nftables base ruleset of the router: Debian's default layout plus an `ip nat` table.
NFTABLES_BASE = """\
#!/usr/sbin/nft -f
# vnf-operator Linux router lab: base ruleset (chains empty, policy accept).
flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t}
}

table ip nat {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t}
}
"""

VTYSH_CONF = "service integrated-vtysh-config\n"


@dataclass(frozen=True)
class HaproxyServer:
    """One `server` line of the lab's initial HAProxy backend."""

    name: str
    address: str
    port: int


def sshd_config(*, listen: str, port: int, user: str) -> str:
    """sshd_config for the router: key and password auth for `user` only, no PAM."""
    return f"""\
# vnf-operator Linux router lab: sshd on the management address only.
Port {port}
ListenAddress {listen}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AllowUsers {user}
# {user} has uid 0 (root-equivalent inside the lab): see docs/linux-router.md.
PermitRootLogin yes
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
PermitUserEnvironment no
MaxStartups 100:30:200
MaxSessions 64
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""


def frr_daemons(enabled: Sequence[str]) -> str:
    """`/etc/frr/daemons` as Debian ships it, with the lab's daemons enabled.

    Informational only: the lab starts the daemons itself, there is no watchfrr.
    """
    known: tuple[str, ...] = (
        "bgpd",
        "ospfd",
        "ospf6d",
        "ripd",
        "ripngd",
        "isisd",
        "pimd",
        "ldpd",
        "nhrpd",
        "eigrpd",
    )
    known += ("babeld", "sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd")
    lines = [f"{name}={'yes' if name in enabled else 'no'}" for name in known]
    return "# vnf-operator Linux router lab (daemons are started by the lab, not by frrinit)\n" + (
        "\n".join(lines) + "\nvtysh_enable=yes\n"
    )


def frr_conf_router(*, hostname: str) -> str:
    """The router's boot configuration: no routing configured, the operator does that."""
    return f"""\
frr defaults traditional
hostname {hostname}
service integrated-vtysh-config
!
"""


def frr_conf_peer(
    *, hostname: str, asn: int, router_id: str, neighbor: str, neighbor_asn: int, networks: Sequence[str]
) -> str:
    """The BGP peer: eBGP towards the router, announcing `networks`, no policy required."""
    nets = "".join(f"  network {net}\n" for net in networks)
    return f"""\
frr defaults traditional
hostname {hostname}
service integrated-vtysh-config
!
router bgp {asn}
 bgp router-id {router_id}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {neighbor} remote-as {neighbor_asn}
 neighbor {neighbor} timers 3 9
 neighbor {neighbor} timers connect 2
 !
 address-family ipv4 unicast
{nets} exit-address-family
exit
!
"""


def haproxy_cfg(*, bind: str, port: int, servers: Sequence[HaproxyServer]) -> str:
    """HAProxy's initial configuration: one HTTP frontend balancing over the backends."""
    lines = "".join(f"    server {s.name} {s.address}:{s.port}\n" for s in servers)
    return f"""\
# vnf-operator Linux router lab: master-worker HAProxy, master CLI at /run/haproxy/master.sock.
global
    nbthread 1
    pidfile /run/haproxy/haproxy.pid
    stats socket /run/haproxy/admin.sock mode 600 level admin expose-fd listeners
    stats timeout 30s

defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend fe_web
    bind {bind}:{port}
    default_backend be_web

backend be_web
    balance roundrobin
{lines}"""


def anchor_script(
    *, hostname: str, mounts: Sequence[tuple[Path, str]], run_dirs: Sequence[str], ready: Path
) -> str:
    """Shell script that builds a namespace's private file-system view and host name, then idles.

    Runs under `ip netns exec` (which has already unshared the mount namespace with slave
    propagation, so nothing here is visible outside) and `unshare --uts`. A tmpfs hides the
    host's /run.
    """
    lines = ["set -e", f"hostname {shlex.quote(hostname)}"]
    lines += ["mount -t tmpfs -o mode=0755,size=16m vnflab-run /run"]
    lines += [f"mkdir -p {shlex.quote(d)}" for d in run_dirs]
    lines += [f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for src, dst in mounts]
    lines += [f": > {shlex.quote(str(ready))}", "exec sleep infinity"]
    return "\n".join(lines) + "\n"
