"""HTTP(S) to an appliance's API: one pooled httpx client per appliance connection.

Classification of outcomes (docs/transports.md):

- connect errors, connect/read/write timeouts, dropped connections, 429 and 5xx →
  `TransportError(transient=True)`; 429/503 carry `retry_after` from `Retry-After`.
- 401/403 → for session auth, log in again once and resend; still refused →
  `AuthenticationError`. Other auth modes: `AuthenticationError` at once.
- TLS certificate failures → `VerificationError` ("TLS certificate verify failed for host X").
- every other status, including other 4xx, is returned as a `RawResponse`: the core's parser
  decides from the body whether the device reported an error (many APIs answer 400 with a
  useful message, some answer 200 with an error inside).

Every text put into an exception is masked with the settings' masker.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import ssl
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpx
from jsonpath_ng.ext.parser import parse as jsonpath_parse

from vnf_operator.core.errors import AuthenticationError, TransportError, VerificationError
from vnf_operator.core.rendered import HttpRequest, RawResponse
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport import logsafe
from vnf_operator.transport.base import Closeable
from vnf_operator.transport.limits import Limiter
from vnf_operator.transport.retry import mark_not_delivered
from vnf_operator.transport.settings import (
    HttpBasicAuth,
    HttpBearerAuth,
    HttpBodyKeyAuth,
    HttpHeaderAuth,
    HttpSessionAuth,
    HttpSettings,
)

log = logging.getLogger(__name__)

DEVICE_TEXT_MAX = 500
_BODYLESS = frozenset({"GET", "HEAD"})


class Forwarder(Protocol):
    """Something that makes a device's host:port reachable at a local host:port (a jump host)."""

    async def forward(self, host: str, port: int) -> tuple[str, int]: ...


@dataclass(frozen=True)
class _Endpoint:
    base: str
    host_header: str | None
    sni: str | None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _multipart_files(req: HttpRequest) -> list[tuple[str, Any]] | None:
    """httpx `files=` for a multipart body: a part without a file name is a plain form field."""
    if req.multipart is None:
        return None
    files: list[tuple[str, Any]] = []
    for part in req.multipart:
        if part.filename is None:
            files.append((part.name, (None, part.content.encode())))
        else:
            ctype = part.content_type or "application/octet-stream"
            files.append((part.name, (part.filename, part.content.encode(), ctype)))
    return files


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _unquote_cookie(value: str) -> str:
    """A cookie value without its quotes (FortiOS sends `ccsrftoken="..."`)."""
    while len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"')
    return value


def _first_jsonpath(data: Any, expr: str) -> Any:
    matches = jsonpath_parse(expr).find(data)
    return matches[0].value if matches else None


def _cause_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _tls_problem(exc: BaseException) -> ssl.SSLError | None:
    for e in _cause_chain(exc):
        if isinstance(e, ssl.SSLError) and not isinstance(e, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return e
    return None


class HttpTransport:
    """Sends rendered `HttpRequest`s to one connection of one appliance."""

    kind = "http"

    def __init__(
        self,
        settings: HttpSettings,
        *,
        limiter: Limiter | None = None,
        proxy: str | None = None,
        proxy_ca_pem: str | None = None,
        forwarder: Forwarder | None = None,
        masker: SecretMasker | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self._proxy = proxy
        self._proxy_ca_pem = proxy_ca_pem
        self._forwarder = forwarder
        self._extra_masker = masker
        logsafe.register(settings.masker, masker)
        parts = urlsplit(settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"connection {settings.name}: base_url must be http(s)://host[:port][/path]")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._netloc = parts.netloc.rsplit("@", 1)[-1]
        self._base_path = parts.path.rstrip("/")
        self._client: httpx.AsyncClient | None = None
        self._client_lock = asyncio.Lock()
        self._login_lock = asyncio.Lock()
        self._session_headers: dict[str, str] = {}
        self._session_gen = 0
        self._logged_in = False
        self._closed = False
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.logins = 0
        """How many session logins this transport made (metrics, tests)."""
        self.owned: list[Closeable] = []
        """Resources closed with this transport (a jump host made only for it)."""

    # ------------------------------------------------------------------ helpers

    @property
    def target(self) -> str:
        return f"{self._host}:{self._port}"

    def mask(self, text: str) -> str:
        text = self.settings.masker(text)
        return self._extra_masker(text) if self._extra_masker is not None else text

    def _ctx(self, operation: str) -> dict[str, Any]:
        return {
            "appliance": self.settings.appliance,
            "connection": self.settings.name,
            "operation": operation,
        }

    def _device_text(self, text: str) -> str:
        return self.mask(text[:DEVICE_TEXT_MAX].strip())

    def _ssl_context(self) -> ssl.SSLContext | bool:
        """Built in a worker thread: loading a CA bundle reads files."""
        if self._scheme != "https":
            return True
        if not self.settings.verify:
            return False
        try:
            if self.settings.ca_pem:
                return ssl.create_default_context(cadata=self.settings.ca_pem)
            return ssl.create_default_context(cafile=certifi.where())
        except (ssl.SSLError, ValueError) as e:
            raise VerificationError(
                f"the CA bundle for {self.target} is not valid PEM ({type(e).__name__})",
                appliance=self.settings.appliance,
                connection=self.settings.name,
            ) from None

    async def _ensure_client(self) -> httpx.AsyncClient:
        if self._closed:
            raise TransportError("transport is closed", transient=True, **self._ctx(""))
        async with self._client_lock:
            if self._client is None:
                verify = await asyncio.to_thread(self._ssl_context)
                proxy: httpx.Proxy | None = None
                if self._proxy:
                    proxy_ssl = None
                    if self._proxy_ca_pem:
                        proxy_ssl = await asyncio.to_thread(
                            ssl.create_default_context, cadata=self._proxy_ca_pem
                        )
                    proxy = httpx.Proxy(self._proxy, ssl_context=proxy_ssl)
                s = self.settings
                self._client = httpx.AsyncClient(
                    verify=verify,
                    proxy=proxy,
                    trust_env=False,
                    follow_redirects=False,
                    headers=dict(s.headers),
                    timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
                    limits=httpx.Limits(
                        max_connections=s.max_connections,
                        max_keepalive_connections=s.max_connections,
                        keepalive_expiry=60.0,
                    ),
                )
            return self._client

    async def _endpoint(self) -> _Endpoint:
        sni = self.settings.server_name or None
        if self._forwarder is None:
            return _Endpoint(
                base=urlunsplit((self._scheme, self._netloc, self._base_path, "", "")),
                host_header=None,
                sni=sni,
            )
        lhost, lport = await self._forwarder.forward(self._host, self._port)
        return _Endpoint(
            base=urlunsplit((self._scheme, f"{lhost}:{lport}", self._base_path, "", "")),
            host_header=self._netloc,
            sni=(sni or self._host) if self._scheme == "https" else None,
        )

    def _slot(self) -> AbstractAsyncContextManager[None]:
        return self.limiter.slot() if self.limiter is not None else nullcontext()

    # ------------------------------------------------------------------ public

    async def send(self, req: HttpRequest, *, operation: str, idempotent: bool = True) -> RawResponse:
        """Send one request; see the module docstring for what raises and what returns."""
        self.in_flight += 1
        self.last_used = time.monotonic()
        try:
            async with self._slot():
                return await self._send(req, operation=operation, idempotent=idempotent)
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    async def aclose(self) -> None:
        """Log out (session auth) and close the pooled connections."""
        if self._closed:
            return
        self._closed = True
        auth = self.settings.auth
        client = self._client
        if client is not None and self._logged_in and isinstance(auth, HttpSessionAuth) and auth.logout:
            try:
                endpoint = await self._endpoint()
                resp = await self._request(
                    client,
                    endpoint,
                    auth.logout,
                    operation="logout",
                    idempotent=True,
                    read_timeout=self.settings.connect_timeout,
                )
                log.debug(
                    "%s/%s: logged out (HTTP %d)",
                    self.settings.appliance,
                    self.settings.name,
                    resp.status_code,
                )
            except TransportError as e:
                log.info("%s/%s: logout failed: %s", self.settings.appliance, self.settings.name, e)
        self._logged_in = False
        self._session_headers = {}
        if client is not None:
            self._client = None
            await client.aclose()
        for res in self.owned:
            await res.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ sending

    async def _send(self, req: HttpRequest, *, operation: str, idempotent: bool) -> RawResponse:
        client = await self._ensure_client()
        endpoint = await self._endpoint()
        auth = self.settings.auth
        session = isinstance(auth, HttpSessionAuth)
        if session and not self._logged_in:
            await self._login(client, endpoint, self._session_gen, operation)
        gen = self._session_gen
        resp = await self._request(client, endpoint, req, operation=operation, idempotent=idempotent)
        if session and resp.status_code in (401, 403):
            log.info(
                "%s/%s: HTTP %d on %s, logging in again",
                self.settings.appliance,
                self.settings.name,
                resp.status_code,
                operation,
            )
            await self._login(client, endpoint, gen, operation)
            resp = await self._request(client, endpoint, req, operation=operation, idempotent=idempotent)
        if resp.status_code in (401, 403):
            raise AuthenticationError(
                f"{self.target} refused the credentials (HTTP {resp.status_code})"
                + (" after logging in again" if session else ""),
                status=resp.status_code,
                device_message=self._device_text(resp.text),
                **self._ctx(operation),
            )
        self._raise_for_transient(resp, operation)
        return RawResponse(
            status=resp.status_code,
            headers=dict(resp.headers.items()),
            text=resp.text,
            elapsed=resp.elapsed.total_seconds(),
        )

    def _raise_for_transient(self, resp: httpx.Response, operation: str) -> None:
        if resp.status_code == 429 or resp.status_code >= 500:
            retry_after = parse_retry_after(resp.headers.get("retry-after"))
            err = TransportError(
                f"{self.target} answered HTTP {resp.status_code}"
                + (f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""),
                transient=True,
                status=resp.status_code,
                retry_after=retry_after,
                device_message=self._device_text(resp.text),
                **self._ctx(operation),
            )
            if resp.status_code == 429:
                # Too Many Requests: the device did not process it, a create may be resent.
                mark_not_delivered(err)
            raise err

    def _build(
        self,
        client: httpx.AsyncClient,
        endpoint: _Endpoint,
        req: HttpRequest,
        *,
        with_auth: bool,
        read_timeout: float | None,
    ) -> httpx.Request:
        s = self.settings
        method = req.method.upper()
        path = req.path if req.path.startswith("/") or not req.path else "/" + req.path
        url = endpoint.base + path
        params: dict[str, str] = dict(req.query)
        headers: dict[str, str] = {}
        json_body: Any = req.json
        form: dict[str, str] | None = dict(req.form) if req.form is not None else None
        content = req.content
        files = _multipart_files(req)
        auth = s.auth if with_auth else None
        if isinstance(auth, HttpBasicAuth):
            headers["Authorization"] = _basic(auth.username, auth.password)
        elif isinstance(auth, HttpBearerAuth):
            headers["Authorization"] = f"Bearer {auth.token}"
        elif isinstance(auth, HttpHeaderAuth):
            headers[auth.name] = auth.value
        elif isinstance(auth, HttpBodyKeyAuth):
            if isinstance(json_body, dict):
                json_body = {**json_body, auth.field: auth.value}
            elif form is not None:
                form[auth.field] = auth.value
            elif files is not None:
                files.append((auth.field, (None, auth.value.encode())))
            elif json_body is None and content is None:
                if method in _BODYLESS:
                    params[auth.field] = auth.value
                else:
                    form = {auth.field: auth.value}
            else:
                raise TransportError(
                    f"body-key auth cannot add `{auth.field}` to a non-object body",
                    transient=False,
                    **self._ctx(""),
                )
        elif isinstance(auth, HttpSessionAuth):
            headers.update(self._session_headers)
        headers.update(req.headers)
        if endpoint.host_header is not None:
            headers["Host"] = endpoint.host_header
        read = read_timeout if read_timeout is not None else (req.timeout or s.read_timeout)
        extensions: dict[str, Any] = {
            "timeout": httpx.Timeout(read, connect=s.connect_timeout).as_dict(),
        }
        if endpoint.sni:
            extensions["sni_hostname"] = endpoint.sni
        return client.build_request(
            method,
            url,
            params=params or None,
            headers=headers,
            json=json_body,
            data=form,
            content=content,
            files=files,
            extensions=extensions,
        )

    async def _request(
        self,
        client: httpx.AsyncClient,
        endpoint: _Endpoint,
        req: HttpRequest,
        *,
        operation: str,
        idempotent: bool,
        with_auth: bool = True,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        ctx = self._ctx(operation)
        request = self._build(client, endpoint, req, with_auth=with_auth, read_timeout=read_timeout)
        try:
            return await client.send(request)
        except httpx.ConnectTimeout:
            raise mark_not_delivered(
                TransportError(
                    f"connect timeout to {self.target} after {self.settings.connect_timeout:g}s",
                    transient=True,
                    **ctx,
                )
            ) from None
        except httpx.ConnectError as e:
            problem = _tls_problem(e)
            if problem is not None:
                reason = getattr(problem, "verify_message", None) or problem.reason or str(problem)
                what = (
                    "TLS certificate verify failed"
                    if isinstance(problem, ssl.SSLCertVerificationError)
                    else "TLS handshake failed"
                )
                raise VerificationError(
                    f"{what} for host {self.settings.server_name or self._host} "
                    f"({self.target}): {self.mask(str(reason))}",
                    **ctx,
                ) from None
            raise mark_not_delivered(
                TransportError(
                    f"cannot connect to {self.target}: {self.mask(str(e) or type(e).__name__)}",
                    transient=True,
                    **ctx,
                )
            ) from None
        except httpx.ProxyError as e:
            raise mark_not_delivered(
                TransportError(
                    f"proxy refused the connection to {self.target}: {self.mask(str(e))}",
                    transient=True,
                    **ctx,
                )
            ) from None
        except httpx.PoolTimeout:
            raise mark_not_delivered(
                TransportError(f"no free connection to {self.target} in the pool", transient=True, **ctx)
            ) from None
        except httpx.TimeoutException as e:
            kind = "read" if isinstance(e, httpx.ReadTimeout) else "write"
            landed = "" if idempotent else "; the request may have reached the device"
            limit = request.extensions["timeout"].get(kind)
            raise TransportError(
                f"{kind} timeout: no response from {self.target} within {limit:g}s{landed}",
                transient=True,
                **ctx,
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise TransportError(f"bad request URL: {self.mask(str(e))}", transient=False, **ctx) from None
        except httpx.HTTPError as e:
            raise TransportError(
                f"connection to {self.target} failed: {type(e).__name__}: {self.mask(str(e))}",
                transient=True,
                **ctx,
            ) from None

    # ------------------------------------------------------------------ session auth

    async def _login(self, client: httpx.AsyncClient, endpoint: _Endpoint, gen: int, operation: str) -> None:
        auth = self.settings.auth
        assert isinstance(auth, HttpSessionAuth)
        async with self._login_lock:
            if self._session_gen != gen and self._logged_in:
                return  # another request logged in meanwhile
            if self.limiter is not None:
                await self.limiter.token()
            client.cookies.clear()
            self._session_headers = {}
            self._logged_in = False
            ctx = self._ctx(operation)
            resp = await self._request(
                client, endpoint, auth.login, operation=operation, idempotent=True, with_auth=False
            )
            self.logins += 1
            for value in resp.cookies.values():
                self.settings.masker.add(value)
            if resp.status_code == 429 or resp.status_code >= 500:
                self._raise_for_transient(resp, operation)
            if not 200 <= resp.status_code < 300:
                raise AuthenticationError(
                    f"session login to {self.target} failed (HTTP {resp.status_code})",
                    status=resp.status_code,
                    device_message=self._device_text(resp.text),
                    **ctx,
                )
            body: Any = None
            if auth.token_jsonpath or auth.csrf_jsonpath:
                try:
                    body = resp.json()
                except ValueError:
                    raise AuthenticationError(
                        f"session login to {self.target} did not answer JSON", status=resp.status_code, **ctx
                    ) from None
            headers: dict[str, str] = {}
            if auth.token_jsonpath:
                token = _first_jsonpath(body, auth.token_jsonpath)
                if token in (None, ""):
                    raise AuthenticationError(
                        f"session login to {self.target} returned no token at {auth.token_jsonpath}",
                        status=resp.status_code,
                        **ctx,
                    )
                self.settings.masker.add(str(token))
                headers[auth.token_header] = f"{auth.token_prefix}{token}"
            if auth.csrf_header:
                csrf: Any = None
                if auth.csrf_cookie:
                    csrf = client.cookies.get(auth.csrf_cookie)
                    if isinstance(csrf, str):
                        csrf = _unquote_cookie(csrf)
                elif auth.csrf_jsonpath:
                    csrf = _first_jsonpath(body, auth.csrf_jsonpath)
                if csrf in (None, ""):
                    source = f"cookie {auth.csrf_cookie}" if auth.csrf_cookie else auth.csrf_jsonpath
                    raise AuthenticationError(
                        f"session login to {self.target} returned no CSRF token ({source})",
                        status=resp.status_code,
                        **ctx,
                    )
                self.settings.masker.add(str(csrf))
                headers[auth.csrf_header] = str(csrf)
            self._session_headers = headers
            self._session_gen += 1
            self._logged_in = True
            log.debug("%s/%s: logged in to %s", self.settings.appliance, self.settings.name, self.target)
