"""A real, local Kubernetes control plane for tests: etcd and kube-apiserver as subprocesses.

Like controller-runtime's envtest there is no kubelet and no controller-manager: objects are stored,
validated (schemas, CEL, RBAC, admission) and watched, but no pod ever runs, nothing is garbage
collected and namespaces never finish terminating.

Everything lives in a state directory: the PKI, etcd's data, logs, pid files, `controlplane.json`
(ports and server URL) and `admin.kubeconfig`. Binaries come from `$VNF_CONTROLPLANE_BIN` or from
`hack/controlplane/build.sh`, which builds them from Go modules once and caches them.

    python -m vnf_operator.testing.controlplane up|down|status --state-dir DIR
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vnf_operator.core.errors import VnfError

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "controlplane" / "build.sh"
BINARIES = ("etcd", "kube-apiserver", "kubectl")
LOOPBACK = "127.0.0.1"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "vnf-local"
# Components are stopped in this order: the apiserver first, so it never sees its storage vanish.
COMPONENTS = ("kube-apiserver", "etcd")
START_ATTEMPTS = 3


class ControlPlaneError(VnfError):
    """The local control plane could not be built, started, reached or stopped."""


class _ExitedEarly(ControlPlaneError):
    """A component exited during start-up."""


class Kubectl(Protocol):
    """A callable running kubectl against one cluster with one identity."""

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]: ...


# --------------------------------------------------------------------------------------------------
# Binaries


def find_binaries() -> Path:
    """The directory holding etcd, kube-apiserver and kubectl, building them on first use."""
    override = os.environ.get("VNF_CONTROLPLANE_BIN")
    if override:
        directory = Path(override)
        _require_binaries(directory, source="VNF_CONTROLPLANE_BIN")
        return directory
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneError(
            f"{BUILD_SCRIPT} not found (installed without the source tree?): "
            "set VNF_CONTROLPLANE_BIN to a directory holding etcd, kube-apiserver and kubectl"
        )
    # The script's progress goes to our stderr; its stdout is only the cache directory.
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False, timeout=3600
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    directory = Path(lines[-1])
    _require_binaries(directory, source=str(BUILD_SCRIPT))
    return directory


def _require_binaries(directory: Path, *, source: str) -> None:
    missing = [name for name in BINARIES if not os.access(directory / name, os.X_OK)]
    if missing:
        raise ControlPlaneError(f"{source}: {directory} lacks executable {', '.join(missing)}")


# --------------------------------------------------------------------------------------------------
# PKI


@dataclass(frozen=True)
class Pki:
    """Paths of the generated certificates and keys (PEM)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def sa_public_key(self) -> Path:
        return self.directory / "sa.pub"

    @property
    def sa_private_key(self) -> Path:
        return self.directory / "sa.key"

    def all_files(self) -> tuple[Path, ...]:
        return (
            self.ca_cert,
            self.ca_key,
            self.serving_cert,
            self.serving_key,
            self.admin_cert,
            self.admin_key,
            self.sa_public_key,
            self.sa_private_key,
        )


def ensure_pki(directory: Path) -> Pki:
    """Generate the CA, serving, admin and service-account keys once per state directory."""
    pki = Pki(directory)
    if all(path.is_file() for path in pki.all_files()):
        return pki
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vnf-operator-local-ca")])
    ca_cert = (
        _certificate_builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_names: list[x509.GeneralName] = [
        x509.DNSName(name)
        for name in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    # 10.0.0.1 is the "kubernetes" Service IP of SERVICE_CLUSTER_IP_RANGE.
    serving_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (LOOPBACK, "::1", "10.0.0.1")]
    _write_leaf(
        pki.serving_cert,
        pki.serving_key,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        ca_cert,
        ca_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        serving_names,
    )
    _write_leaf(
        pki.admin_cert,
        pki.admin_key,
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
            ]
        ),
        ca_cert,
        ca_key,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [],
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    _write_private(pki.sa_private_key, sa_key)
    pki.sa_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    _write_private(pki.ca_key, ca_key)
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return pki


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Backdated a little so a clock that lags by seconds does not reject a fresh certificate.
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )


def _write_leaf(
    cert_path: Path,
    key_path: Path,
    subject: x509.Name,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName],
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _certificate_builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    _write_private(key_path, key)
    cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_secret_file(path, pem)


def _write_secret_file(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


# --------------------------------------------------------------------------------------------------
# Processes


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports free right now (held together so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _process_state(pid: int) -> str | None:
    """The /proc state letter of `pid`, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces; the state follows the last ')'.
    return stat.rsplit(")", 1)[1].split()[0]


def _is_alive(pid: int) -> bool:
    # A zombie has exited; it only waits for a parent (possibly a non-reaping PID 1) to collect it.
    return _process_state(pid) not in (None, "Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _die_with_parent_hook() -> Callable[[], None]:
    """A preexec_fn making the child receive SIGKILL when the thread that started it exits.

    Backs up the explicit stop() so a test session killed with SIGKILL leaves nothing running. SIGKILL,
    not SIGTERM: a bereaved kube-apiserver otherwise spends many seconds shutting down gracefully, and
    a test plane's data is disposable.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return hook


@dataclass
class _Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int


class ControlPlane:
    """etcd + kube-apiserver on loopback, with an admin kubeconfig.

    `die_with_parent=True` (for test fixtures) ties the processes' life to the calling thread; leave
    it False for a control plane that must outlive this process (the CLI's `up`).
    """

    def __init__(
        self,
        state_dir: Path | str,
        *,
        binaries: Path | None = None,
        die_with_parent: bool = False,
        start_timeout: float = 120.0,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self._binaries = binaries
        self._die_with_parent = die_with_parent
        self._start_timeout = start_timeout
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._ports: _Ports | None = None

    # ---- paths and properties

    @property
    def binaries(self) -> Path:
        if self._binaries is None:
            self._binaries = find_binaries()
        return self._binaries

    @property
    def pki(self) -> Pki:
        return Pki(self.state_dir / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        ports = self._ports or self._recorded_ports()
        if ports is None:
            raise ControlPlaneError(f"control plane in {self.state_dir} was never started")
        return f"https://{LOOPBACK}:{ports.apiserver}"

    def log_file(self, component: str) -> Path:
        return self.state_dir / f"{component}.log"

    def _pid_file(self, component: str) -> Path:
        return self.state_dir / f"{component}.pid"

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "controlplane.json"

    # ---- lifecycle

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start etcd and kube-apiserver and wait until /readyz answers; idempotent when healthy."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.is_running() and self.is_ready():
            self._ports = self._recorded_ports()
            return self
        self.stop()  # stale processes of a crashed run, or half a control plane
        binaries = self.binaries
        pki = ensure_pki(self.state_dir / "pki")
        for attempt in range(1, START_ATTEMPTS + 1):
            self._ports = self._choose_ports() if attempt == 1 else _Ports(*free_ports(3))
            self._record_state(binaries)
            try:
                self._spawn("etcd", self._etcd_args(binaries / "etcd"))
                self._wait_for("etcd", self._etcd_is_healthy)
                self._spawn("kube-apiserver", self._apiserver_args(binaries / "kube-apiserver", pki))
                self._wait_for("kube-apiserver", self.is_ready)
                break
            except _ExitedEarly:
                # Most likely another process took a port between choosing and binding it: new ports.
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
        self._write_admin_kubeconfig(pki)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop both components (ours or recorded in the pid files) and leave no process behind."""
        for component in COMPONENTS:
            child = self._children.pop(component, None)
            pid = child.pid if child is not None else self._recorded_pid(component)
            if pid is not None:
                self._terminate(component, pid, timeout)
                if child is not None:
                    child.wait()  # reap our own child so it does not linger as a zombie
            self._pid_file(component).unlink(missing_ok=True)

    def restart(self, component: str, while_down: Callable[[], None] | None = None) -> None:
        """SIGKILL one component, run `while_down()`, and start it again on the same port (fault
        tests: etcd keeps its data on disk, kube-apiserver its state in etcd)."""
        if component not in COMPONENTS:
            raise ControlPlaneError(f"no component {component!r} (known: {', '.join(COMPONENTS)})")
        pid = self.running_pids().get(component)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        child = self._children.pop(component, None)
        if child is not None:
            child.wait(30)
        try:
            if while_down is not None:
                while_down()
        finally:
            binaries = self.binaries
            if component == "etcd":
                self._spawn("etcd", self._etcd_args(binaries / "etcd"))
                self._wait_for("etcd", self._etcd_is_healthy)
            else:
                self._spawn(component, self._apiserver_args(binaries / "kube-apiserver", self.pki))
            self._wait_for("kube-apiserver", self.is_ready)

    def is_running(self) -> bool:
        return all(self.running_pids().get(component) for component in COMPONENTS)

    def is_ready(self) -> bool:
        """Whether kube-apiserver answers /readyz with ok, authenticated as admin."""
        if not self.pki.ca_cert.is_file():
            return False
        try:
            url = f"{self.server}/readyz"
        except ControlPlaneError:
            return False
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return _http_ok(url, context)

    # ---- kubectl

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl with the admin (or the given) kubeconfig.

        On failure with `check`, raises ControlPlaneError with kubectl's stderr; `input` (which may be
        a Secret manifest) is never part of the message.
        """
        config = kubeconfig or self.kubeconfig
        # A discovery cache per state dir: ~/.kube/cache is keyed by host:port, and ports get reused by
        # later control planes with other CRDs.
        command = [
            str(self.binaries / "kubectl"),
            f"--kubeconfig={config}",
            f"--cache-dir={self._discovery_cache}",
            *args,
        ]
        env = {**os.environ, "KUBECONFIG": str(config)}
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed with exit code {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def reset_discovery_cache(self) -> None:
        """Forget cached API discovery, e.g. after installing CRDs (kubectl's categories come from it)."""
        shutil.rmtree(self._discovery_cache, ignore_errors=True)

    @property
    def _discovery_cache(self) -> Path:
        return self.state_dir / "kubectl-cache"

    def kubectl_as(self, kubeconfig: Path) -> Kubectl:
        """A kubectl callable bound to another identity's kubeconfig."""

        def run(
            *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
        ) -> subprocess.CompletedProcess[str]:
            return self.kubectl(*args, input=input, check=check, timeout=timeout, kubeconfig=kubeconfig)

        return run

    def service_account_kubeconfig(
        self, namespace: str, name: str, path: Path | str, *, duration: str = "1h"
    ) -> Path:
        """Write a kubeconfig that authenticates only with a TokenRequest token of the ServiceAccount."""
        result = self.kubectl("create", "token", name, f"--namespace={namespace}", f"--duration={duration}")
        token = result.stdout.strip()
        if not token:
            raise ControlPlaneError(f"TokenRequest for serviceaccount {namespace}/{name} returned no token")
        target = Path(path)
        user = f"system:serviceaccount:{namespace}:{name}"
        config = _kubeconfig_document(
            self.server, self.pki.ca_cert.read_bytes(), user, {"token": token}, namespace=namespace
        )
        _write_secret_file(target, yaml.safe_dump(config, sort_keys=False).encode())
        return target

    # ---- internals

    def _choose_ports(self) -> _Ports:
        # Reuse the recorded ports when they are free: etcd keeps its peer URL in its data dir.
        recorded = self._recorded_ports()
        if recorded is not None and all(
            _port_is_free(port) for port in (recorded.etcd_client, recorded.etcd_peer, recorded.apiserver)
        ):
            return recorded
        return _Ports(*free_ports(3))

    def _record_state(self, binaries: Path) -> None:
        assert self._ports is not None
        state = {
            "binaries": str(binaries),
            "ports": {
                "etcdClient": self._ports.etcd_client,
                "etcdPeer": self._ports.etcd_peer,
                "apiserver": self._ports.apiserver,
            },
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
        }
        self._state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _recorded_ports(self) -> _Ports | None:
        try:
            ports = json.loads(self._state_file.read_text())["ports"]
            return _Ports(
                etcd_client=int(ports["etcdClient"]),
                etcd_peer=int(ports["etcdPeer"]),
                apiserver=int(ports["apiserver"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _etcd_args(self, etcd: Path) -> list[str]:
        assert self._ports is not None
        client = f"http://{LOOPBACK}:{self._ports.etcd_client}"
        peer = f"http://{LOOPBACK}:{self._ports.etcd_peer}"
        return [
            str(etcd),
            "--name=vnf-local",
            f"--data-dir={self.state_dir / 'etcd-data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=vnf-local={peer}",
            # Test data is disposable; skipping fsync makes every write (and so every test) faster.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_args(self, apiserver: Path, pki: Pki) -> list[str]:
        assert self._ports is not None
        return [
            str(apiserver),
            f"--etcd-servers=http://{LOOPBACK}:{self._ports.etcd_client}",
            f"--cert-dir={pki.directory}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--secure-port={self._ports.apiserver}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            # No controller-manager creates default ServiceAccounts, so pods must not require one.
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            # The "kubernetes" Endpoints would point at 127.0.0.1, which Endpoints validation rejects.
            "--endpoint-reconciler-type=none",
            # Fewer background goroutines on a small machine; nothing here needs fairness queues.
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]

    def _spawn(self, component: str, args: Sequence[str]) -> None:
        log: IO[bytes]
        with self.log_file(component).open("ab") as log:
            log.write(f"\n=== {dt.datetime.now(dt.UTC).isoformat()} starting {component}\n".encode())
            log.flush()
            child = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,  # Ctrl-C in the caller's terminal must not kill a detached plane
                preexec_fn=_die_with_parent_hook() if self._die_with_parent else None,
            )
        self._children[component] = child
        self._pid_file(component).write_text(f"{child.pid}\n")

    def _wait_for(self, component: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self._start_timeout
        child = self._children[component]
        delay = 0.05
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise _ExitedEarly(
                    f"{component} exited with code {child.returncode} during start-up; "
                    f"last log lines:\n{self._log_tail(component)}"
                )
            if ready():
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        raise ControlPlaneError(
            f"{component} not ready after {self._start_timeout:.0f}s; "
            f"last log lines:\n{self._log_tail(component)}"
        )

    def _log_tail(self, component: str, lines: int = 20) -> str:
        try:
            text = self.log_file(component).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _etcd_is_healthy(self) -> bool:
        assert self._ports is not None
        return _http_ok(f"http://{LOOPBACK}:{self._ports.etcd_client}/health", None, expect='"health":"true"')

    def _write_admin_kubeconfig(self, pki: Pki) -> None:
        user = {
            "client-certificate-data": _b64(pki.admin_cert.read_bytes()),
            "client-key-data": _b64(pki.admin_key.read_bytes()),
        }
        config = _kubeconfig_document(self.server, pki.ca_cert.read_bytes(), "admin", user)
        _write_secret_file(self.kubeconfig, yaml.safe_dump(config, sort_keys=False).encode())

    def _recorded_pid(self, component: str) -> int | None:
        """The pid in the pid file, if that process is still ours (pids get reused)."""
        try:
            pid = int(self._pid_file(component).read_text().strip())
        except (OSError, ValueError):
            return None
        argv = _cmdline(pid)
        inside = f"{self.state_dir}/"  # with the slash, /tmp/cp1 does not claim /tmp/cp10's processes
        belongs = bool(argv) and Path(argv[0]).name == component and any(inside in arg for arg in argv)
        return pid if belongs and _is_alive(pid) else None

    def running_pids(self) -> dict[str, int]:
        pids = {}
        for component in COMPONENTS:
            child = self._children.get(component)
            pid = child.pid if child is not None and child.poll() is None else self._recorded_pid(component)
            if pid is not None:
                pids[component] = pid
        return pids

    @staticmethod
    def _terminate(component: str, pid: int, timeout: float) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _is_alive(pid):
                    return
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
                time.sleep(0.05)
        if _is_alive(pid):
            raise ControlPlaneError(f"{component} (pid {pid}) survived SIGKILL")


def _http_ok(url: str, context: ssl.SSLContext | None, expect: str = "ok") -> bool:
    # No proxy: HTTP(S)_PROXY from the environment must never see loopback test traffic.
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=2) as response:
            return response.status == 200 and expect in response.read().decode(errors="replace")
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kubeconfig_document(
    server: str, ca_pem: bytes, user_name: str, user: dict[str, str], *, namespace: str = "default"
) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user_name, "user": user}],
        "contexts": [
            {
                "name": CLUSTER_NAME,
                "context": {"cluster": CLUSTER_NAME, "user": user_name, "namespace": namespace},
            }
        ],
        "current-context": CLUSTER_NAME,
    }


# --------------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vnf_operator.testing.controlplane",
        description="Run a local etcd + kube-apiserver (no kubelet, no controller-manager).",
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", required=True, type=Path, help="PKI, data, logs, pids and kubeconfig")
    parser.add_argument("--fresh", action="store_true", help="up: discard etcd data from earlier runs")
    args = parser.parse_args(argv)
    plane = ControlPlane(args.state_dir)
    try:
        return _COMMANDS[args.command](plane, args)
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _up(plane: ControlPlane, args: argparse.Namespace) -> int:
    if args.fresh:
        plane.stop()
        shutil.rmtree(plane.state_dir / "etcd-data", ignore_errors=True)
    started = time.monotonic()
    was_ready = plane.is_running() and plane.is_ready()
    plane.start()
    verb = "already running" if was_ready else f"started in {time.monotonic() - started:.1f}s"
    print(f"control plane {verb}: {plane.server}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def _down(plane: ControlPlane, args: argparse.Namespace) -> int:
    plane.stop()
    print(f"control plane in {plane.state_dir} stopped")
    return 0


def _status(plane: ControlPlane, args: argparse.Namespace) -> int:
    pids = plane.running_pids()
    for component in COMPONENTS:
        pid = pids.get(component)
        print(f"{component}: {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    ready = bool(pids) and plane.is_ready()
    if ready:
        print(f"server: {plane.server} (ready)")
        print(f"kubeconfig: {plane.kubeconfig}")
    return 0 if ready and len(pids) == len(COMPONENTS) else 3


_COMMANDS: dict[str, Callable[[ControlPlane, argparse.Namespace], int]] = {
    "up": _up,
    "down": _down,
    "status": _status,
}


if __name__ == "__main__":
    sys.exit(main())
