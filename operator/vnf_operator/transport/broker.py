"""Reaching an appliance through a broker: the client side.

The broker (`python -m vnf_operator.broker`) runs near the appliances and relays each rendered
operation with the same transports the operator uses. The client POSTs the operation and the
target connection settings (credentials included, inside TLS only) with a bearer token:

    POST {broker_url}/v1/http  {"version": 1, "operation", "idempotent", "target", "request"}
    POST {broker_url}/v1/ssh   {"version": 1, "operation", "target", "commands"}

and gets back `{"response": RawResponse}` or `{"error": {...}}` (the same exception classes and
transient flags as a direct transport, texts masked again on this side). Retries stay with the
caller (`call_with_retry`), limits are applied here, before the request leaves the operator.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from vnf_operator.core.errors import AuthenticationError, TransportError, VerificationError
from vnf_operator.core.rendered import CliCommands, HttpRequest, RawResponse
from vnf_operator.transport import logsafe, wire
from vnf_operator.transport.base import Closeable
from vnf_operator.transport.limits import Limiter
from vnf_operator.transport.retry import mark_not_delivered
from vnf_operator.transport.settings import HttpSettings, ReachSettings, SshSettings


class BrokerTransport:
    """Relays operations for one appliance connection (HTTP or SSH) through a broker."""

    kind = "broker"

    def __init__(
        self,
        target: HttpSettings | SshSettings,
        reach: ReachSettings,
        *,
        limiter: Limiter | None = None,
    ) -> None:
        reach.validate()
        if reach.broker_url is None or reach.broker_token is None:
            raise ValueError("reach mode broker needs broker_url and broker_token")
        parts = urlsplit(reach.broker_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("broker_url must be https://host:port")
        self.target = target
        self.reach = reach
        self.limiter = limiter
        self._url = reach.broker_url.rstrip("/")
        self._broker = parts.netloc
        self._token = reach.broker_token
        logsafe.register(target.masker, reach.masker)
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._host_key: str | None = None
        self._fingerprint: str | None = None
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.owned: list[Closeable] = []

    # ------------------------------------------------------------------ helpers

    def mask(self, text: str) -> str:
        return self.reach.masker(self.target.masker(text))

    @property
    def host_key_fingerprint(self) -> str | None:
        return self._fingerprint

    @property
    def host_key_line(self) -> str | None:
        return self._host_key

    @property
    def closed(self) -> bool:
        return self._closed

    def _ctx(self, operation: str) -> dict[str, Any]:
        return {"appliance": self.target.appliance, "connection": self.target.name, "operation": operation}

    def _ssl(self) -> ssl.SSLContext | bool:
        if urlsplit(self._url).scheme != "https":
            return True
        if self.reach.broker_ca_pem:
            return ssl.create_default_context(cadata=self.reach.broker_ca_pem)
        return ssl.create_default_context(cafile=certifi.where())

    async def _ensure_client(self) -> httpx.AsyncClient:
        if self._closed:
            raise TransportError("broker transport is closed", transient=True)
        async with self._lock:
            if self._client is None:
                verify = await asyncio.to_thread(self._ssl)
                self._client = httpx.AsyncClient(
                    verify=verify,
                    trust_env=False,
                    timeout=httpx.Timeout(self.reach.broker_timeout, connect=10.0),
                    headers={"Authorization": f"Bearer {self._token}"},
                )
            return self._client

    def _slot(self) -> AbstractAsyncContextManager[None]:
        return self.limiter.slot() if self.limiter is not None else nullcontext()

    # ------------------------------------------------------------------ public

    async def send(self, req: HttpRequest, *, operation: str, idempotent: bool = True) -> RawResponse:
        if not isinstance(self.target, HttpSettings):
            raise TypeError("this broker transport relays SSH, not HTTP")
        body = {
            "version": wire.VERSION,
            "operation": operation,
            "idempotent": idempotent,
            "target": wire.encode(self.target),
            "request": wire.encode(req),
        }
        return await self._relay("http", body, operation, idempotent)

    async def run(self, cmds: CliCommands, *, operation: str) -> RawResponse:
        if not isinstance(self.target, SshSettings):
            raise TypeError("this broker transport relays HTTP, not SSH")
        target = wire.encode(self.target)
        if self._host_key and not (self.target.host_key or self.target.known_hosts):
            target["host_key"] = self._host_key  # pin what the broker saw first
        body = {
            "version": wire.VERSION,
            "operation": operation,
            "target": target,
            "commands": wire.encode(cmds),
        }
        return await self._relay("ssh", body, operation, False)

    async def aclose(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ relaying

    async def _relay(self, kind: str, body: dict[str, Any], operation: str, idempotent: bool) -> RawResponse:
        self.in_flight += 1
        self.last_used = time.monotonic()
        try:
            async with self._slot():
                return await self._post(kind, body, operation, idempotent)
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    async def _post(self, kind: str, body: dict[str, Any], operation: str, idempotent: bool) -> RawResponse:
        client = await self._ensure_client()
        ctx = self._ctx(operation)
        via = f"via broker {self._broker}: "
        try:
            resp = await client.post(f"{self._url}/v1/{kind}", json=body)
        except httpx.ConnectError as e:
            if "CERTIFICATE_VERIFY_FAILED" in str(e):
                raise VerificationError(
                    f"TLS certificate verify failed for broker {self._broker}", **ctx
                ) from None
            raise mark_not_delivered(
                TransportError(
                    f"cannot connect to broker {self._broker}: {self.mask(str(e))}", transient=True, **ctx
                )
            ) from None
        except httpx.ConnectTimeout:
            raise mark_not_delivered(
                TransportError(f"connect timeout to broker {self._broker}", transient=True, **ctx)
            ) from None
        except httpx.TimeoutException:
            landed = "" if idempotent else "; the request may have reached the device"
            raise TransportError(
                f"no answer from broker {self._broker} within {self.reach.broker_timeout:g}s{landed}",
                transient=True,
                **ctx,
            ) from None
        except httpx.HTTPError as e:
            raise TransportError(
                f"connection to broker {self._broker} failed: {type(e).__name__}", transient=True, **ctx
            ) from None
        if resp.status_code == 401:
            raise AuthenticationError(
                f"broker {self._broker} refused the token (HTTP 401)", status=401, **ctx
            )
        if resp.status_code == 403:
            raise TransportError(
                f"broker {self._broker} does not relay to this target: {self.mask(resp.text[:300])}",
                transient=False,
                status=403,
                **ctx,
            )
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransportError(
                f"broker {self._broker} answered HTTP {resp.status_code}",
                transient=True,
                status=resp.status_code,
                **ctx,
            )
        if resp.status_code != 200:
            raise TransportError(
                f"broker {self._broker} refused the request (HTTP {resp.status_code}): "
                f"{self.mask(resp.text[:300])}",
                transient=False,
                status=resp.status_code,
                **ctx,
            )
        try:
            data = resp.json()
        except ValueError:
            raise TransportError(
                f"broker {self._broker} did not answer JSON", transient=True, **ctx
            ) from None
        host_key = data.get("hostKey") if isinstance(data, dict) else None
        if isinstance(host_key, dict):
            line, fp = host_key.get("line"), host_key.get("fingerprint")
            if isinstance(line, str) and isinstance(fp, str):
                self._host_key, self._fingerprint = line, fp
        if isinstance(data, dict) and "error" in data:
            raise wire.decode_error(data["error"], mask=self.mask, via=via).with_context(**ctx)
        try:
            return wire.decode_response(data.get("response") if isinstance(data, dict) else None)
        except wire.WireError as e:
            raise TransportError(
                f"broker {self._broker} sent a malformed response: {e}", transient=True, **ctx
            ) from None
