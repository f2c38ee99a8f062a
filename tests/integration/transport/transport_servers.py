"""Real servers on loopback for the transport tests (fixtures in conftest.py).

- OpenSSH `sshd` processes on high ports, each with its own config, host key, authorized_keys and
  log. They run in a private mount namespace (`unshare --mount`) where /etc/passwd and /etc/shadow
  are bind-mounted copies with one extra test user (uid 0, a known password), so password login
  is real and the machine's own accounts are untouched.
- a CLI-emulator sshd (ForceCommand cli_emulator.py), a jump-host sshd, a target sshd on 127.0.0.2.
- `tinyproxy` as the HTTP proxy, with its log.
- aiohttp "devices" over HTTPS (a test CA made with `cryptography`) for every HTTP auth mode.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
SSHD = "/usr/sbin/sshd"
USER = "vnftest"
PASSWORD = "Pw-Sekr1t-9fQ2x"
"""The test user's SSH password: must never show in an exception or a log."""
API_PASSWORD = "Api-Pa55-Zq8w"
API_TOKEN = "tok-4f9c2a7e1b"
API_KEY = "key-7d1e5b3c9a"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    address: str, port: int, proc: subprocess.Popen[bytes] | None, log: Path, what: str
) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"{what} did not listen on {address}:{port}:\n{log.read_text(errors='replace')[-3000:]}"
    )


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """A bounded wait for a condition (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------- SSH servers


@dataclass
class SshUser:
    dir: Path
    key_path: Path
    private_key: str
    public_key: str


def make_ssh_user(d: Path) -> SshUser:
    home = d / "home"
    home.mkdir()
    key = d / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vnf-test", "-f", str(key)], check=True
    )
    salt = secrets.token_hex(8)
    digest = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
        input=PASSWORD,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    passwd = Path("/etc/passwd").read_text()
    shadow = Path("/etc/shadow").read_text()
    (d / "passwd").write_text(passwd.rstrip("\n") + f"\n{USER}:x:0:0:vnf test:{home}:/bin/sh\n")
    (d / "shadow").write_text(shadow.rstrip("\n") + f"\n{USER}:{digest}:19000:0:99999:7:::\n")
    (d / "shadow").chmod(0o600)
    (d / "authorized_keys").write_text((d / "id_ed25519.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    return SshUser(
        dir=d,
        key_path=key,
        private_key=key.read_text(),
        public_key=(d / "id_ed25519.pub").read_text().strip(),
    )


SSHD_CONFIG = """\
Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
StrictModes no
PermitRootLogin yes
AllowUsers {user}
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
AllowTcpForwarding yes
PermitTTY yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 64
MaxStartups 200:30:400
LogLevel DEBUG1
{extra}
"""


@dataclass
class Sshd:
    name: str
    dir: Path
    address: str
    port: int
    user: SshUser
    extra: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key_path(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def host_key_line(self) -> str:
        return " ".join((self.dir / "ssh_host_ed25519_key.pub").read_text().split()[:2])

    @property
    def fingerprint(self) -> str:
        return str(asyncssh.import_public_key(self.host_key_line).get_fingerprint("sha256"))

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def new_host_key(self) -> None:
        for p in (self.host_key_path, self.dir / "ssh_host_ed25519_key.pub"):
            p.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key_path)], check=True
        )

    def start(self) -> None:
        if not self.host_key_path.exists():
            self.new_host_key()
        (self.dir / "sshd_config").write_text(
            SSHD_CONFIG.format(
                port=self.port,
                address=self.address,
                host_key=self.host_key_path,
                dir=self.dir,
                authorized_keys=self.user.dir / "authorized_keys",
                user=USER,
                extra=self.extra,
            )
        )
        script = (
            f"mount --bind {self.user.dir / 'passwd'} /etc/passwd && "
            f"mount --bind {self.user.dir / 'shadow'} /etc/shadow && "
            f"exec {SSHD} -D -f {self.dir / 'sshd_config'} -E {self.log}"
        )
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr", "ab"),  # noqa: SIM115
        )
        wait_for_port(self.address, self.port, self.proc, self.log, f"sshd {self.name}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self, *, new_host_key: bool = False) -> None:
        self.stop()
        if new_host_key:
            self.new_host_key()
        self.start()


SshdFactory = Callable[..., Sshd]


# --------------------------------------------------------------------------- tinyproxy


@dataclass
class Tinyproxy:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def run_tinyproxy(d: Path) -> Iterator[Tinyproxy]:
    port = free_port()
    log = d / "tinyproxy.log"
    conf = d / "tinyproxy.conf"
    conf.write_text(
        f'Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile "{log}"\nLogLevel Info\n'
        f'PidFile "{d / "tinyproxy.pid"}"\nMaxClients 64\nAllow 127.0.0.1\nDisableViaHeader Yes\n'
    )
    proc = subprocess.Popen(
        ["tinyproxy", "-d", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, proc, log, "tinyproxy")
        yield Tinyproxy(port=port, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# --------------------------------------------------------------------------- PKI


@dataclass
class Pki:
    dir: Path
    ca_pem: str
    other_ca_pem: str
    cert: Path
    """Leaf for 127.0.0.1, 127.0.0.2, localhost, device.test."""
    key: Path
    named_cert: Path
    """Leaf naming only device.test."""
    named_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str], ips: list[str], out: Path
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = out.with_suffix(".crt"), out.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def make_pki(d: Path) -> Pki:
    ca, ca_key = _ca("vnf test CA")
    other, _ = _ca("some other CA")
    cert, key = _leaf(ca, ca_key, ["localhost", "device.test"], ["127.0.0.1", "127.0.0.2"], d / "server")
    named_cert, named_key = _leaf(ca, ca_key, ["device.test"], [], d / "named")
    return Pki(
        dir=d,
        ca_pem=ca.public_bytes(serialization.Encoding.PEM).decode(),
        other_ca_pem=other.public_bytes(serialization.Encoding.PEM).decode(),
        cert=cert,
        key=key,
        named_cert=named_cert,
        named_key=named_key,
    )


def server_ssl(cert: Path, key: Path) -> Any:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


# --------------------------------------------------------------------------- HTTP devices


@dataclass
class Device:
    """State of one aiohttp device; tests read and steer it."""

    url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    tokens: set[str] = field(default_factory=set)
    sessions: dict[str, str] = field(default_factory=dict)
    logins: int = 0
    logouts: int = 0
    created: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    fail_429: int = 0
    retry_after: str = "1"
    slow_creates: int = 0
    hosts: list[str] = field(default_factory=list)

    def expire_sessions(self) -> None:
        self.tokens.clear()
        self.sessions.clear()


def _authorized_session(device: Device, request: web.Request) -> bool:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer ") and auth[7:] in device.tokens:
        return True
    cookie = request.cookies.get("SESSIONID")
    if cookie and cookie in device.sessions:
        return request.headers.get("X-CSRFTOKEN") == device.sessions[cookie]
    return False


def device_app(device: Device) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        device.hits[f"{request.method} {request.path}"] += 1
        device.hosts.append(request.headers.get("Host", ""))
        result: web.StreamResponse = await handler(request)
        return result

    @routes.get("/api/basic/items")
    async def basic(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"admin:{API_PASSWORD}".encode()).decode()
        if header != expected:
            # A careless device echoes what it got, secret included: the transport must mask it.
            decoded = base64.b64decode(header[6:]).decode() if header.startswith("Basic ") else header
            return web.json_response({"error": f"bad credentials {decoded}"}, status=401)
        return web.json_response({"items": [{"name": "a"}]})

    @routes.get("/api/bearer/items")
    async def bearer(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {API_TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"items": [{"name": "b"}]})

    @routes.get("/api/header/items")
    async def header(request: web.Request) -> web.Response:
        if request.headers.get("X-API-Key") != API_KEY:
            return web.json_response({"error": "forbidden"}, status=403)
        return web.json_response({"items": [{"name": "h"}], "extra": request.headers.get("X-Extra", "")})

    @routes.post("/api/bodykey/retrieve")
    async def bodykey(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            data = await request.json()
        else:
            data = dict(await request.post())
        if data.get("key") != API_KEY:
            return web.json_response({"success": False, "error": "invalid key"}, status=401)
        return web.json_response({"success": True, "data": data.get("data"), "op": data.get("op")})

    @routes.get("/api/bodykey/info")
    async def bodykey_get(request: web.Request) -> web.Response:
        if request.query.get("key") != API_KEY:
            return web.json_response({"success": False}, status=401)
        return web.json_response({"success": True})

    @routes.post("/api/session/login")
    async def login(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("username") != "admin" or body.get("password") != API_PASSWORD:
            return web.json_response({"error": f"invalid password {body.get('password')}"}, status=401)
        device.logins += 1
        token, csrf, cookie = (secrets.token_hex(8) for _ in range(3))
        device.tokens.add(token)
        device.sessions[cookie] = csrf
        resp = web.json_response({"data": {"token": token}, "csrf": csrf})
        resp.set_cookie("SESSIONID", cookie)
        resp.set_cookie("ccsrftoken", f'"{csrf}"')
        return resp

    @routes.post("/api/session/logout")
    async def logout(request: web.Request) -> web.Response:
        if not _authorized_session(device, request):
            return web.json_response({"error": "not logged in"}, status=401)
        device.logouts += 1
        return web.json_response({"ok": True})

    @routes.get("/api/session/items")
    async def session_items(request: web.Request) -> web.Response:
        if not _authorized_session(device, request):
            return web.json_response({"error": "session expired"}, status=401)
        return web.json_response({"items": [{"name": "s"}]})

    @routes.get("/api/limited")
    async def limited(request: web.Request) -> web.Response:
        if device.fail_429 > 0:
            device.fail_429 -= 1
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": device.retry_after}
            )
        return web.json_response({"ok": True})

    @routes.get("/api/broken")
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": "internal error"}, status=500)

    @routes.get("/api/slow")
    async def slow(request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(device.release.wait(), 30)
        return web.json_response({"ok": True})

    @routes.post("/api/items")
    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        device.created.append(body)
        if device.slow_creates > 0:
            device.slow_creates -= 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(device.release.wait(), 30)
        return web.json_response({"id": len(device.created)}, status=201)

    @routes.get("/api/missing")
    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"error": "no such item"}, status=404)

    @routes.get("/api/hello")
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world", "host": request.headers.get("Host", "")})

    @routes.get("/api/large")
    async def large(request: web.Request) -> web.Response:
        """`kib` KiB of numbered lines (a long list page)."""
        size = int(request.query.get("kib", "300")) * 1024
        lines = "".join(f"{i:09d}\n" for i in range(size // 10 + 1))
        return web.Response(text=lines[:size])

    app = web.Application(middlewares=[count])
    app.add_routes(routes)
    return app


DeviceFactory = Callable[..., Awaitable[Device]]
