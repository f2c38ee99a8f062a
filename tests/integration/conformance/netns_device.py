"""The conformance suite's real device: the Linux router lab (OpenSSH, nftables, FRR, HAProxy in a
network namespace; vnf_operator.testing.netns) standing where a simulator stands for other cases.

A case file with `lab:` instead of `simulator:` names what to reset before each test (the router is
shared by the tests of a session) and what a factory-fresh router lacks:

```yaml
lab:
  reset: [nftables, frr, haproxy]      # ROUTER_RESETS, run before every test
  factory: ["nft flush ruleset"]       # shell lines run in the router for the bootstrap test
credentials:
  username: {lab: ssh_user}            # a LinuxRouterLab attribute
  private_key: {lab: ssh_private_key}
```

Ground truth is what the router's own tools say (`router_state`): `nft -j list ruleset`, FRR's
running configuration and HAProxy's `show servers state`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vnf_operator.testing.netns import LabConfig, LinuxRouterLab

#: One lab for the conformance cases: no BGP peer (the cases configure, they do not exchange routes).
CONFORMANCE_LAB = LabConfig(with_peer=False, backend_count=2)
#: The HAProxy backend the haproxy-runtime case fills with dynamic servers.
POOL_BACKEND = "be_conformance"
POOL_PORT = 8089


def _reset_frr(lab: LinuxRouterLab) -> None:
    """Remove what the FRR services write: BGP (`router bgp`) and static routes."""
    config = lab.vtysh("router", "show running-config")
    commands = ["configure terminal"]
    commands += [f"no {line.strip()}" for line in config.splitlines() if line.startswith("router bgp ")]
    commands += [f"no {line.strip()}" for line in config.splitlines() if line.startswith("ip route ")]
    if len(commands) > 1:
        lab.vtysh("router", *commands)


def _reset_haproxy(lab: LinuxRouterLab) -> None:
    """HAProxy with only an empty roundrobin backend (a reload forgets dynamic servers)."""
    head = lab.haproxy_config_path.read_text().split("\nfrontend ", 1)[0].split("\nbackend ", 1)[0]
    wanted = (
        f"{head}\nfrontend fe_conformance\n    bind {lab.front_address}:{POOL_PORT}\n"
        f"    default_backend {POOL_BACKEND}\n\nbackend {POOL_BACKEND}\n    balance roundrobin\n"
    )
    lab.haproxy_config_path.write_text(wanted)
    lab.haproxy_reload()


ROUTER_RESETS: Mapping[str, Callable[[LinuxRouterLab], None]] = {
    "nftables": LinuxRouterLab.reset_nftables,
    "frr": _reset_frr,
    "haproxy": _reset_haproxy,
}

_SERVER_STATE = re.compile(
    r"^\d+ (?P<backend>\S+) \d+ (?P<name>\S+) (?P<address>\S+) (?P<op_state>\d+) (?P<admin_state>\d+) "
    r"(?P<weight>\d+) (?:\S+ ){10}(?P<port>\d+) ",
    re.MULTILINE,
)


def router_state(lab: LinuxRouterLab) -> dict[str, Any]:
    """The router's configuration as its own tools show it."""
    servers = [m.groupdict() for m in _SERVER_STATE.finditer(lab.haproxy_runtime("show servers state"))]
    return {
        "nftables": lab.nft_ruleset_json().get("nftables", []),
        "frr": lab.vtysh("router", "show running-config").splitlines(),
        "haproxy_servers": servers,
    }


def run_lines(lab: LinuxRouterLab, lines: Sequence[str]) -> str:
    """Shell lines in the router (as root, in its namespaces), as an administrator would type them."""
    out = []
    for line in lines:
        proc = lab.run_in("router", "sh", "-c", line, check=False)
        assert proc.returncode == 0, f"{line!r} failed: {proc.stdout}{proc.stderr}"
        out.append(proc.stdout)
    return "".join(out)


async def prepare(lab: LinuxRouterLab, spec: Mapping[str, Any], *, factory: bool) -> None:
    """Reset the router for one test; for the bootstrap test, make it factory-fresh."""

    def work() -> None:
        for name in spec.get("reset") or []:
            ROUTER_RESETS[name](lab)
        if factory:
            run_lines(lab, spec.get("factory") or [])

    await asyncio.to_thread(work)


def start_lab() -> LinuxRouterLab:
    lab = LinuxRouterLab(CONFORMANCE_LAB)
    try:
        lab.start()
    except BaseException:
        lab.stop()
        raise
    return lab
