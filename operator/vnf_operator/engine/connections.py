"""From a dictionary's connections and an appliance's spec to live transports.

The core resolves every connection template (auth, headers, user, keys) with the appliance's
credentials; this module turns that into transport settings, adds what only the appliance knows
(CA, pinned host keys, reach mode, limits), and sends rendered operations with retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from vnf_operator.core.errors import AuthenticationError, TemplateError, TransportError, VnfError
from vnf_operator.core.model import ProviderDictionary, SshConnection
from vnf_operator.core.render import ResolvedConnection, render_connection, render_login, render_logout
from vnf_operator.core.rendered import CliCommands, HttpRequest, RawResponse, RenderedOperation
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.engine.secrets import Credentials
from vnf_operator.engine.session import ApplianceRef
from vnf_operator.transport.base import CliRunner, HttpSender
from vnf_operator.transport.pool import TransportPool
from vnf_operator.transport.retry import RetryEvent, call_with_retry
from vnf_operator.transport.settings import (
    DEFAULT_PROMPT,
    DIRECT,
    HttpAuthSettings,
    HttpBasicAuth,
    HttpBearerAuth,
    HttpBodyKeyAuth,
    HttpHeaderAuth,
    HttpSessionAuth,
    HttpSettings,
    JumpHostSettings,
    LimitSettings,
    ReachSettings,
    SshSettings,
)


def _auth(
    resolved: ResolvedConnection, dictionary: ProviderDictionary, name: str, session_ctx: Any
) -> HttpAuthSettings | None:
    a = resolved.auth
    if a is None:
        return None
    if a.type == "basic":
        return HttpBasicAuth(a.username, a.password)
    if a.type == "bearer":
        return HttpBearerAuth(a.token)
    if a.type == "header":
        return HttpHeaderAuth(a.header, a.value)
    if a.type == "bodyKey":
        return HttpBodyKeyAuth(a.field, a.value)
    assert a.session is not None
    s = a.session
    return HttpSessionAuth(
        login=render_login(dictionary, name, session_ctx),
        token_jsonpath=s.token,
        token_header=s.token_header,
        token_prefix=s.token_prefix,
        csrf_cookie=s.csrf_cookie,
        csrf_header=s.csrf_header,
        csrf_jsonpath=s.csrf_from,
        logout=render_logout(dictionary, name, session_ctx),
    )


def reach_settings(spec: Mapping[str, Any], creds: Credentials, default_mode: str) -> ReachSettings:
    reach = spec.get("reach") or {}
    mode = reach.get("mode") or default_mode
    if mode == "direct":
        return DIRECT
    if mode == "jumpHost":
        jh = reach.get("jumpHost") or {}
        return ReachSettings(
            mode="jumpHost",
            jump_host=JumpHostSettings(
                host=jh.get("host", ""),
                port=int(jh.get("port") or 22),
                username=jh.get("username", ""),
                password=creds.extra.get("jump.password"),
                private_key=creds.extra.get("jump.private_key"),
                **_jump_host_keys(creds.extra.get("jump.known_hosts")),
            ),
        )
    if mode == "proxy":
        return ReachSettings(mode="proxy", proxy_url=(reach.get("proxy") or {}).get("url"))
    broker = reach.get("broker") or {}
    return ReachSettings(
        mode="broker",
        broker_url=broker.get("url"),
        broker_token=creds.extra.get("broker.token"),
        broker_ca_pem=creds.extra.get("broker.ca"),
    )


def _jump_host_keys(text: str | None) -> dict[str, Any]:
    """A bare key line pins the bastion's key; known_hosts text is matched; nothing → trust on first use."""
    if not text:
        return {"trust_on_first_use": True}
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) == 1 and lines[0].split()[0].startswith(("ssh-", "ecdsa-", "sk-")):
        return {"host_key": lines[0].strip()}
    return {"known_hosts": text}


class Connections:
    """The transports of one appliance, with its limits and retry policy."""

    def __init__(
        self,
        appliance: str,
        http: Mapping[str, HttpSender],
        ssh: Mapping[str, CliRunner],
        limits: LimitSettings,
        tcp: Mapping[str, tuple[str, int]],
        error_patterns: Mapping[str, tuple[str, ...]],
        masker: SecretMasker,
    ) -> None:
        self.appliance = appliance
        self.http = dict(http)
        self.ssh = dict(ssh)
        self.limits = limits
        self.tcp = dict(tcp)
        self._error_patterns = dict(error_patterns)
        self.masker = masker
        self.default_http = next(iter(self.http), None)
        self.default_ssh = next(iter(self.ssh), None)
        self.unavailable: dict[str, str] = {}
        self.on_retry: Callable[[RetryEvent], None] | None = None

    def _missing(self, name: str, kind: str) -> TransportError:
        why = self.unavailable.get(name)
        if why:
            # Its credentials are missing (e.g. a key bootstrap has yet to create): a conclusive
            # answer, as a refused login is, so a `neededWhen` probe asks for the bootstrap.
            return AuthenticationError(f"connection {name!r} is unavailable: {why}", connection=name)
        return TransportError(f"no {kind} connection {name!r}", transient=False, connection=name)

    def error_patterns(self, connection: str) -> tuple[str, ...]:
        return self._error_patterns.get(connection, ())

    def host_keys(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, t in self.ssh.items():
            fp = getattr(t, "host_key_fingerprint", None)
            if isinstance(fp, str) and fp:
                out[name] = fp
        return out

    async def send(
        self,
        op: RenderedOperation,
        *,
        operation: str,
        idempotent: bool,
        landed: Callable[[], Awaitable[bool]] | None = None,
    ) -> RawResponse:
        async def once() -> RawResponse:
            if isinstance(op, HttpRequest):
                transport = self.http.get(op.connection or self.default_http or "")
                if transport is None:
                    raise self._missing(op.connection, "HTTP")
                return await transport.send(op, operation=operation, idempotent=idempotent)
            assert isinstance(op, CliCommands)
            runner = self.ssh.get(op.connection or self.default_ssh or "")
            if runner is None:
                raise self._missing(op.connection, "SSH")
            return await runner.run(op, operation=operation)

        return await call_with_retry(
            once, idempotent=idempotent, limits=self.limits, landed=landed, on_retry=self.on_retry
        )

    async def probe_tcp(self, connection: str) -> None:
        if connection not in self.tcp:
            raise self._missing(connection, "TCP")
        host, port = self.tcp[connection]
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, TimeoutError) as exc:
            raise TransportError(
                f"TCP connection to {host}:{port} failed: {exc}", transient=True, connection=connection
            ) from None
        writer.close()


class ConnectionFactory:
    """Builds (and caches through the pool) the transports of every appliance."""

    def __init__(self) -> None:
        self.pool = TransportPool()

    async def get(
        self, body: Mapping[str, Any], dictionary: ProviderDictionary, creds: Credentials, ref: ApplianceRef
    ) -> Connections:
        spec = body.get("spec") or {}
        appliance = f"{ref.namespace}/{ref.name}"
        if not ref.host:
            raise VnfError("spec.management.host: no management address")
        from vnf_operator.core.context import ApplianceInfo, TemplateContext

        ctx = TemplateContext(
            appliance=ApplianceInfo(ref.name, ref.namespace, ref.host, dict(ref.ports), dict(ref.vars)),
            credentials=creds.values,
        )
        limits = LimitSettings.from_model(dictionary.limits, spec.get("limits") or {})
        tls = spec.get("tls") or {}
        ssh_spec = spec.get("ssh") or {}
        http: dict[str, HttpSender] = {}
        ssh: dict[str, CliRunner] = {}
        tcp: dict[str, tuple[str, int]] = {}
        patterns: dict[str, tuple[str, ...]] = {}
        masker = SecretMasker(creds.values.values())
        unavailable: dict[str, str] = {}
        for name, conn in dictionary.connections.items():
            try:
                resolved = render_connection(dictionary, name, ctx)
            except TemplateError as exc:
                # e.g. a bootstrap-only connection whose credentials this appliance lacks
                unavailable[name] = str(exc)
                default_port = {"http": 80, "https": 443, "ssh": 22}[conn.type]
                tcp[name] = (ref.host, int(ref.ports.get(name) or conn.port or default_port))
                continue
            masker.add(*resolved.secrets())
            tcp[name] = (resolved.host, resolved.port)
            reach = reach_settings(spec, creds, resolved.reach_mode)
            if isinstance(conn, SshConnection):
                patterns[name] = resolved.error_patterns
                prompts = resolved.prompts
                settings = SshSettings(
                    name=name,
                    host=resolved.host,
                    port=resolved.port,
                    username=resolved.username,
                    appliance=appliance,
                    password=resolved.password or None,
                    private_key=resolved.private_key or None,
                    host_key=resolved.host_key or None,
                    known_hosts=creds.extra.get("known_hosts"),
                    trust_on_first_use=bool(ssh_spec.get("trustOnFirstUse")),
                    trusted_fingerprint=(
                        (((body.get("status") or {}).get("hostKeys") or {}).get(name) or None)
                        if ssh_spec.get("trustOnFirstUse")
                        else None
                    ),
                    mode=resolved.mode,
                    prompt=prompts.prompt if prompts else DEFAULT_PROMPT,
                    config_prompt=prompts.config_prompt if prompts else "",
                    on_connect=resolved.on_connect,
                    config_enter=resolved.config_enter,
                    config_exit=resolved.config_exit,
                    error_patterns=resolved.error_patterns,
                    connect_timeout=resolved.connect_timeout,
                    command_timeout=resolved.command_timeout,
                    keepalive_interval=resolved.keepalive_interval,
                    masker=masker,
                )
                ssh[name] = self.pool.ssh(appliance, settings, reach=reach, limits=limits)
            else:
                insecure = bool(tls.get("insecureSkipVerify"))
                hs = HttpSettings(
                    name=name,
                    base_url=resolved.base_url,
                    appliance=appliance,
                    verify=not insecure,  # only the appliance may turn verification off
                    ca_pem=creds.extra.get("ca.crt"),
                    server_name=resolved.tls_server_name,
                    auth=_auth(resolved, dictionary, name, ctx),
                    headers=dict(resolved.headers),
                    connect_timeout=resolved.connect_timeout,
                    read_timeout=resolved.read_timeout,
                    masker=masker,
                )
                http[name] = self.pool.http(appliance, hs, reach=reach, limits=limits)
        conns = Connections(appliance, http, ssh, limits, tcp, patterns, masker)
        conns.unavailable = unavailable
        return conns

    async def invalidate(self, namespace: str, name: str) -> None:
        await self.pool.close_appliance(f"{namespace}/{name}")

    async def aclose(self) -> None:
        await self.pool.aclose()
