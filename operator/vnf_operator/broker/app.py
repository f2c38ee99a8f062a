"""The reference broker: relays rendered operations to appliances it can reach.

It runs near the appliances (on a jump host or an internal server) and uses the operator's own
transports, so TLS and host-key verification, timeouts and error classification are the same as
for a direct connection. It:

- authenticates every request with a bearer token, compared in constant time;
- relays only to targets in its allow-list (networks, host names, `*.suffix` patterns; a host name
  not listed by name must resolve only to allowed addresses); an empty allow-list relays nothing;
- refuses bodies larger than `max_body_bytes` (HTTP 413);
- keeps one pooled transport per distinct target, closed when idle;
- never logs a secret: log lines carry the kind, appliance, operation, target host and outcome,
  never settings, bodies, device text or error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from vnf_operator.core.errors import TransportError
from vnf_operator.core.rendered import RawResponse
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport import wire
from vnf_operator.transport.base import CliRunner
from vnf_operator.transport.pool import TransportPool
from vnf_operator.transport.settings import LimitSettings

log = logging.getLogger("vnf_operator.broker")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The client applies the appliance's limits; the broker only bounds itself.
_RELAY_LIMITS = LimitSettings(requests_per_second=1000.0, max_concurrency=64, max_retries=0)


class AllowList:
    """Which targets the broker relays to."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.networks: list[Network] = []
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        for raw in entries:
            for entry in (e.strip() for e in raw.split(",")):
                if not entry:
                    continue
                try:
                    self.networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    pass
                name = entry.lower().rstrip(".")
                if name.startswith("*."):
                    self.suffixes.append(name[1:])
                else:
                    self.names.add(name)

    def __bool__(self) -> bool:
        return bool(self.networks or self.names or self.suffixes)

    def _ip_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    async def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return self._ip_allowed(host)
        if host in self.names or any(host.endswith(s) for s in self.suffixes):
            return True
        if not self.networks:
            return False
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return False
        addresses = {str(info[4][0]) for info in infos}
        return bool(addresses) and all(self._ip_allowed(a) for a in addresses)


class TokenSource:
    """The expected bearer token, from a value or a file re-read when it changes (Secret rotation)."""

    def __init__(self, *, token: str | None = None, path: Path | None = None) -> None:
        if (token is None) == (path is None):
            raise ValueError("give exactly one of token or path")
        self.path = path
        self._mtime: float | None = None
        self._token = token.strip() if token is not None else self._read()
        if not self._token:
            raise ValueError("the broker token is empty")

    def _read(self) -> str:
        assert self.path is not None
        st = self.path.stat()
        self._mtime = st.st_mtime
        return self.path.read_text(encoding="utf-8").strip()

    async def refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = await asyncio.to_thread(self.path.stat)
            if st.st_mtime != self._mtime:
                token = await asyncio.to_thread(self._read)
                if token:
                    self._token = token
                    log.info("token file changed, token reloaded")
        except OSError as e:
            log.warning("cannot re-read the token file: %s", type(e).__name__)

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode("utf-8"), self._token.encode("utf-8"))


@dataclass
class BrokerConfig:
    tokens: TokenSource
    allow: AllowList
    max_body_bytes: int = 1024 * 1024
    idle_timeout: float = 300.0
    max_concurrency: int = 256
    token_refresh_interval: float = 10.0
    stats: dict[str, int] = field(default_factory=lambda: {"relayed": 0, "refused": 0})


CONFIG: web.AppKey[BrokerConfig] = web.AppKey("config", BrokerConfig)
POOL: web.AppKey[TransportPool] = web.AppKey("pool", TransportPool)
SEMAPHORE: web.AppKey[asyncio.Semaphore] = web.AppKey("semaphore", asyncio.Semaphore)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


@web.middleware
async def _auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path == "/healthz":
        return await handler(request)
    config = request.app[CONFIG]
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not config.tokens.matches(presented.strip()):
        config.stats["refused"] += 1
        log.warning(
            "refused %s %s from %s: bad or missing token", request.method, request.path, request.remote
        )
        return web.json_response(
            {"message": "missing or wrong bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="vnf-broker"'},
        )
    return await handler(request)


async def _read_body(request: web.Request) -> dict[str, Any] | web.Response:
    config = request.app[CONFIG]
    if request.content_length is not None and request.content_length > config.max_body_bytes:
        return _error(413, f"body larger than {config.max_body_bytes} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body larger than {config.max_body_bytes} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(400, "body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    if body.get("version") != wire.VERSION:
        return _error(400, f"unsupported version (this broker speaks {wire.VERSION})")
    if not isinstance(body.get("operation", ""), str):
        return _error(400, "operation must be a string")
    return body


def _target_key(target: Any) -> str:
    canonical = json.dumps(target, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


async def _relay(
    request: web.Request,
    kind: str,
    run: Callable[[dict[str, Any], str], Awaitable[tuple[RawResponse, CliRunner | None]]],
    host_of: Callable[[dict[str, Any]], tuple[str, str, str]],
) -> web.Response:
    body = await _read_body(request)
    if isinstance(body, web.Response):
        return body
    config = request.app[CONFIG]
    operation = str(body.get("operation", ""))
    try:
        host, port, appliance = host_of(body)
    except wire.WireError as e:
        return _error(400, str(e))
    if not await config.allow.allows(host):
        config.stats["refused"] += 1
        log.warning("refused %s %s/%s: target %s is not in the allow-list", kind, appliance, operation, host)
        return _error(403, f"target {host} is not in the broker's allow-list")
    started = time.monotonic()
    outcome = "ok"
    payload: dict[str, Any]
    async with request.app[SEMAPHORE]:
        try:
            response, runner = await run(body, _target_key(body["target"]))
            payload = {"response": wire.encode(response)}
            if runner is not None and runner.host_key_line and runner.host_key_fingerprint:
                payload["hostKey"] = {
                    "line": runner.host_key_line,
                    "fingerprint": runner.host_key_fingerprint,
                }
        except wire.WireError as e:
            return _error(400, str(e))
        except TransportError as e:
            outcome = f"{type(e).__name__}{' (transient)' if e.transient else ''}"
            payload = {"error": wire.encode_error(e)}
    config.stats["relayed"] += 1
    log.info(
        "relayed %s %s/%s to %s:%s: %s in %.3fs",
        kind,
        appliance or "-",
        operation or "-",
        host,
        port,
        outcome,
        time.monotonic() - started,
    )
    return web.json_response(payload)


def _http_host(body: dict[str, Any]) -> tuple[str, str, str]:
    target = body.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("base_url"), str):
        raise wire.WireError("target.base_url: required")
    parts = urlsplit(target["base_url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise wire.WireError("target.base_url: must be http(s)://host[:port][/path]")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise wire.WireError("target.base_url: bad port") from None
    return parts.hostname, str(port), str(target.get("appliance", ""))


def _ssh_host(body: dict[str, Any]) -> tuple[str, str, str]:
    target = body.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("host"), str) or not target["host"]:
        raise wire.WireError("target.host: required")
    return target["host"], str(target.get("port", 22)), str(target.get("appliance", ""))


async def http_handler(request: web.Request) -> web.Response:
    pool = request.app[POOL]

    async def run(body: dict[str, Any], key: str) -> tuple[RawResponse, CliRunner | None]:
        masker = SecretMasker()
        settings = wire.decode_http_settings(body.get("target"), masker)
        masker.add(*wire.login_secrets(settings))
        req = wire.decode_request(body.get("request"))
        idempotent = body.get("idempotent", True)
        if not isinstance(idempotent, bool):
            raise wire.WireError("idempotent: must be a boolean")
        transport = pool.http(key, settings, limits=_RELAY_LIMITS)
        return await transport.send(
            req, operation=str(body.get("operation", "")), idempotent=idempotent
        ), None

    return await _relay(request, "http", run, _http_host)


async def ssh_handler(request: web.Request) -> web.Response:
    pool = request.app[POOL]

    async def run(body: dict[str, Any], key: str) -> tuple[RawResponse, CliRunner | None]:
        settings = wire.decode_ssh_settings(body.get("target"))
        cmds = wire.decode_commands(body.get("commands"))
        transport = pool.ssh(key, settings, limits=_RELAY_LIMITS)
        return await transport.run(cmds, operation=str(body.get("operation", ""))), transport

    return await _relay(request, "ssh", run, _ssh_host)


async def health_handler(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _background(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    pool = app[POOL]

    async def refresh_tokens() -> None:
        while True:
            await asyncio.sleep(config.token_refresh_interval)
            await config.tokens.refresh()

    tasks = [
        asyncio.create_task(
            pool.reaper(interval=max(1.0, config.idle_timeout / 4), max_idle=config.idle_timeout)
        ),
        asyncio.create_task(refresh_tokens()),
    ]
    yield
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    await pool.aclose()


def create_app(config: BrokerConfig) -> web.Application:
    """The broker as an aiohttp application (serve it with TLS: see `__main__`)."""
    app = web.Application(middlewares=[_auth], client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[POOL] = TransportPool(default_limits=_RELAY_LIMITS)
    app[SEMAPHORE] = asyncio.Semaphore(config.max_concurrency)
    app.router.add_get("/healthz", health_handler)
    app.router.add_post("/v1/http", http_handler)
    app.router.add_post("/v1/ssh", ssh_handler)
    app.cleanup_ctx.append(_background)
    if not config.allow:
        log.warning("the allow-list is empty: the broker will refuse every target")
    return app
