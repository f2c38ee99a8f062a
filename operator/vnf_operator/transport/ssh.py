"""SSH to an appliance's CLI with asyncssh: one reused connection per appliance connection.

- The connection is opened on first use, kept alive with SSH keepalives and reopened when it
  dropped. At most `max_sessions` sessions (channels) are open on it at once.
- Exec mode runs each line as its own command (`conn.run`); a non-zero exit status or an error
  pattern in the output raises `DeviceError` and stops the sequence.
- Interactive mode opens a shell with a pty, waits for the prompt, sends `on_connect` lines
  (disable paging), enters configuration mode when asked, sends each line and collects its output
  up to the next prompt, checks `error_patterns` (→ `DeviceError` carrying the device's line) and
  leaves configuration mode again (also after an error).
- Host keys: a pinned key or known_hosts text is required, unless trust-on-first-use is enabled:
  then the first key seen is accepted, exposed as `host_key_fingerprint` / `host_key_line`, and
  pinned for every later connection. A different key is refused with `VerificationError`.

Every text put into an exception or a log line is masked with the settings' masker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import asyncssh

from vnf_operator.core.errors import (
    AuthenticationError,
    DeviceError,
    TransportError,
    VerificationError,
)
from vnf_operator.core.rendered import CliCommands, RawResponse
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport import logsafe
from vnf_operator.transport.base import Closeable
from vnf_operator.transport.limits import Limiter
from vnf_operator.transport.retry import mark_not_delivered
from vnf_operator.transport.settings import SshSettings

log = logging.getLogger(__name__)

DEVICE_TEXT_MAX = 500
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
_PROMPT_WINDOW = 2048
_CONNECTION_ERRORS = (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError, EOFError)


class SshDialer(Protocol):
    """Supplies how to reach host:port: `{"tunnel": conn}` (jump host) or `{"sock": socket}` (proxy)."""

    async def connect_kwargs(self, host: str, port: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HostKeyPolicy:
    """How a server's host key is verified."""

    host_key: str | None = None
    known_hosts: str | None = None
    trust_on_first_use: bool = False
    trusted_fingerprint: str | None = None

    def check(self) -> None:
        if not (self.host_key or self.known_hosts or self.trust_on_first_use):
            raise ValueError("no host key to verify against: pin host_key, give known_hosts, or enable TOFU")


def fingerprint(key: asyncssh.SSHKey) -> str:
    return str(key.get_fingerprint("sha256"))


def key_line(key: asyncssh.SSHKey) -> str:
    line: bytes = key.export_public_key("openssh")
    parts = line.decode("ascii").split()
    return " ".join(parts[:2])


class _Client(asyncssh.SSHClient):
    """Records the offered host key when it did not verify, and whether the connection was lost."""

    def __init__(self, trusted_fingerprint: str | None = None) -> None:
        self.offered: asyncssh.SSHKey | None = None
        self.lost = False
        self.trusted_fingerprint = trusted_fingerprint

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = key
        # Called before authentication: a key that changed never sees the credentials.
        return self.trusted_fingerprint is not None and fingerprint(key) == self.trusted_fingerprint

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


@dataclass
class SshLink:
    """An open SSH connection and what was learned while opening it."""

    conn: asyncssh.SSHClientConnection
    client: _Client
    host_key: asyncssh.SSHKey | None

    def alive(self) -> bool:
        return not self.client.lost and not self.conn.is_closed()


async def open_ssh(
    *,
    host: str,
    port: int,
    username: str,
    password: str | None,
    client_key: asyncssh.SSHKey | None,
    policy: HostKeyPolicy,
    pinned: asyncssh.SSHKey | None,
    connect_timeout: float,
    keepalive_interval: float,
    keepalive_count_max: int,
    masker: SecretMasker,
    ctx: dict[str, Any],
    dial: dict[str, Any] | None = None,
    what: str = "",
) -> SshLink:
    """Open and authenticate one SSH connection, mapping failures to the core's errors.

    `pinned` is a key learned earlier by trust-on-first-use; it takes precedence over TOFU.
    """
    target = f"{what}{host}:{port}"
    known_hosts: Any
    remembered = False
    if policy.host_key:
        known_hosts = ([asyncssh.import_public_key(policy.host_key)], [], [])
    elif policy.known_hosts:
        known_hosts = asyncssh.import_known_hosts(policy.known_hosts)
    elif pinned is not None:
        known_hosts = ([pinned], [], [])
    elif policy.trust_on_first_use and policy.trusted_fingerprint:
        known_hosts = ([], [], [])  # nothing trusted up front: _Client checks the fingerprint
        remembered = True
    elif policy.trust_on_first_use:
        known_hosts = None
    else:
        raise VerificationError(f"no host key to verify {target} against (pin one or enable TOFU)", **ctx)
    client = _Client(policy.trusted_fingerprint if remembered else None)
    kwargs: dict[str, Any] = {
        "username": username,
        "password": password,
        "client_keys": [client_key] if client_key is not None else None,
        "known_hosts": known_hosts,
        "agent_path": None,
        "config": None,
        "x509_trusted_certs": None,
        "x509_trusted_cert_paths": [],
        "connect_timeout": connect_timeout,
        "login_timeout": connect_timeout,
        "keepalive_interval": keepalive_interval,
        "keepalive_count_max": keepalive_count_max,
        "client_factory": lambda: client,
        "preferred_auth": ("publickey", "password") if client_key is not None else ("password",),
    }
    if password is None:
        kwargs["preferred_auth"] = ("publickey",)
    kwargs.update(dial or {})
    try:
        async with asyncio.timeout(connect_timeout + 1.0):
            conn = await asyncssh.connect(host, port, **kwargs)
    except asyncssh.HostKeyNotVerifiable:
        offered = f"; it offered {fingerprint(client.offered)}" if client.offered is not None else ""
        raise VerificationError(
            f"SSH host key verification failed for {target}: the key does not match the pinned key{offered}",
            **ctx,
        ) from None
    except asyncssh.PermissionDenied:
        raise AuthenticationError(f"{target} refused the credentials of user {username!r}", **ctx) from None
    except TimeoutError:
        raise mark_not_delivered(
            TransportError(
                f"SSH connect timeout to {target} after {connect_timeout:g}s", transient=True, **ctx
            )
        ) from None
    except asyncssh.ChannelOpenError as e:
        raise mark_not_delivered(
            TransportError(f"cannot open a tunnel to {target}: {masker(e.reason)}", transient=True, **ctx)
        ) from None
    except asyncssh.DisconnectError as e:
        raise mark_not_delivered(
            TransportError(f"SSH connection to {target} failed: {masker(e.reason)}", transient=True, **ctx)
        ) from None
    except OSError as e:
        raise mark_not_delivered(
            TransportError(
                f"cannot connect to {target}: {masker(e.strerror or str(e))}", transient=True, **ctx
            )
        ) from None
    return SshLink(conn=conn, client=client, host_key=conn.get_server_host_key())


async def import_client_key(
    private_key: str | None, passphrase: str | None, *, ctx: dict[str, Any]
) -> asyncssh.SSHKey | None:
    """Parse a private key off the event loop (encrypted keys run a slow KDF)."""
    if not private_key:
        return None
    try:
        return await asyncio.to_thread(asyncssh.import_private_key, private_key, passphrase)
    except (asyncssh.KeyImportError, ValueError) as e:
        raise AuthenticationError(f"the private key is not usable ({type(e).__name__})", **ctx) from None


class _PromptReader:
    """Reads a shell's output until a prompt regex matches its end."""

    def __init__(self, stream: asyncssh.SSHReader[str]) -> None:
        self.stream = stream
        self.buffer = ""

    async def until(self, prompt: re.Pattern[str], limit: float) -> str | None:
        """Text before the prompt (the prompt removed); None when the session ended first."""
        async with asyncio.timeout(limit):
            while True:
                window_start = max(0, len(self.buffer) - _PROMPT_WINDOW)
                window = (
                    "\n" + self.buffer[window_start:] if window_start == 0 else self.buffer[window_start:]
                )
                m = prompt.search(window)
                if m is not None:
                    cut = window_start + max(0, m.start() - (1 if window_start == 0 else 0))
                    text = self.buffer[:cut]
                    self.buffer = ""
                    return text
                chunk = await self.stream.read(65536)
                if not chunk:
                    return None
                self.buffer += _ANSI.sub("", chunk)


def _clean(text: str, sent: str | None) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "")
    if sent is not None:
        first, sep, rest = text.partition("\n")
        if (sent.strip() and sent.strip() in first) or (not first.strip() and sep):
            text = rest
    return text.strip("\n")


def _error_line(output: str, patterns: Sequence[re.Pattern[str]]) -> str | None:
    for p in patterns:
        m = p.search(output)
        if m is not None:
            start = output.rfind("\n", 0, m.start()) + 1
            end = output.find("\n", m.end())
            return output[start : end if end != -1 else len(output)].strip()
    return None


class SshTransport:
    """Runs rendered `CliCommands` on one SSH connection of one appliance."""

    kind = "ssh"

    def __init__(
        self,
        settings: SshSettings,
        *,
        limiter: Limiter | None = None,
        dialer: SshDialer | None = None,
        masker: SecretMasker | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self._dialer = dialer
        self._extra_masker = masker
        logsafe.register(settings.masker, masker)
        self.policy = HostKeyPolicy(
            settings.host_key, settings.known_hosts, settings.trust_on_first_use, settings.trusted_fingerprint
        )
        cap = settings.max_sessions or (limiter.settings.max_concurrency if limiter is not None else 4)
        self.max_sessions = cap
        self._sessions = asyncio.Semaphore(cap)
        self._link: SshLink | None = None
        self._link_lock = asyncio.Lock()
        self._client_key: asyncssh.SSHKey | None = None
        self._key_loaded = False
        self._seen: asyncssh.SSHKey | None = None
        self._closed = False
        prompts = [settings.prompt] + ([settings.config_prompt] if settings.config_prompt else [])
        self._prompt = re.compile("|".join(f"(?:{p})" for p in prompts))
        self._errors = [re.compile(p, re.MULTILINE) for p in settings.error_patterns]
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.connects = 0
        """How many connections this transport opened (metrics, tests)."""
        self.owned: list[Closeable] = []
        """Resources closed with this transport (a jump host made only for it)."""

    # ------------------------------------------------------------------ helpers

    @property
    def target(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def host_key_fingerprint(self) -> str | None:
        """SHA256 fingerprint of the verified (or first-seen) host key, once connected."""
        return fingerprint(self._seen) if self._seen is not None else None

    @property
    def host_key_line(self) -> str | None:
        """The host key as an OpenSSH public key line, to pin (`ssh-ed25519 AAAA...`)."""
        return key_line(self._seen) if self._seen is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    def mask(self, text: str) -> str:
        text = self.settings.masker(text)
        return self._extra_masker(text) if self._extra_masker is not None else text

    def _ctx(self, operation: str) -> dict[str, Any]:
        return {
            "appliance": self.settings.appliance,
            "connection": self.settings.name,
            "operation": operation,
        }

    def _slot(self) -> AbstractAsyncContextManager[None]:
        return self.limiter.slot() if self.limiter is not None else nullcontext()

    async def _connect(self, operation: str) -> SshLink:
        s = self.settings
        ctx = self._ctx(operation)
        if not self._key_loaded:
            self._client_key = await import_client_key(s.private_key, s.private_key_passphrase, ctx=ctx)
            self._key_loaded = True
        dial = await self._dialer.connect_kwargs(s.host, s.port) if self._dialer is not None else None
        link = await open_ssh(
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
            masker=self.settings.masker,
            ctx=ctx,
            dial=dial,
        )
        self.connects += 1
        if link.host_key is not None:
            if self._seen is None and not (self.policy.host_key or self.policy.known_hosts):
                log.warning(
                    "%s/%s: trusting the SSH host key of %s on first use: %s",
                    s.appliance,
                    s.name,
                    self.target,
                    fingerprint(link.host_key),
                )
            self._seen = link.host_key
        return link

    async def _connection(self, operation: str) -> tuple[SshLink, bool]:
        """The shared connection, (re)opened when needed; the flag says it is freshly opened."""
        if self._closed:
            raise TransportError("transport is closed", transient=True, **self._ctx(operation))
        async with self._link_lock:
            if self._link is not None and not self._link.alive():
                self._drop(self._link)
            if self._link is None:
                self._link = await self._connect(operation)
                return self._link, True
            return self._link, False

    def _drop(self, link: SshLink) -> None:
        if self._link is link:
            self._link = None
        link.conn.close()

    # ------------------------------------------------------------------ public

    async def run(self, cmds: CliCommands, *, operation: str) -> RawResponse:
        """Run the lines; see the module docstring for what raises."""
        self.in_flight += 1
        self.last_used = time.monotonic()
        try:
            async with self._slot(), self._sessions:
                return await self._run(cmds, operation)
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    async def probe(self, *, operation: str = "connect") -> str | None:
        """Open (or reuse) the connection; returns the host key fingerprint."""
        await self._connection(operation)
        return self.host_key_fingerprint

    async def disconnect(self) -> None:
        """Close the connection but keep the transport (and a trusted-on-first-use key) for reuse."""
        async with self._link_lock:
            link, self._link = self._link, None
        if link is not None:
            link.conn.close()
            with contextlib.suppress(TimeoutError, *_CONNECTION_ERRORS):
                async with asyncio.timeout(5):
                    await link.conn.wait_closed()

    async def aclose(self) -> None:
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            link.conn.close()
            try:
                async with asyncio.timeout(5):
                    await link.conn.wait_closed()
            except (TimeoutError, *_CONNECTION_ERRORS):
                pass
        for res in self.owned:
            await res.aclose()

    # ------------------------------------------------------------------ running

    async def _run(self, cmds: CliCommands, operation: str) -> RawResponse:
        started = time.monotonic()
        link, fresh = await self._connection(operation)
        try:
            if cmds.mode == "exec":
                outputs, status = await self._exec(link, cmds, operation, fresh)
            else:
                outputs = await self._interactive(link, cmds, operation, fresh)
                status = None
        except TransportError:
            raise
        except (*_CONNECTION_ERRORS, asyncssh.Error) as e:
            if not link.alive():
                self._drop(link)
            reason = e.reason if isinstance(e, asyncssh.Error) else (str(e) or type(e).__name__)
            raise TransportError(
                f"SSH session to {self.target} failed: {self.mask(reason)}",
                transient=True,
                **self._ctx(operation),
            ) from None
        return RawResponse(
            text="\n".join(o for o in outputs),
            outputs=tuple(outputs),
            exit_status=status,
            elapsed=time.monotonic() - started,
        )

    async def _open(self, link: SshLink, fresh: bool, operation: str, opener: Any) -> tuple[SshLink, Any]:
        """Open a channel; on a reused connection that turned out dead, reconnect once (nothing was sent)."""

        async def attempt(conn: asyncssh.SSHClientConnection) -> Any:
            try:
                async with asyncio.timeout(self.settings.connect_timeout):
                    return await opener(conn)
            except TimeoutError:
                # The request may already be on its way: not marked as undelivered.
                raise TransportError(
                    f"no SSH session on {self.target} within {self.settings.connect_timeout:g}s",
                    transient=True,
                    **self._ctx(operation),
                ) from None

        def refused(e: Exception) -> TransportError:
            reason = e.reason if isinstance(e, asyncssh.Error) else str(e)
            return mark_not_delivered(
                TransportError(
                    f"cannot open an SSH session on {self.target}: {self.mask(reason)}",
                    transient=True,
                    **self._ctx(operation),
                )
            )

        try:
            return link, await attempt(link.conn)
        except (asyncssh.ChannelOpenError, *_CONNECTION_ERRORS) as e:
            if fresh or (link.alive() and isinstance(e, asyncssh.ChannelOpenError)):
                raise refused(e) from None
        self._drop(link)
        link, _ = await self._connection(operation)
        try:
            return link, await attempt(link.conn)
        except (asyncssh.ChannelOpenError, *_CONNECTION_ERRORS) as e2:
            raise refused(e2) from None

    async def _exec(
        self, link: SshLink, cmds: CliCommands, operation: str, fresh: bool
    ) -> tuple[list[str], int]:
        timeout = cmds.timeout or self.settings.command_timeout
        outputs: list[str] = []
        total = len(cmds.commands)
        for i, line in enumerate(cmds.commands, 1):

            async def start(
                conn: asyncssh.SSHClientConnection, line: str = line
            ) -> asyncssh.SSHClientProcess[str]:
                return await conn.create_process(
                    line, stdin=asyncssh.DEVNULL, encoding="utf-8", errors="replace"
                )

            link, proc = await self._open(link, fresh and i == 1, operation, start)
            fresh = False
            try:
                result = await asyncio.wait_for(proc.wait(check=False), timeout)
            except TimeoutError:
                proc.close()
                raise TransportError(
                    f"line {i}/{total} (`{self.mask(line)}`) gave no result within {timeout:g}s",
                    transient=True,
                    **self._ctx(operation),
                ) from None
            out = str(result.stdout or "")
            err = str(result.stderr or "")
            status = result.exit_status
            if status is None:
                if not link.alive():
                    self._drop(link)
                raise TransportError(
                    f"line {i}/{total} (`{self.mask(line)}`) was cut off"
                    + (f" by signal {result.exit_signal[0]}" if result.exit_signal else ""),
                    transient=True,
                    **self._ctx(operation),
                )
            bad = _error_line(out + ("\n" + err if err else ""), self._errors)
            if status != 0 or bad is not None:
                if bad is None:
                    last = (err.strip() or out.strip()).splitlines()
                    detail = last[-1] if last else ""
                else:
                    detail = bad
                raise DeviceError(
                    f"line {i}/{total} (`{self.mask(line)}`) failed"
                    + (f" with exit status {status}" if status != 0 else ""),
                    device_message=self.mask(detail)[:DEVICE_TEXT_MAX],
                    **self._ctx(operation),
                )
            outputs.append(out.rstrip("\n"))
        return outputs, 0

    async def _interactive(self, link: SshLink, cmds: CliCommands, operation: str, fresh: bool) -> list[str]:
        s = self.settings
        timeout = cmds.timeout or s.command_timeout
        ctx = self._ctx(operation)

        async def start(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[str]:
            return await conn.create_process(
                term_type="dumb",
                term_size=(s.term_width, 1000),
                encoding="utf-8",
                errors="replace",
            )

        link, proc = await self._open(link, fresh, operation, start)
        reader = _PromptReader(proc.stdout)
        in_config = False

        async def exchange(line: str | None, where: str) -> str:
            if line is not None:
                proc.stdin.write(line + "\n")
            try:
                text = await reader.until(self._prompt, timeout)
            except TimeoutError:
                tail = _clean(reader.buffer[-200:], None)
                raise TransportError(
                    f"no prompt from {self.target} within {timeout:g}s {where}",
                    transient=True,
                    device_message=self.mask(tail),
                    **ctx,
                ) from None
            if text is None:
                if not link.alive():
                    self._drop(link)
                raise TransportError(f"{self.target} closed the session {where}", transient=True, **ctx)
            return _clean(text, line)

        def check(output: str, line: str, where: str) -> None:
            bad = _error_line(output, self._errors)
            if bad is not None:
                raise DeviceError(
                    f"{where} (`{self.mask(line)}`) failed",
                    device_message=self.mask(bad)[:DEVICE_TEXT_MAX],
                    **ctx,
                )

        try:
            await exchange(None, "after login")
            for line in s.on_connect:
                check(
                    await exchange(line, f"after on-connect line `{self.mask(line)}`"),
                    line,
                    "on-connect line",
                )
            if cmds.config_mode:
                in_config = True
                for line in s.config_enter:
                    check(await exchange(line, "entering configuration mode"), line, "config-enter line")
            outputs: list[str] = []
            total = len(cmds.commands)
            for i, line in enumerate(cmds.commands, 1):
                out = await exchange(line, f"after line {i}/{total}")
                check(out, line, f"line {i}/{total}")
                outputs.append(out)
            if in_config:
                in_config = False
                for line in s.config_exit:
                    check(await exchange(line, "leaving configuration mode"), line, "config-exit line")
            return outputs
        finally:
            if in_config and s.config_exit and not proc.is_closing():
                # An error inside configuration mode: leave it before closing (best effort).
                try:
                    for line in s.config_exit:
                        proc.stdin.write(line + "\n")
                        async with asyncio.timeout(min(timeout, 5.0)):
                            await reader.until(self._prompt, timeout)
                except (TimeoutError, *_CONNECTION_ERRORS, asyncssh.Error):
                    pass
            proc.close()
            try:
                async with asyncio.timeout(5.0):
                    await proc.wait_closed()
            except (TimeoutError, *_CONNECTION_ERRORS, asyncssh.Error):
                pass
