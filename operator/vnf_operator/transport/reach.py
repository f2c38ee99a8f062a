"""How the operator reaches an appliance: direct, through an SSH jump host, an HTTP proxy, or a broker.

- `JumpHost`: one shared, verified SSH connection to a bastion. SSH connections to appliances
  behind it are tunnelled through it (asyncssh `tunnel=`, the appliance's host key is verified as
  well: both hops); HTTP(S) goes through a local port forward on 127.0.0.1 (TLS is still verified
  end to end against the appliance's real name).
- `HttpProxyDialer`: SSH through an `http://` proxy with `CONNECT host:port`. HTTP(S) through a
  proxy is aiohttp's own `proxy=` (CONNECT for HTTPS; an `https://` proxy is verified with the
  device's context plus `proxy_ca_pem`).
- broker: see `vnf_operator.transport.broker`.

`make_http` / `make_ssh` build the right transport for a `ReachSettings`.

asyncssh (and `transport.ssh`, which needs it) is imported only when a jump host or an SSH
transport is built: an HTTP-only fleet never pays its import time and memory.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from vnf_operator.core.errors import TransportError
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport import logsafe
from vnf_operator.transport.http import HttpTransport
from vnf_operator.transport.limits import Limiter
from vnf_operator.transport.retry import mark_not_delivered
from vnf_operator.transport.settings import HttpSettings, JumpHostSettings, ReachSettings, SshSettings

if TYPE_CHECKING:
    import asyncssh

    from vnf_operator.transport.ssh import SshLink, SshTransport

log = logging.getLogger(__name__)

_MAX_PROXY_HEADER = 16384


class JumpHost:
    """A verified SSH connection to a bastion, shared by every appliance behind it."""

    def __init__(self, settings: JumpHostSettings, *, masker: SecretMasker | None = None) -> None:
        self.settings = settings
        self.masker = masker or SecretMasker()
        self.masker.add(*settings.secrets())
        logsafe.register(self.masker)
        from vnf_operator.transport.ssh import HostKeyPolicy  # lazy: asyncssh only for SSH users

        self.policy = HostKeyPolicy(settings.host_key, settings.known_hosts, settings.trust_on_first_use)
        self._link: SshLink | None = None
        self._lock = asyncio.Lock()
        self._client_key: asyncssh.SSHKey | None = None
        self._key_loaded = False
        self._seen: asyncssh.SSHKey | None = None
        self._forwards: dict[tuple[str, int], tuple[SshLink, asyncssh.SSHListener]] = {}
        self._closed = False
        self.connects = 0

    @property
    def target(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def host_key_fingerprint(self) -> str | None:
        from vnf_operator.transport.ssh import fingerprint

        return fingerprint(self._seen) if self._seen is not None else None

    @property
    def host_key_line(self) -> str | None:
        from vnf_operator.transport.ssh import key_line

        return key_line(self._seen) if self._seen is not None else None

    async def link(self) -> SshLink:
        """The connection to the jump host, opened or reopened when needed."""
        from vnf_operator.transport.ssh import import_client_key, open_ssh

        if self._closed:
            raise TransportError(f"jump host {self.target} is closed", transient=True)
        async with self._lock:
            if self._link is not None and not self._link.alive():
                self._link.conn.close()
                self._link = None
            if self._link is None:
                s = self.settings
                ctx = {"connection": f"jump host {self.target}"}
                if not self._key_loaded:
                    self._client_key = await import_client_key(
                        s.private_key, s.private_key_passphrase, ctx=ctx
                    )
                    self._key_loaded = True
                self._link = await open_ssh(
                    host=s.host,
                    port=s.port,
                    username=s.username,
                    password=s.password,
                    client_key=self._client_key,
                    policy=self.policy,
                    pinned=self._seen,
                    connect_timeout=s.connect_timeout,
                    keepalive_interval=s.keepalive_interval,
                    keepalive_count_max=s.keepalive_count_max,
                    masker=self.masker,
                    ctx={},
                    what="jump host ",
                )
                self.connects += 1
                if self._link.host_key is not None:
                    self._seen = self._link.host_key
            return self._link

    async def connect_kwargs(self, host: str, port: int) -> dict[str, Any]:
        link = await self.link()
        return {"tunnel": link.conn}

    async def forward(self, host: str, port: int) -> tuple[str, int]:
        """A local 127.0.0.1 port forwarded through the jump host to host:port."""
        import asyncssh  # already loaded: __init__ imported transport.ssh

        link = await self.link()
        key = (host, port)
        held = self._forwards.get(key)
        if held is not None and held[0] is link:
            return "127.0.0.1", held[1].get_port()
        if held is not None:
            held[1].close()
        try:
            listener = await link.conn.forward_local_port("127.0.0.1", 0, host, port)
        except (asyncssh.Error, OSError) as e:
            reason = e.reason if isinstance(e, asyncssh.Error) else str(e)
            raise mark_not_delivered(
                TransportError(
                    f"cannot forward a port through jump host {self.target} to {host}:{port}: "
                    f"{self.masker(reason)}",
                    transient=True,
                )
            ) from None
        self._forwards[key] = (link, listener)
        return "127.0.0.1", listener.get_port()

    async def aclose(self) -> None:
        import asyncssh  # already loaded: __init__ imported transport.ssh

        self._closed = True
        for _, listener in self._forwards.values():
            listener.close()
        self._forwards.clear()
        link, self._link = self._link, None
        if link is not None:
            link.conn.close()
            try:
                async with asyncio.timeout(5):
                    await link.conn.wait_closed()
            except (TimeoutError, OSError, asyncssh.Error):
                pass


class HttpProxyDialer:
    """Opens a TCP connection to host:port through an HTTP proxy (`CONNECT`), for SSH."""

    def __init__(
        self, proxy_url: str, *, connect_timeout: float = 10.0, masker: SecretMasker | None = None
    ) -> None:
        parts = urlsplit(proxy_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                "SSH through a proxy needs an http://host:port proxy URL (https proxies: use a broker)"
            )
        self.host = parts.hostname
        self.port = parts.port or 80
        self.auth: str | None = None
        if parts.username is not None:
            raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = base64.b64encode(raw.encode()).decode("ascii")
        self.connect_timeout = connect_timeout
        self.masker = masker or SecretMasker()
        if parts.password:
            self.masker.add(unquote(parts.password))

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    async def connect_kwargs(self, host: str, port: int) -> dict[str, Any]:
        return {"sock": await self.open(host, port)}

    async def open(self, host: str, port: int) -> socket.socket:
        loop = asyncio.get_running_loop()
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                family, kind, proto, _, addr = infos[0]
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                await loop.sock_connect(sock, addr)
                authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
                if self.auth:
                    lines.append(f"Proxy-Authorization: Basic {self.auth}")
                await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
                # Read the answer byte by byte: the SSH server's banner follows right after it.
                head = bytearray()
                while not head.endswith(b"\r\n\r\n"):
                    b = await loop.sock_recv(sock, 1)
                    if not b:
                        raise ConnectionError("the proxy closed the connection")
                    head += b
                    if len(head) > _MAX_PROXY_HEADER:
                        raise ConnectionError("the proxy answer is too long")
        except TimeoutError:
            if sock is not None:
                sock.close()
            raise mark_not_delivered(
                TransportError(
                    f"proxy {self.target}: no tunnel to {host}:{port} within {self.connect_timeout:g}s",
                    transient=True,
                )
            ) from None
        except OSError as e:
            if sock is not None:
                sock.close()
            raise mark_not_delivered(
                TransportError(
                    f"proxy {self.target}: cannot open a tunnel to {host}:{port}: {self.masker(str(e))}",
                    transient=True,
                )
            ) from None
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit() or not 200 <= int(parts[1]) < 300:
            sock.close()
            code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
            raise mark_not_delivered(
                TransportError(
                    f"proxy {self.target} refused the tunnel to {host}:{port}: {self.masker(status_line)}",
                    transient=code is None or code >= 500,
                    status=code,
                )
            )
        return sock


def make_http(
    settings: HttpSettings,
    reach: ReachSettings,
    *,
    limiter: Limiter | None = None,
    jump: JumpHost | None = None,
) -> HttpTransport:
    """An HTTP transport for `direct`, `jumpHost` or `proxy` (the broker has its own)."""
    reach.validate()
    if reach.mode == "direct":
        return HttpTransport(settings, limiter=limiter)
    if reach.mode == "proxy":
        return HttpTransport(
            settings,
            limiter=limiter,
            proxy=reach.proxy_url,
            proxy_ca_pem=reach.proxy_ca_pem,
            masker=reach.masker,
        )
    if reach.mode == "jumpHost":
        assert reach.jump_host is not None
        own = jump is None
        jump = jump or JumpHost(reach.jump_host, masker=reach.masker)
        http = HttpTransport(settings, limiter=limiter, forwarder=jump, masker=reach.masker)
        if own:
            http.owned.append(jump)
        return http
    raise ValueError(f"reach mode {reach.mode} has no HTTP transport here (use BrokerTransport)")


def make_ssh(
    settings: SshSettings,
    reach: ReachSettings,
    *,
    limiter: Limiter | None = None,
    jump: JumpHost | None = None,
) -> SshTransport:
    """An SSH transport for `direct`, `jumpHost` or `proxy` (the broker has its own)."""
    from vnf_operator.transport.ssh import SshTransport  # lazy: asyncssh only for SSH users

    reach.validate()
    if reach.mode == "direct":
        return SshTransport(settings, limiter=limiter)
    if reach.mode == "proxy":
        assert reach.proxy_url is not None
        dialer = HttpProxyDialer(
            reach.proxy_url, connect_timeout=settings.connect_timeout, masker=reach.masker
        )
        return SshTransport(settings, limiter=limiter, dialer=dialer, masker=reach.masker)
    if reach.mode == "jumpHost":
        assert reach.jump_host is not None
        own = jump is None
        jump = jump or JumpHost(reach.jump_host, masker=reach.masker)
        ssh = SshTransport(settings, limiter=limiter, dialer=jump, masker=reach.masker)
        if own:
            ssh.owned.append(jump)
        return ssh
    raise ValueError(f"reach mode {reach.mode} has no SSH transport here (use BrokerTransport)")
