"""A Linux router VNF made of real Debian software inside network namespaces.

Topology (addresses are the `LabConfig` defaults; see docs/linux-router.md)::

    root ns: vnl<pid>m<n> 10.66.250.1/30 ───────────────┐  (operator and tests run here)
                                                        │
                                          mgmt0 10.66.250.2/30
    client ns                                router ns                          backend ns
    eth0 10.66.1.2/24 ─── front0 10.66.1.1/24         back0 10.66.2.1/24 ─── eth0 10.66.2.2, .3/24
                                          peer0 10.66.3.1/24
                                                        │
    peer ns                               eth0 10.66.3.2/24, lo 10.66.200.1/24 (announced over BGP)

The router runs OpenSSH sshd (management address only), nftables, FRR (zebra, staticd, bgpd) and
a master-worker HAProxy; the peer runs FRR (zebra, bgpd; AS 65002); the backend runs identity
servers (`linuxrouter.echo_server`). The router and the peer see a Debian-like file system
(`/etc/frr`, `/run/frr`, `/etc/haproxy`, `/run/haproxy`, `/etc/ssh`, `/etc/nftables.conf`, ...)
through bind mounts of per-lab directories in a private mount namespace held by an *anchor*
process, so plain `vtysh`, `nft`, `haproxy -c -f /etc/haproxy/haproxy.cfg` work over SSH as on a
real router. Nothing is written to the host's /etc or /run except the network namespaces
themselves (/run/netns) and a lock file (/run/lock).

Every namespace, link and daemon is torn down by `stop()`. Names carry the owner's pid
(`vnflab<pid>x<n>-<role>`, root link `vnl<pid>m<n>`, work dir `/tmp/vnflab<pid>x<n>-*`), so
`cleanup_stale()` (called by `start()`) removes what crashed runs left behind.

    python -m vnf_operator.testing.netns up        # start a lab, print its details, wait for Ctrl-C
    python -m vnf_operator.testing.netns cleanup   # remove labs of dead processes
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import fcntl
import functools
import ipaddress
import itertools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import vnf_operator
from vnf_operator.core.errors import VnfError
from vnf_operator.testing.linuxrouter import configs

T = TypeVar("T")

PREFIX: Final = "vnflab"
ROOT_LINK_PREFIX: Final = "vnl"
ROOT: Final = "root"
ROLES: Final = ("client", "router", "backend", "peer")
LOCK_FILE: Final = Path("/run/lock/vnf-operator-netns.lock")
FRR_BIN: Final = Path("/usr/lib/frr")
ROUTER_FRR_DAEMONS: Final = ("zebra", "staticd", "bgpd")
PEER_FRR_DAEMONS: Final = ("zebra", "bgpd")
REQUIRED_TOOLS: Final = (
    "ip",
    "nsenter",
    "unshare",
    "mount",
    "nft",
    "vtysh",
    "haproxy",
    "socat",
    "curl",
    "ping",
    "ssh-keygen",
    "openssl",
)
_NS_RE: Final = re.compile(rf"^{PREFIX}(\d+)x(\d+)-[a-z]+$")
_LINK_RE: Final = re.compile(rf"^{ROOT_LINK_PREFIX}(\d+)m(\d+)$")
_DIR_RE: Final = re.compile(rf"^{PREFIX}(\d+)x(\d+)-")
_HANDLE_RE: Final = re.compile(r"# handle (\d+)\s*$", re.MULTILINE)
_PROXY_VARS: Final = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
_SEQ = itertools.count()


class LabError(VnfError):
    """The Linux router lab could not be set up, driven or torn down."""


# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class LabConfig:
    """Address plan and options. The router takes the first host of every subnet."""

    client_subnet: str = "10.66.1.0/24"
    backend_subnet: str = "10.66.2.0/24"
    peer_subnet: str = "10.66.3.0/24"
    #: announced by the peer over BGP; the peer holds its first host on `lo`.
    peer_prefix: str = "10.66.200.0/24"
    #: the management /30 is the first one of this pool not used in the root namespace.
    mgmt_pool: str = "10.66.250.0/24"
    #: force a management /30 instead of picking one from `mgmt_pool`.
    mgmt_subnet: str | None = None
    with_peer: bool = True
    router_asn: int = 65001
    peer_asn: int = 65002
    backend_count: int = 2
    backend_http_port: int = 8080
    backend_tcp_port: int = 9000
    haproxy_port: int = 80
    ssh_port: int = 22
    ssh_user: str = "vnfadmin"
    startup_timeout: float = 30.0


@dataclass(frozen=True)
class Backend:
    """One identity server host in the backend namespace."""

    name: str
    address: str
    http_port: int
    tcp_port: int

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.http_port}/"


@dataclass
class _Daemon:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class _Runtime:
    """What exists only once the lab runs."""

    workdir: Path
    mgmt_root_address: str
    mgmt_address: str
    mgmt_prefixlen: int
    root_link: str
    ssh_password: str
    ssh_private_key_path: Path
    ssh_public_key: str
    ssh_host_public_key: str
    known_hosts_path: Path
    anchors: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    daemons: list[_Daemon] = field(default_factory=list)


def _host(subnet: str, index: int) -> str:
    return str(ipaddress.ip_network(subnet)[index])


def _prefixlen(subnet: str) -> int:
    return ipaddress.ip_network(subnet).prefixlen


# --------------------------------------------------------------------------------------------------
# Small process helpers


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["LC_ALL"] = "C"
    return env


def _run(
    argv: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, env=_env()
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {shlex.join(argv)}") from exc
    except OSError as exc:
        raise LabError(f"cannot run {shlex.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise LabError(f"exit {proc.returncode}: {shlex.join(argv)}\n{detail}")
    return proc


def _pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (a killed owner may await reaping)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _all_exist(paths: Sequence[Path]) -> bool:
    return all(p.exists() for p in paths)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(predicate: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy; return it. Raises `LabError` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def await_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    what: str,
    interval: float = 0.2,
) -> T:
    """`wait_until` for async code: the (blocking) predicate runs in a worker thread."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await asyncio.to_thread(predicate)
        if result:
            return result
        if loop.time() >= deadline:
            raise LabError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@contextlib.contextmanager
def _global_lock() -> Iterator[None]:
    path = LOCK_FILE if LOCK_FILE.parent.is_dir() else Path(tempfile.gettempdir()) / LOCK_FILE.name
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _list_netns() -> list[str]:
    proc = _run(["ip", "-j", "netns", "list"], check=False)
    try:
        data = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return []
    return [str(item["name"]) for item in data if isinstance(item, dict) and "name" in item]


def _kill_netns(name: str) -> None:
    """Kill every process in network namespace `name`, then delete it."""
    for _ in range(3):
        pids = [int(p) for p in _run(["ip", "netns", "pids", name], check=False).stdout.split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    _run(["ip", "netns", "delete", name], check=False)


def cleanup_stale() -> list[str]:
    """Remove namespaces, root links and work dirs of labs whose owner process is gone.

    Returns what was removed. Labs of live processes (including this one) are left alone.
    """
    removed: list[str] = []
    for name in _list_netns():
        m = _NS_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _kill_netns(name)
            removed.append(f"netns {name}")
    links = json.loads(_run(["ip", "-j", "link", "show"], check=False).stdout or "[]")
    for link in links:
        ifname = str(link.get("ifname", ""))
        m = _LINK_RE.match(ifname)
        if m and not _pid_alive(int(m.group(1))):
            _run(["ip", "link", "delete", ifname], check=False)
            removed.append(f"link {ifname}")
    tmp = Path(tempfile.gettempdir())
    for entry in tmp.iterdir():
        m = _DIR_RE.match(entry.name)
        if m and entry.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(f"dir {entry}")
    return removed


def _root_networks() -> list[ipaddress.IPv4Network]:
    data = json.loads(_run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    nets: list[ipaddress.IPv4Network] = []
    for link in data:
        for info in link.get("addr_info", []):
            with contextlib.suppress(KeyError, ValueError):
                nets.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return nets


def _pick_mgmt_subnet(pool: str) -> ipaddress.IPv4Network:
    used = _root_networks()
    for candidate in ipaddress.IPv4Network(pool).subnets(new_prefix=30):
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise LabError(f"no free /30 left in the management pool {pool}")


# --------------------------------------------------------------------------------------------------
# The lab


class LinuxRouterLab:
    """client ↔ router ↔ backend (+ BGP peer) in network namespaces, managed from the root ns.

    Use as a context manager or call `start()` / `stop()`. Methods are synchronous (they run
    short subprocesses); the `a*` variants run them in a worker thread for async tests.
    Namespaces are addressed by role (`"client"`, `"router"`, `"backend"`, `"peer"`, `"root"`)
    or by their full name.
    """

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = cfg = config or LabConfig()
        self.lab_id = f"{PREFIX}{os.getpid()}x{next(_SEQ)}"
        roles = ROLES if cfg.with_peer else ROLES[:3]
        self.namespaces: dict[str, str] = {role: f"{self.lab_id}-{role}" for role in roles}
        # router interfaces
        self.front_interface = "front0"
        self.back_interface = "back0"
        self.peer_interface = "peer0"
        self.mgmt_interface = "mgmt0"
        # addresses
        self.front_address = _host(cfg.client_subnet, 1)
        self.client_address = _host(cfg.client_subnet, 2)
        self.back_address = _host(cfg.backend_subnet, 1)
        self.backends: list[Backend] = [
            Backend(
                name=f"backend-{i + 1}",
                address=_host(cfg.backend_subnet, 2 + i),
                http_port=cfg.backend_http_port,
                tcp_port=cfg.backend_tcp_port,
            )
            for i in range(cfg.backend_count)
        ]
        self.backend_addresses = [b.address for b in self.backends]
        self.router_peer_address = _host(cfg.peer_subnet, 1)
        self.peer_address = _host(cfg.peer_subnet, 2)
        self.peer_prefix = cfg.peer_prefix
        self.peer_prefix_host = _host(cfg.peer_prefix, 1)
        self.router_asn = cfg.router_asn
        self.peer_asn = cfg.peer_asn
        self.ssh_port = cfg.ssh_port
        self.ssh_user = cfg.ssh_user
        self.haproxy_port = cfg.haproxy_port
        self.frontend_url = f"http://{self.front_address}:{cfg.haproxy_port}/"
        # paths as seen from inside the router
        self.haproxy_config_file = "/etc/haproxy/haproxy.cfg"
        self.haproxy_master_socket_in_router = "/run/haproxy/master.sock"
        self.haproxy_runtime_socket_in_router = "/run/haproxy/admin.sock"
        self.nftables_config_file = "/etc/nftables.conf"
        self.frr_config_file = "/etc/frr/frr.conf"
        self._rt: _Runtime | None = None
        self._atexit_registered = False

    # ---------------------------------------------------------------- runtime attributes

    @property
    def _runtime(self) -> _Runtime:
        if self._rt is None:
            raise LabError(f"lab {self.lab_id} is not running")
        return self._rt

    @property
    def running(self) -> bool:
        return self._rt is not None

    @property
    def workdir(self) -> Path:
        return self._runtime.workdir

    @property
    def mgmt_address(self) -> str:
        """The router's management address (sshd listens here), reachable from the root ns."""
        return self._runtime.mgmt_address

    @property
    def mgmt_root_address(self) -> str:
        """The root namespace's end of the management link."""
        return self._runtime.mgmt_root_address

    @property
    def mgmt_subnet(self) -> str:
        rt = self._runtime
        return str(ipaddress.ip_network(f"{rt.mgmt_address}/{rt.mgmt_prefixlen}", strict=False))

    @property
    def root_link(self) -> str:
        """Name of the management veth in the root namespace."""
        return self._runtime.root_link

    @property
    def ssh_password(self) -> str:
        return self._runtime.ssh_password

    @property
    def ssh_private_key_path(self) -> Path:
        """OpenSSH-format ed25519 private key authorized for `ssh_user` (mode 0600)."""
        return self._runtime.ssh_private_key_path

    @property
    def ssh_private_key(self) -> str:
        """The same private key as text (OpenSSH PEM-style armour)."""
        return self._runtime.ssh_private_key_path.read_text()

    @property
    def ssh_public_key(self) -> str:
        return self._runtime.ssh_public_key

    @property
    def ssh_host_public_key(self) -> str:
        """The router sshd's host key, `ssh-ed25519 AAAA...`."""
        return self._runtime.ssh_host_public_key

    @property
    def known_hosts_line(self) -> str:
        """A known_hosts line pinning the router's host key at `mgmt_address` (and port)."""
        host = self.mgmt_address if self.ssh_port == 22 else f"[{self.mgmt_address}]:{self.ssh_port}"
        return f"{host} {self.ssh_host_public_key}"

    @property
    def known_hosts_path(self) -> Path:
        return self._runtime.known_hosts_path

    @property
    def haproxy_config_path(self) -> Path:
        """Host path of the router's /etc/haproxy/haproxy.cfg."""
        return self._dir("router", "etc", "haproxy") / "haproxy.cfg"

    @property
    def haproxy_master_socket(self) -> Path:
        """Host path of HAProxy's master CLI socket (/run/haproxy/master.sock in the router)."""
        return self._dir("router", "run", "haproxy") / "master.sock"

    @property
    def haproxy_runtime_socket(self) -> Path:
        """Host path of HAProxy's runtime API socket (/run/haproxy/admin.sock in the router)."""
        return self._dir("router", "run", "haproxy") / "admin.sock"

    def _dir(self, role: str, *parts: str) -> Path:
        return self._runtime.workdir.joinpath(role, *parts)

    def describe(self) -> dict[str, Any]:
        """Non-secret connection details (paths to the secrets, not the secrets)."""
        return {
            "lab_id": self.lab_id,
            "namespaces": dict(self.namespaces),
            "workdir": str(self.workdir),
            "mgmt_address": self.mgmt_address,
            "mgmt_root_address": self.mgmt_root_address,
            "root_link": self.root_link,
            "ssh": {
                "port": self.ssh_port,
                "user": self.ssh_user,
                "private_key": str(self.ssh_private_key_path),
                "known_hosts": str(self.known_hosts_path),
                "password_file": str(self.workdir / "client" / "password"),
            },
            "front_address": self.front_address,
            "back_address": self.back_address,
            "client_address": self.client_address,
            "backends": [b.__dict__ for b in self.backends],
            "frontend_url": self.frontend_url,
            "peer": {
                "address": self.peer_address,
                "router_address": self.router_peer_address,
                "asn": self.peer_asn,
                "router_asn": self.router_asn,
                "prefix": self.peer_prefix,
            }
            if "peer" in self.namespaces
            else None,
        }

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> LinuxRouterLab:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LinuxRouterLab:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def start(self) -> None:
        """Create the namespaces, links and daemons; return once every service answers."""
        if self._rt is not None:
            raise LabError(f"lab {self.lab_id} is already running")
        if os.geteuid() != 0:
            raise LabError("the Linux router lab needs root (network namespaces, nft, sshd)")
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        missing += [str(p) for p in self._daemon_binaries() if not os.access(p, os.X_OK)]
        if missing:
            raise LabError(f"missing programs (run `make deps`): {', '.join(missing)}")
        workdir = Path(tempfile.mkdtemp(prefix=f"{self.lab_id}-"))
        workdir.chmod(0o711)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            with _global_lock():
                cleanup_stale()
                mgmt = (
                    ipaddress.IPv4Network(self.config.mgmt_subnet)
                    if self.config.mgmt_subnet
                    else _pick_mgmt_subnet(self.config.mgmt_pool)
                )
                seq = self.lab_id.rsplit("x", 1)[1]
                self._rt = _Runtime(
                    workdir=workdir,
                    mgmt_root_address=str(mgmt[1]),
                    mgmt_address=str(mgmt[2]),
                    mgmt_prefixlen=mgmt.prefixlen,
                    root_link=f"{ROOT_LINK_PREFIX}{os.getpid()}m{seq}",
                    ssh_password=secrets.token_urlsafe(18),
                    ssh_private_key_path=workdir / "client" / "id_ed25519",
                    ssh_public_key="",
                    ssh_host_public_key="",
                    known_hosts_path=workdir / "client" / "known_hosts",
                )
                self._create_topology()
            self._write_files()
            self._start_anchors()
            self._start_services()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every daemon, delete namespaces, links and the work dir. Idempotent."""
        rt = self._rt
        if rt is None:
            with contextlib.suppress(Exception):
                self._delete_namespaces()
            return
        procs = [d.process for d in reversed(rt.daemons)] + list(rt.anchors.values())
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + 5.0
        for proc in procs:
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2.0)
        self._delete_namespaces()
        if any(link.get("ifname") == rt.root_link for link in self._root_links()):
            _run(["ip", "link", "delete", rt.root_link], check=False)
        shutil.rmtree(rt.workdir, ignore_errors=True)
        self._rt = None
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def _delete_namespaces(self) -> None:
        existing = set(_list_netns())
        for name in self.namespaces.values():
            if name in existing:
                _kill_netns(name)

    @staticmethod
    def _root_links() -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(
            _run(["ip", "-j", "link", "show"], check=False).stdout or "[]"
        )
        return data

    def _daemon_binaries(self) -> list[Path]:
        names = set(ROUTER_FRR_DAEMONS) | set(PEER_FRR_DAEMONS)
        return [FRR_BIN / n for n in sorted(names)] + [Path("/usr/sbin/sshd")]

    # ---------------------------------------------------------------- setup steps

    def _create_topology(self) -> None:
        rt = self._runtime
        cfg = self.config
        ns = self.namespaces
        router = ns["router"]
        batch = [f"netns add {name}" for name in ns.values()]
        veth = "link add name {} netns " + router + " type veth peer name eth0 netns {}"
        batch += [
            veth.format(self.front_interface, ns["client"]),
            veth.format(self.back_interface, ns["backend"]),
            f"link add name {rt.root_link} type veth peer name {self.mgmt_interface} netns {router}",
            f"addr add {rt.mgmt_root_address}/{rt.mgmt_prefixlen} dev {rt.root_link}",
            f"link set {rt.root_link} up",
        ]
        if "peer" in ns:
            batch.append(veth.format(self.peer_interface, ns["peer"]))
        _run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")

        def setup(role: str, forward: int, commands: list[str]) -> None:
            script = [f"sysctl -q -w net.ipv4.ip_forward={forward}", "ip link set lo up", *commands]
            _run(["ip", "netns", "exec", ns[role], "/bin/sh", "-ec", "\n".join(script)])

        cl, bk, pr = cfg.client_subnet, cfg.backend_subnet, cfg.peer_subnet
        router_cmds = [
            f"ip addr add {self.front_address}/{_prefixlen(cl)} dev {self.front_interface}",
            f"ip addr add {self.back_address}/{_prefixlen(bk)} dev {self.back_interface}",
            f"ip addr add {rt.mgmt_address}/{rt.mgmt_prefixlen} dev {self.mgmt_interface}",
            f"ip link set {self.front_interface} up",
            f"ip link set {self.back_interface} up",
            f"ip link set {self.mgmt_interface} up",
        ]
        if "peer" in ns:
            router_cmds += [
                f"ip addr add {self.router_peer_address}/{_prefixlen(pr)} dev {self.peer_interface}",
                f"ip link set {self.peer_interface} up",
            ]
        setup("router", 1, router_cmds)
        setup(
            "client",
            0,
            [
                f"ip addr add {self.client_address}/{_prefixlen(cl)} dev eth0",
                "ip link set eth0 up",
                f"ip route add default via {self.front_address}",
            ],
        )
        setup(
            "backend",
            0,
            [f"ip addr add {b.address}/{_prefixlen(bk)} dev eth0" for b in self.backends]
            + ["ip link set eth0 up", f"ip route add default via {self.back_address}"],
        )
        if "peer" in ns:
            setup(
                "peer",
                0,
                [
                    f"ip addr add {self.peer_address}/{_prefixlen(pr)} dev eth0",
                    f"ip addr add {self.peer_prefix_host}/{_prefixlen(self.peer_prefix)} dev lo",
                    "ip link set eth0 up",
                    f"ip route add default via {self.router_peer_address}",
                ],
            )

    def _write_files(self) -> None:
        rt = self._runtime
        cfg = self.config
        w = rt.workdir
        for sub in ("client", "logs", "router/etc/ssh", "router/etc/frr", "router/etc/haproxy"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("router/run/frr", "router/run/haproxy", "router/home"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        (w / "client").chmod(0o700)
        # users: the host's passwd/group plus the management user (uid 0); a shadow file with
        # every other account locked, so no host password hash is copied.
        etc = w / "router" / "etc"
        home = w / "router" / "home" / cfg.ssh_user
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        home.chmod(0o700)
        user_line = f"{cfg.ssh_user}:x:0:0:vnf-operator lab admin:/home/{cfg.ssh_user}:/bin/bash\n"
        passwd = [ln for ln in Path("/etc/passwd").read_text().splitlines() if ln]
        (etc / "passwd").write_text("\n".join(passwd) + "\n" + user_line)
        shutil.copyfile("/etc/group", etc / "group")
        hashed = _run(["openssl", "passwd", "-6", "-stdin"], input=rt.ssh_password + "\n").stdout.strip()
        days = int(time.time() // 86400)
        shadow = [f"{ln.split(':', 1)[0]}:*:{days}:0:99999:7:::" for ln in passwd]
        shadow.append(f"{cfg.ssh_user}:{hashed}:{days}:0:99999:7:::")
        (etc / "shadow").write_text("\n".join(shadow) + "\n")
        (etc / "shadow").chmod(0o600)
        # ssh keys
        host_key = etc / "ssh" / "ssh_host_ed25519_key"
        for path, comment in ((host_key, "router"), (rt.ssh_private_key_path, "client")):
            _run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"{self.lab_id}-{comment}",
                    "-f",
                    str(path),
                ]
            )
        rt.ssh_host_public_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        rt.ssh_public_key = rt.ssh_private_key_path.with_suffix(".pub").read_text().strip()
        auth = home / ".ssh" / "authorized_keys"
        auth.write_text(rt.ssh_public_key + "\n")
        auth.chmod(0o600)
        rt.known_hosts_path.write_text(self.known_hosts_line + "\n")
        pw_file = w / "client" / "password"
        pw_file.write_text(rt.ssh_password + "\n")
        pw_file.chmod(0o600)
        (etc / "ssh" / "sshd_config").write_text(
            configs.sshd_config(listen=rt.mgmt_address, port=cfg.ssh_port, user=cfg.ssh_user)
        )
        (etc / "ssh" / "ssh_config").write_text("Host *\n    HashKnownHosts no\n")
        # nftables, FRR, HAProxy
        (etc / "nftables.conf").write_text(configs.NFTABLES_BASE)
        (etc / "frr" / "frr.conf").write_text(configs.frr_conf_router(hostname="router"))
        (etc / "frr" / "vtysh.conf").write_text(configs.VTYSH_CONF)
        (etc / "frr" / "daemons").write_text(configs.frr_daemons(ROUTER_FRR_DAEMONS))
        servers = [configs.HaproxyServer(b.name, b.address, b.http_port) for b in self.backends]
        self.haproxy_config_path.write_text(
            configs.haproxy_cfg(bind=self.front_address, port=cfg.haproxy_port, servers=servers)
        )
        if "peer" in self.namespaces:
            (w / "peer" / "etc" / "frr").mkdir(parents=True)
            (w / "peer" / "run" / "frr").mkdir(parents=True)
            (w / "peer" / "etc" / "frr" / "frr.conf").write_text(
                configs.frr_conf_peer(
                    hostname="peer",
                    asn=cfg.peer_asn,
                    router_id=self.peer_address,
                    neighbor=self.router_peer_address,
                    neighbor_asn=cfg.router_asn,
                    networks=[self.peer_prefix],
                )
            )
            (w / "peer" / "etc" / "frr" / "vtysh.conf").write_text(configs.VTYSH_CONF)
            (w / "peer" / "etc" / "frr" / "daemons").write_text(configs.frr_daemons(PEER_FRR_DAEMONS))
        for role in ("router", "peer"):
            run_frr = w / role / "run" / "frr"
            if run_frr.is_dir():
                shutil.chown(run_frr, "frr", "frr")

    def _start_anchors(self) -> None:
        rt = self._runtime
        w = rt.workdir
        views: dict[str, list[tuple[Path, str]]] = {
            "router": [
                (w / "router/run/frr", "/run/frr"),
                (w / "router/run/haproxy", "/run/haproxy"),
                (w / "router/etc/frr", "/etc/frr"),
                (w / "router/etc/haproxy", "/etc/haproxy"),
                (w / "router/etc/ssh", "/etc/ssh"),
                (w / "router/etc/nftables.conf", "/etc/nftables.conf"),
                (w / "router/etc/passwd", "/etc/passwd"),
                (w / "router/etc/group", "/etc/group"),
                (w / "router/etc/shadow", "/etc/shadow"),
                (w / "router/home", "/home"),
            ],
            "peer": [(w / "peer/run/frr", "/run/frr"), (w / "peer/etc/frr", "/etc/frr")],
        }
        for role, mounts in views.items():
            if role not in self.namespaces:
                continue
            ready = w / role / ".anchor-ready"
            script = configs.anchor_script(
                hostname=role, mounts=mounts, run_dirs=["/run/sshd", "/run/frr", "/run/haproxy"], ready=ready
            )
            log = w / "logs" / f"{role}-anchor.log"
            rt.anchors[role] = self._popen(
                ["ip", "netns", "exec", self.namespaces[role], "unshare", "--uts", "/bin/sh", "-c", script],
                log,
            )
            wait_until(
                functools.partial(self._anchor_ready, role, rt.anchors[role], ready, log),
                timeout=10.0,
                what=f"{role} file-system view",
                interval=0.02,
            )

    @staticmethod
    def _anchor_ready(role: str, proc: subprocess.Popen[bytes], ready: Path, log: Path) -> bool:
        if proc.poll() is not None:
            raise LabError(f"{role} namespace setup failed:\n{_tail(log)}")
        return ready.exists()

    def _start_services(self) -> None:
        rt = self._runtime
        w = rt.workdir
        timeout = self.config.startup_timeout
        self.run_in("router", "nft", "-f", self.nftables_config_file)
        frr = {
            r: d
            for r, d in (("router", ROUTER_FRR_DAEMONS), ("peer", PEER_FRR_DAEMONS))
            if r in self.namespaces
        }

        def start_frr(role: str, name: str) -> None:
            self._spawn(role, f"{role}-{name}", [str(FRR_BIN / name), "--log", "stdout", "-P", "0"])

        # zebra first: the other daemons retry a missing zserv socket only every 10 s
        for role in frr:
            start_frr(role, "zebra")
        self._spawn(
            "router",
            "router-haproxy",
            ["haproxy", "-W", "-S", f"{self.haproxy_master_socket_in_router},mode,600", "-f",
             self.haproxy_config_file],
        )  # fmt: skip
        self.run_in("router", "/usr/sbin/sshd", "-t")
        self._spawn("router", "router-sshd", ["/usr/sbin/sshd", "-D", "-e"])
        ready_file = w / "backend.ready"
        listeners = [f"--serve={b.name}=http:{b.address}:{b.http_port}" for b in self.backends]
        listeners += [f"--serve={b.name}=tcp:{b.address}:{b.tcp_port}" for b in self.backends]
        self._spawn(
            "backend",
            "backend-echo",
            [sys.executable, "-m", "vnf_operator.testing.linuxrouter.echo_server",
             f"--ready-file={ready_file}", *listeners],
        )  # fmt: skip
        # readiness
        for role, daemons in frr.items():
            zserv = w / role / "run" / "frr" / "zserv.api"
            self._wait(zserv.exists, timeout, f"zebra in {role}")
            for name in daemons[1:]:
                start_frr(role, name)
        for role, daemons in frr.items():
            sockets = [w / role / "run" / "frr" / f"{name}.vty" for name in daemons]
            self._wait(functools.partial(_all_exist, sockets), timeout, f"FRR vty sockets in {role}")
            self.run_in(role, "vtysh", "-b", timeout=timeout)
        self._wait(ready_file.exists, timeout, "backend identity servers")
        self._wait(self._haproxy_answers, timeout, "HAProxy runtime API")
        self._wait(self._sshd_answers, timeout, "sshd on the management address")

    def _spawn(self, role: str, name: str, argv: list[str]) -> None:
        rt = self._runtime
        log = rt.workdir / "logs" / f"{name}.log"
        rt.daemons.append(_Daemon(name, self._popen([*self._ns_prefix(role), *argv], log), log))

    @staticmethod
    def _popen(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        env = _env()
        pkg_root = str(Path(vnf_operator.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
        with log.open("ab") as fh:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip

    def _wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        def check() -> object:
            for daemon in self._runtime.daemons:
                if daemon.process.poll() is not None:
                    raise LabError(
                        f"{daemon.name} exited with {daemon.process.returncode} while waiting for {what}:\n"
                        f"{_tail(daemon.log)}"
                    )
            return predicate()

        try:
            wait_until(check, timeout=timeout, what=what, interval=0.05)
        except LabError as exc:
            logs = "\n".join(f"--- {d.name}\n{_tail(d.log, 5)}" for d in self._runtime.daemons)
            raise LabError(f"{exc}\n{logs}") from None

    def _haproxy_answers(self) -> bool:
        try:
            return "Name: HAProxy" in self.haproxy_runtime("show info")
        except OSError:
            return False

    def _sshd_answers(self) -> bool:
        try:
            with socket.create_connection((self.mgmt_address, self.ssh_port), timeout=1.0) as sock:
                sock.settimeout(2.0)
                return sock.recv(64).startswith(b"SSH-2.0")
        except OSError:
            return False

    # ---------------------------------------------------------------- running things

    def ns(self, name: str) -> str:
        """Full network-namespace name of a role (or of a full name), `"root"` for the root ns."""
        if name == ROOT or name in self.namespaces.values():
            return name
        try:
            return self.namespaces[name]
        except KeyError:
            raise LabError(
                f"no namespace {name!r} in lab {self.lab_id} ({', '.join(self.namespaces)})"
            ) from None

    def _ns_prefix(self, ns: str) -> list[str]:
        full = self.ns(ns)
        if full == ROOT:
            return []
        role = next(r for r, n in self.namespaces.items() if n == full)
        anchor = self._runtime.anchors.get(role)
        if anchor is not None:
            # the router and the peer: network namespace, Debian-like file-system view, host name
            return ["nsenter", "-t", str(anchor.pid), "-m", "-n", "-u", "--"]
        return ["ip", "netns", "exec", full]

    def run_in(
        self, ns: str, *argv: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in a namespace (role name, full name or "root"); text output captured."""
        return _run([*self._ns_prefix(ns), *argv], input=input, check=check, timeout=timeout)

    def tcp_connect(self, from_ns: str, address: str, port: int, timeout: float = 2.0) -> bool:
        """Whether a TCP connection from `from_ns` to address:port is established within `timeout`."""
        if self.ns(from_ns) == ROOT:
            try:
                with socket.create_connection((address, port), timeout=timeout):
                    return True
            except OSError:
                return False
        proc = self.run_in(
            from_ns,
            "socat", "-u", "OPEN:/dev/null", f"TCP:{address}:{port},connect-timeout={timeout}",
            check=False, timeout=timeout + 10.0,
        )  # fmt: skip
        return proc.returncode == 0

    def http_get(self, from_ns: str, url: str, timeout: float = 5.0) -> str:
        """GET `url` with curl from `from_ns`; the body. Raises `LabError` on failure or HTTP >= 400."""
        proc = self.run_in(
            from_ns,
            "curl", "-sS", "--noproxy", "*", "--max-time", str(timeout), "--fail-with-body", url,
            check=False, timeout=timeout + 10.0,
        )  # fmt: skip
        if proc.returncode != 0:
            raise LabError(
                f"GET {url} from {from_ns} failed (curl exit {proc.returncode}): {proc.stderr.strip()}"
            )
        return proc.stdout

    def http_get_json(self, from_ns: str, url: str, timeout: float = 5.0) -> Any:
        return json.loads(self.http_get(from_ns, url, timeout))

    def tcp_identity(self, from_ns: str, address: str, port: int, timeout: float = 5.0) -> dict[str, Any]:
        """Read the JSON line a TCP identity listener (or anything forwarded to one) sends."""
        proc = self.run_in(
            from_ns, "socat", "-u", f"TCP:{address}:{port},connect-timeout={timeout}", "STDOUT",
            timeout=timeout + 10.0,
        )  # fmt: skip
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def ping(self, from_ns: str, address: str, count: int = 1, timeout: float = 2.0) -> bool:
        proc = self.run_in(
            from_ns, "ping", "-n", "-q", "-c", str(count), "-W", str(timeout), address,
            check=False, timeout=count * timeout + 10.0,
        )  # fmt: skip
        return proc.returncode == 0

    def vtysh(self, ns: str, *commands: str, check: bool = True) -> str:
        """Run vtysh commands (one `-c` each) against the FRR of `ns` ("router" or "peer")."""
        args = [arg for cmd in commands for arg in ("-c", cmd)]
        proc = self.run_in(ns, "vtysh", *args, check=False)
        if check and proc.returncode != 0:  # vtysh exits 1 on "% Unknown command" and the like
            raise LabError(
                f"vtysh in {ns} failed (exit {proc.returncode}): {(proc.stdout + proc.stderr).strip()}"
            )
        return proc.stdout

    def vtysh_json(self, ns: str, command: str) -> Any:
        out = self.vtysh(ns, command, check=False)
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return None

    def nft(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run nft in the router, e.g. `lab.nft("-e", "-a", "add", "rule", ...)`; its stdout."""
        proc = self.run_in("router", "nft", *args, input=input, check=False)
        if check and proc.returncode != 0:
            raise LabError(f"nft {shlex.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def nft_add_rule(self, *rule: str) -> int:
        """`nft -e -a add rule <rule...>` in the router; the new rule's handle."""
        out = self.nft("-e", "-a", "add", "rule", *rule)
        m = _HANDLE_RE.search(out)
        if not m:
            raise LabError(f"nft did not echo a handle for {shlex.join(rule)}: {out!r}")
        return int(m.group(1))

    def nft_ruleset_json(self) -> dict[str, Any]:
        """`nft -j list ruleset` in the router."""
        data: dict[str, Any] = json.loads(self.nft("-j", "list", "ruleset"))
        return data

    def reset_nftables(self) -> None:
        """Restore the router's base ruleset (empty accept chains in inet filter and ip nat)."""
        self.nft("-f", "-", input=configs.NFTABLES_BASE)

    def bgp_state(self, peer_ip: str, ns: str = "router") -> str | None:
        """BGP FSM state of neighbor `peer_ip` in `ns` ("Established", "Active", ...); None if unknown."""
        data = self.vtysh_json(ns, f"show bgp neighbors {peer_ip} json")
        if not isinstance(data, dict) or peer_ip not in data:
            return None
        state = data[peer_ip].get("bgpState")
        return str(state) if state is not None else None

    def routes_in(self, ns: str, *, table: str = "main", family: str = "-4") -> list[dict[str, Any]]:
        """The kernel routes of `ns` (`ip -j route show table <table>`)."""
        proc = self.run_in(ns, "ip", "-j", family, "route", "show", "table", table)
        data: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
        return data

    def has_route(self, ns: str, prefix: str, protocol: str | None = None) -> bool:
        """Whether `prefix` (e.g. "10.66.200.0/24") is in the main table of `ns`."""
        net = ipaddress.ip_network(prefix)
        for route in self.routes_in(ns):
            dst = route.get("dst", "")
            dst = "0.0.0.0/0" if dst == "default" else dst if "/" in dst else f"{dst}/32"
            if ipaddress.ip_network(dst) == net and (protocol is None or route.get("protocol") == protocol):
                return True
        return False

    # ---------------------------------------------------------------- HAProxy

    @staticmethod
    def _unix_command(path: Path, command: str, timeout: float = 5.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(command.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)  # the master CLI answers once it sees the end of input
            chunks: list[bytes] = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def haproxy_runtime(self, command: str) -> str:
        """One command on HAProxy's runtime API (stats socket), e.g. "show servers state"."""
        return self._unix_command(self.haproxy_runtime_socket, command)

    def haproxy_master(self, command: str) -> str:
        """One command on HAProxy's master CLI, e.g. "show proc"."""
        return self._unix_command(self.haproxy_master_socket, command)

    def _haproxy_reloads(self) -> tuple[int, int] | None:
        """(reloads, failed reloads) of the master, None while the master CLI is unavailable."""
        try:
            out = self.haproxy_master("show proc")
        except OSError:
            return None
        m = re.search(r"^\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", out, re.MULTILINE)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def haproxy_check(self) -> None:
        """`haproxy -c` on the router's configuration; raises `LabError` with its output if invalid."""
        proc = self.run_in("router", "haproxy", "-c", "-f", self.haproxy_config_file, check=False)
        if proc.returncode != 0:
            raise LabError(f"invalid HAProxy configuration:\n{(proc.stdout + proc.stderr).strip()}")

    def haproxy_reload(self, timeout: float = 15.0) -> None:
        """Validate the configuration, reload through the master CLI, wait for the new worker."""
        self.haproxy_check()
        before = wait_until(self._haproxy_reloads, timeout=timeout, what="HAProxy master CLI")
        with contextlib.suppress(OSError):
            self.haproxy_master("reload")

        def reloaded() -> bool:
            now = self._haproxy_reloads()
            if now is None or now[0] <= before[0]:
                return False
            if now[1] > before[1]:
                raise LabError("HAProxy reload failed: see the router-haproxy log")
            return self._haproxy_answers()

        wait_until(reloaded, timeout=timeout, what="HAProxy reload")

    # ---------------------------------------------------------------- async variants

    # In the async variants `timeout` bounds the subprocess, as in the sync methods.
    async def arun_in(
        self,
        ns: str,
        *argv: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,  # noqa: ASYNC109
    ) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            lambda: self.run_in(ns, *argv, input=input, check=check, timeout=timeout)
        )

    async def atcp_connect(
        self,
        from_ns: str,
        address: str,
        port: int,
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> bool:
        return await asyncio.to_thread(self.tcp_connect, from_ns, address, port, timeout)

    async def ahttp_get(self, from_ns: str, url: str, timeout: float = 5.0) -> str:  # noqa: ASYNC109
        return await asyncio.to_thread(self.http_get, from_ns, url, timeout)

    async def avtysh(self, ns: str, *commands: str, check: bool = True) -> str:
        return await asyncio.to_thread(lambda: self.vtysh(ns, *commands, check=check))

    async def anft_ruleset_json(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.nft_ruleset_json)

    async def abgp_state(self, peer_ip: str, ns: str = "router") -> str | None:
        return await asyncio.to_thread(self.bgp_state, peer_ip, ns)

    async def aroutes_in(self, ns: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.routes_in, ns)

    async def ahaproxy_reload(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        await asyncio.to_thread(self.haproxy_reload, timeout)


# --------------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vnf_operator.testing.netns", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a lab, print its details as JSON, stop it on Ctrl-C/SIGTERM")
    up.add_argument("--no-peer", action="store_true", help="without the BGP peer namespace")
    sub.add_parser("cleanup", help="remove namespaces, links and dirs of labs whose process is gone")
    args = parser.parse_args(argv)
    if args.command == "cleanup":
        with _global_lock():
            for item in cleanup_stale():
                print(f"removed {item}")
        return 0
    lab = LinuxRouterLab(LabConfig(with_peer=not args.no_peer))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with lab:
        print(json.dumps(lab.describe(), indent=2), flush=True)
        print("lab running; Ctrl-C to stop", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
