"""HTTP(S) to an appliance's API: one pooled aiohttp session per appliance connection.

On aiohttp rather than httpx: device requests are the bulk of the operator's CPU on a big
fleet, and aiohttp costs a fraction of httpx per request (see `vnf_operator.k8s.client`).
SSL contexts are shared by every transport with the same CA (a small module-level cache).

Classification of outcomes (docs/transports.md):

- connect errors, connect/read timeouts, dropped connections, 429 and 5xx →
  `TransportError(transient=True)`; 429/503 carry `retry_after` from `Retry-After`. Where the
  request surely did not reach the device (connect failure or timeout, no free pooled
  connection, 429) the error is marked not delivered, so a create may be resent.
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
import json
import logging
import os
import re
import ssl
import time
from collections import OrderedDict
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import aiohttp
import certifi
from jsonpath_ng.ext.parser import parse as jsonpath_parse
from multidict import CIMultiDict

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
# aiohttp would label a POST without a declared type `application/octet-stream`; like httpx,
# send a Content-Type only for bodies that have one (set explicitly in `_build`).
_SKIP_AUTO_HEADERS = ("Content-Type",)

_SSL_CACHE_MAX = 64
_ssl_cache: OrderedDict[tuple[str | None, str | None], ssl.SSLContext] = OrderedDict()

# How browsers (and httpx) escape a Content-Disposition parameter of a form part.
_FORM_PARAM_ESCAPES = {'"': "%22", "\\": "\\\\"} | {chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B}
_FORM_PARAM_RE = re.compile("|".join(re.escape(c) for c in _FORM_PARAM_ESCAPES))


class Forwarder(Protocol):
    """Something that makes a device's host:port reachable at a local host:port (a jump host)."""

    async def forward(self, host: str, port: int) -> tuple[str, int]: ...


@dataclass(frozen=True)
class _Endpoint:
    base: str
    host_header: str | None
    sni: str | None


@dataclass(frozen=True)
class FormPart:
    """One part of a multipart/form-data body; without a file name it is a plain form field."""

    name: str
    content: bytes
    filename: str | None = None
    content_type: str | None = None


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


def _build_ssl_context(ca_pem: str | None, extra_ca_pem: str | None) -> ssl.SSLContext:
    if ca_pem:
        ctx = ssl.create_default_context(cadata=ca_pem)
    else:
        ctx = ssl.create_default_context(cafile=certifi.where())
    if extra_ca_pem:
        ctx.load_verify_locations(cadata=extra_ca_pem)
    return ctx


async def shared_ssl_context(ca_pem: str | None, extra_ca_pem: str | None = None) -> ssl.SSLContext:
    """A verifying context trusting `ca_pem` (certifi's bundle when none), shared by transports.

    Built in a worker thread on a miss only: certifi's bundle is ~20 ms of parsing. A context is
    safe to share between connections; the cache is small and bounded (least recently used out).
    Raises `ssl.SSLError` or `ValueError` for a bad PEM.
    """
    key = (ca_pem, extra_ca_pem)
    ctx = _ssl_cache.get(key)
    if ctx is not None:
        _ssl_cache.move_to_end(key)
        return ctx
    ctx = await asyncio.to_thread(_build_ssl_context, ca_pem, extra_ca_pem)
    _ssl_cache[key] = ctx
    while len(_ssl_cache) > _SSL_CACHE_MAX:
        _ssl_cache.popitem(last=False)
    return ctx


def _multipart_parts(req: HttpRequest) -> list[FormPart] | None:
    """The parts of a multipart body: a part without a file name is a plain form field."""
    if req.multipart is None:
        return None
    parts: list[FormPart] = []
    for part in req.multipart:
        if part.filename is None:
            parts.append(FormPart(part.name, part.content.encode()))
        else:
            ctype = part.content_type or "application/octet-stream"
            parts.append(FormPart(part.name, part.content.encode(), part.filename, ctype))
    return parts


def _form_param(name: str, value: str) -> str:
    return f'{name}="{_FORM_PARAM_RE.sub(lambda m: _FORM_PARAM_ESCAPES[m.group(0)], value)}"'


def encode_multipart(parts: list[FormPart], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, framed byte for byte as httpx frames it."""
    boundary = boundary or os.urandom(16).hex()
    chunks: list[bytes] = []
    for part in parts:
        head = f"--{boundary}\r\nContent-Disposition: form-data; {_form_param('name', part.name)}"
        if part.filename:
            head += "; " + _form_param("filename", part.filename)
        if part.content_type is not None:
            head += f"\r\nContent-Type: {part.content_type}"
        chunks += [head.encode() + b"\r\n\r\n", part.content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


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
    """The ssl module's own error under aiohttp's wrappers (which subclass `ssl.SSLError` too)."""
    for e in _cause_chain(exc):
        if isinstance(e, aiohttp.ClientError):
            continue
        if isinstance(e, ssl.SSLError) and not isinstance(e, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return e
    return None


def _decode(body: bytes, charset: str | None) -> str:
    """The body as text: its declared charset, else UTF-8; undecodable bytes replaced (as httpx)."""
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            pass
    return body.decode("utf-8", errors="replace")


def _headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    """Lower-case names, repeated headers joined with ", " (what the parsers have always seen)."""
    out: dict[str, str] = {}
    for name, value in resp.headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


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
        self._proxy: str | None = None
        self._proxy_scheme = ""
        self._proxy_auth: str | None = None
        if proxy:
            pp = urlsplit(proxy)
            self._proxy_scheme = pp.scheme
            if pp.username is not None:
                # aiohttp ignores credentials in a proxy URL: sent as a header (see `_request`).
                self._proxy_auth = _basic(unquote(pp.username), unquote(pp.password or ""))
            self._proxy = urlunsplit((pp.scheme, pp.netloc.rsplit("@", 1)[-1], pp.path, "", ""))
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
        self._session: aiohttp.ClientSession | None = None
        self._jar: aiohttp.CookieJar | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._client_lock = asyncio.Lock()
        self._login_lock = asyncio.Lock()
        self._session_headers: dict[str, str] = {}
        self._session_gen = 0
        self._logged_in = False
        self._closed = False
        self._active = 0  # requests holding or waiting for a pooled connection
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

    async def _ssl(self) -> ssl.SSLContext | bool:
        """What the connector verifies with; an https proxy is verified with the same context."""
        https_proxy = self._proxy_scheme == "https"
        if self._scheme != "https" and not https_proxy:
            return True  # no TLS anywhere
        if not self.settings.verify:
            return False
        ca_pem = self.settings.ca_pem if self._scheme == "https" else None
        try:
            return await shared_ssl_context(ca_pem or None, self._proxy_ca_pem if https_proxy else None)
        except (ssl.SSLError, ValueError) as e:
            raise VerificationError(
                f"the CA bundle for {self.target} is not valid PEM ({type(e).__name__})",
                appliance=self.settings.appliance,
                connection=self.settings.name,
            ) from None

    def _timeout(self, read: float) -> aiohttp.ClientTimeout:
        """`connect` bounds the wait for a pooled connection plus connecting (httpx: pool = read)."""
        timeout = self._timeouts.get(read)
        if timeout is None:
            connect = self.settings.connect_timeout
            timeout = aiohttp.ClientTimeout(
                total=None, connect=read + connect, sock_connect=connect, sock_read=read
            )
            self._timeouts[read] = timeout
        return timeout

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise TransportError("transport is closed", transient=True, **self._ctx(""))
        if self._session is not None:
            return self._session
        async with self._client_lock:
            if self._session is None:
                if self._proxy is not None and self._proxy_scheme not in ("http", "https"):
                    raise TransportError(
                        f"HTTP(S) to {self.target} cannot go through a {self._proxy_scheme} proxy "
                        "(http:// or https:// proxies only)",
                        transient=False,
                        **self._ctx(""),
                    )
                verify = await self._ssl()
                s = self.settings
                self._jar = aiohttp.CookieJar(unsafe=True)  # devices are addressed by IP
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(
                        ssl=verify, limit=s.max_connections, keepalive_timeout=60.0
                    ),
                    cookie_jar=self._jar,
                    proxy=self._proxy,
                    trust_env=False,
                    skip_auto_headers=_SKIP_AUTO_HEADERS,
                    timeout=self._timeout(s.read_timeout),
                )
            return self._session

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
        session = self._session
        if session is not None and self._logged_in and isinstance(auth, HttpSessionAuth) and auth.logout:
            try:
                endpoint = await self._endpoint()
                resp = await self._request(
                    session,
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
                    resp.status,
                )
            except TransportError as e:
                log.info("%s/%s: logout failed: %s", self.settings.appliance, self.settings.name, e)
        self._logged_in = False
        self._session_headers = {}
        if session is not None:
            self._session = None
            await session.close()
        for res in self.owned:
            await res.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ sending

    async def _send(self, req: HttpRequest, *, operation: str, idempotent: bool) -> RawResponse:
        session = await self._ensure_session()
        endpoint = await self._endpoint()
        auth = self.settings.auth
        is_session = isinstance(auth, HttpSessionAuth)
        if is_session and not self._logged_in:
            await self._login(session, endpoint, self._session_gen, operation)
        gen = self._session_gen
        resp = await self._request(session, endpoint, req, operation=operation, idempotent=idempotent)
        if is_session and resp.status in (401, 403):
            log.info(
                "%s/%s: HTTP %d on %s, logging in again",
                self.settings.appliance,
                self.settings.name,
                resp.status,
                operation,
            )
            await self._login(session, endpoint, gen, operation)
            resp = await self._request(session, endpoint, req, operation=operation, idempotent=idempotent)
        if resp.status in (401, 403):
            raise AuthenticationError(
                f"{self.target} refused the credentials (HTTP {resp.status})"
                + (" after logging in again" if is_session else ""),
                status=resp.status,
                device_message=self._device_text(resp.text),
                **self._ctx(operation),
            )
        self._raise_for_transient(resp, operation)
        return resp

    def _raise_for_transient(self, resp: RawResponse, operation: str) -> None:
        status = resp.status or 0
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("retry-after"))
            err = TransportError(
                f"{self.target} answered HTTP {status}"
                + (f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""),
                transient=True,
                status=status,
                retry_after=retry_after,
                device_message=self._device_text(resp.text),
                **self._ctx(operation),
            )
            if status == 429:
                # Too Many Requests: the device did not process it, a create may be resent.
                mark_not_delivered(err)
            raise err

    def _build(
        self, endpoint: _Endpoint, req: HttpRequest, *, with_auth: bool
    ) -> tuple[str, str, CIMultiDict[str], bytes | None]:
        """Method, URL, headers and body of a request, framed as httpx framed them."""
        s = self.settings
        method = req.method.upper()
        path = req.path if req.path.startswith("/") or not req.path else "/" + req.path
        params: dict[str, str] = dict(req.query)
        headers: CIMultiDict[str] = CIMultiDict(s.headers)
        json_body: Any = req.json
        form: dict[str, str] | None = dict(req.form) if req.form is not None else None
        content = req.content
        parts = _multipart_parts(req)
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
            elif parts is not None:
                parts.append(FormPart(auth.field, auth.value.encode()))
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
        if self._proxy_auth is not None and self._scheme == "http":
            headers["Proxy-Authorization"] = self._proxy_auth  # plain HTTP goes to the proxy as is
        # Same precedence as httpx: content, multipart, form, JSON; empty forms send no body.
        body: bytes | None = None
        ctype: str | None = None
        if content is not None:
            body = content.encode()
        elif parts:
            body, ctype = encode_multipart(parts)
        elif form:
            body, ctype = urlencode(form).encode(), "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            ctype = "application/json"
        if ctype is not None:
            headers.setdefault("Content-Type", ctype)
        url = endpoint.base + path
        if params:
            url += ("&" if "?" in path else "?") + urlencode(params)
        return method, url, headers, body

    async def _request(
        self,
        session: aiohttp.ClientSession,
        endpoint: _Endpoint,
        req: HttpRequest,
        *,
        operation: str,
        idempotent: bool,
        with_auth: bool = True,
        read_timeout: float | None = None,
    ) -> RawResponse:
        method, url, headers, body = self._build(endpoint, req, with_auth=with_auth)
        read = read_timeout if read_timeout is not None else (req.timeout or self.settings.read_timeout)
        proxy_headers = None
        if self._proxy_auth is not None and self._scheme == "https":
            proxy_headers = {"Proxy-Authorization": self._proxy_auth}  # on the CONNECT only
        queued = self._active >= self.settings.max_connections
        self._active += 1
        started = time.perf_counter()
        try:
            resp = await session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._timeout(read),
                server_hostname=endpoint.sni,
                proxy_headers=proxy_headers,
            )
            try:
                raw = await resp.read()
            finally:
                resp.release()
        except aiohttp.ConnectionTimeoutError:
            what = (
                f"no free connection to {self.target} in the pool"
                if queued
                else f"connect timeout to {self.target} after {self.settings.connect_timeout:g}s"
            )
            raise mark_not_delivered(TransportError(what, transient=True, **self._ctx(operation))) from None
        except aiohttp.ClientHttpProxyError as e:
            raise mark_not_delivered(
                TransportError(
                    f"proxy refused the connection to {self.target}: {self.mask(f'{e.status} {e.message}')}",
                    transient=True,
                    **self._ctx(operation),
                )
            ) from None
        except aiohttp.ClientConnectorError as e:
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
                    **self._ctx(operation),
                ) from None
            why = str(e.os_error) or type(e.os_error).__name__
            raise mark_not_delivered(
                TransportError(
                    f"cannot connect to {self.target}: {self.mask(why)}",
                    transient=True,
                    **self._ctx(operation),
                )
            ) from None
        except TimeoutError:  # aiohttp's SocketTimeoutError: no data within sock_read
            landed = "" if idempotent else "; the request may have reached the device"
            raise TransportError(
                f"read timeout: no response from {self.target} within {read:g}s{landed}",
                transient=True,
                **self._ctx(operation),
            ) from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as e:
            raise TransportError(
                f"bad request URL: {self.mask(str(e))}", transient=False, **self._ctx(operation)
            ) from None
        except aiohttp.ClientError as e:
            raise TransportError(
                f"connection to {self.target} failed: {type(e).__name__}: {self.mask(str(e))}",
                transient=True,
                **self._ctx(operation),
            ) from None
        finally:
            self._active -= 1
        return RawResponse(
            status=resp.status,
            headers=_headers(resp),
            text=_decode(raw, resp.charset),
            elapsed=time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ session auth

    async def _login(
        self, session: aiohttp.ClientSession, endpoint: _Endpoint, gen: int, operation: str
    ) -> None:
        auth = self.settings.auth
        assert isinstance(auth, HttpSessionAuth) and self._jar is not None
        async with self._login_lock:
            if self._session_gen != gen and self._logged_in:
                return  # another request logged in meanwhile
            if self.limiter is not None:
                await self.limiter.token()
            self._jar.clear()
            self._session_headers = {}
            self._logged_in = False
            ctx = self._ctx(operation)
            resp = await self._request(
                session, endpoint, auth.login, operation=operation, idempotent=True, with_auth=False
            )
            self.logins += 1
            # The jar was emptied above: what it holds now came with the login answer.
            cookies = {m.key: m.value for m in self._jar}
            for value in cookies.values():
                self.settings.masker.add(value, _unquote_cookie(value))
            status = resp.status or 0
            if status == 429 or status >= 500:
                self._raise_for_transient(resp, operation)
            if not 200 <= status < 300:
                raise AuthenticationError(
                    f"session login to {self.target} failed (HTTP {status})",
                    status=status,
                    device_message=self._device_text(resp.text),
                    **ctx,
                )
            body: Any = None
            if auth.token_jsonpath or auth.csrf_jsonpath:
                try:
                    body = json.loads(resp.text)
                except ValueError:
                    raise AuthenticationError(
                        f"session login to {self.target} did not answer JSON", status=status, **ctx
                    ) from None
            headers: dict[str, str] = {}
            if auth.token_jsonpath:
                token = _first_jsonpath(body, auth.token_jsonpath)
                if token in (None, ""):
                    raise AuthenticationError(
                        f"session login to {self.target} returned no token at {auth.token_jsonpath}",
                        status=status,
                        **ctx,
                    )
                self.settings.masker.add(str(token))
                headers[auth.token_header] = f"{auth.token_prefix}{token}"
            if auth.csrf_header:
                csrf: Any = None
                if auth.csrf_cookie:
                    cookie = cookies.get(auth.csrf_cookie)
                    csrf = _unquote_cookie(cookie) if cookie is not None else None
                elif auth.csrf_jsonpath:
                    csrf = _first_jsonpath(body, auth.csrf_jsonpath)
                if csrf in (None, ""):
                    source = f"cookie {auth.csrf_cookie}" if auth.csrf_cookie else auth.csrf_jsonpath
                    raise AuthenticationError(
                        f"session login to {self.target} returned no CSRF token ({source})",
                        status=status,
                        **ctx,
                    )
                self.settings.masker.add(str(csrf))
                headers[auth.csrf_header] = str(csrf)
            self._session_headers = headers
            self._session_gen += 1
            self._logged_in = True
            log.debug("%s/%s: logged in to %s", self.settings.appliance, self.settings.name, self.target)
