"""Connection settings the engine hands to the transports.

These are plain values: every template in the dictionary has already been rendered by the core and
every credential resolved. Secret fields are left out of `repr()` and are added to the settings'
`masker` when the settings are made, so any text a transport puts into an exception or a log line
can be masked with `settings.masker`.

Equality ignores the masker, so two settings built from the same dictionary, appliance and
credentials compare equal, and a rotated credential makes them differ (the pool reconnects).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from vnf_operator.core.model import Limits
from vnf_operator.core.rendered import HttpRequest
from vnf_operator.core.secrets import SecretMasker

DEFAULT_PROMPT = r"[\r\n][\w.@()/:-]+[#>$%] ?$"
DEFAULT_ERROR_PATTERNS: tuple[str, ...] = (r"^%\s?(Invalid|Incomplete|Ambiguous|Error)",)


def _masker() -> SecretMasker:
    return SecretMasker()


# --------------------------------------------------------------------------- HTTP authentication


@dataclass(frozen=True)
class HttpBasicAuth:
    username: str
    password: str = field(repr=False)

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@dataclass(frozen=True)
class HttpBearerAuth:
    token: str = field(repr=False)

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)


@dataclass(frozen=True)
class HttpHeaderAuth:
    """An API key in a request header, e.g. `X-API-Key`."""

    name: str
    value: str = field(repr=False)

    def secrets(self) -> tuple[str, ...]:
        return (self.value,)


@dataclass(frozen=True)
class HttpBodyKeyAuth:
    """An API key carried in every request body (VyOS `key`).

    Added to a JSON object body or to form fields; a request without a body gets it as a form
    field (POST/PUT/PATCH/DELETE) or as a query parameter (GET/HEAD).
    """

    field: str
    value: str = dataclasses.field(repr=False)

    def secrets(self) -> tuple[str, ...]:
        return (self.value,)


@dataclass(frozen=True)
class HttpSessionAuth:
    """Log in once, carry a token (header) or cookies, plus an optional CSRF header.

    `token_jsonpath` empty: the session rides on the cookies the login set. The CSRF value comes
    from the cookie `csrf_cookie` or from `csrf_jsonpath` in the login response and is sent in
    `csrf_header`. On 401 (or 403) the transport logs in again once; `logout` runs on close.
    The login request carries the credentials: it is never logged, and the secrets inside it must
    be in the settings' masker (the engine's masker holds every credential).
    """

    login: HttpRequest = field(repr=False)
    token_jsonpath: str = ""
    token_header: str = "Authorization"
    token_prefix: str = "Bearer "
    csrf_cookie: str = ""
    csrf_header: str = ""
    csrf_jsonpath: str = ""
    logout: HttpRequest | None = field(default=None, repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every string in the login/logout requests' bodies, headers and queries.

        The login carries the password, but which field holds it is the dictionary's business:
        masking every value (the user name too) keeps a device that echoes its input from
        leaking the password into an error.
        """
        found: list[str] = []
        for req in (self.login, self.logout):
            if req is not None:
                _strings(req.json, found)
                _strings(req.form, found)
                _strings(req.content, found)
                _strings(dict(req.headers), found)
                _strings(dict(req.query), found)
        return tuple(found)


def _strings(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            _strings(v, into)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings(v, into)


HttpAuthSettings = HttpBasicAuth | HttpBearerAuth | HttpHeaderAuth | HttpBodyKeyAuth | HttpSessionAuth


# --------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class HttpSettings:
    """One HTTP(S) connection of one appliance.

    `base_url` is `scheme://host:port/basePath`. TLS is verified unless `verify` is False, against
    `ca_pem` (PEM text, one or more certificates) or the system CA bundle, and against
    `server_name` when the certificate names the device differently from the URL host.
    """

    name: str
    base_url: str
    appliance: str = ""
    verify: bool = True
    ca_pem: str | None = field(default=None, repr=False)
    server_name: str = ""
    auth: HttpAuthSettings | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_connections: int = 10
    """Pooled connections per appliance connection (the limiter usually caps lower)."""
    masker: SecretMasker = field(default_factory=_masker, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.auth is not None:
            self.masker.add(*self.auth.secrets())

    def with_appliance(self, appliance: str) -> HttpSettings:
        return dataclasses.replace(self, appliance=appliance)


@dataclass(frozen=True)
class SshSettings:
    """One SSH connection of one appliance.

    Host-key verification: `host_key` (one OpenSSH public key line, pinned) or `known_hosts`
    (OpenSSH known_hosts text). Only when neither is given and `trust_on_first_use` is set is the
    first key seen accepted; the transport then exposes it (`host_key_fingerprint`, `host_key_line`)
    for the operator to pin, and refuses any other key afterwards.
    """

    name: str
    host: str
    port: int = 22
    username: str = ""
    appliance: str = ""
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    """An OpenSSH or PEM private key (text)."""
    private_key_passphrase: str | None = field(default=None, repr=False)
    host_key: str | None = None
    known_hosts: str | None = field(default=None, repr=False)
    trust_on_first_use: bool = False
    trusted_fingerprint: str | None = None
    """With trust_on_first_use: the SHA256 fingerprint accepted on an earlier first use (from
    status.hostKeys), so a restart does not trust a changed key again."""
    mode: Literal["interactive", "exec"] = "interactive"
    prompt: str = DEFAULT_PROMPT
    config_prompt: str = ""
    on_connect: tuple[str, ...] = ()
    config_enter: tuple[str, ...] = ()
    config_exit: tuple[str, ...] = ()
    error_patterns: tuple[str, ...] = DEFAULT_ERROR_PATTERNS
    connect_timeout: float = 10.0
    command_timeout: float = 30.0
    keepalive_interval: float = 30.0
    keepalive_count_max: int = 3
    max_sessions: int | None = None
    """Concurrent sessions on the device; None: the appliance's `max_concurrency`."""
    term_width: int = 511
    masker: SecretMasker = field(default_factory=_masker, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.masker.add(*self.secrets())

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.private_key, self.private_key_passphrase) if s)

    def with_appliance(self, appliance: str) -> SshSettings:
        return dataclasses.replace(self, appliance=appliance)


# --------------------------------------------------------------------------- reach


@dataclass(frozen=True)
class JumpHostSettings:
    """An SSH bastion in front of the appliance. Its host key is verified like the target's."""

    host: str
    port: int = 22
    username: str = ""
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    host_key: str | None = None
    known_hosts: str | None = field(default=None, repr=False)
    trust_on_first_use: bool = False
    connect_timeout: float = 10.0
    keepalive_interval: float = 30.0
    keepalive_count_max: int = 3

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.private_key, self.private_key_passphrase) if s)


ReachMode = Literal["direct", "jumpHost", "proxy", "broker"]


@dataclass(frozen=True)
class ReachSettings:
    """How the operator gets to the appliance.

    - `direct`: open the connection from the operator.
    - `jumpHost`: SSH through `jump_host` (asyncssh tunnel); HTTP through a local port forward.
    - `proxy`: HTTP(S) through the proxy at `proxy_url` (CONNECT for HTTPS); SSH through the same
      proxy with HTTP CONNECT (`http://` proxies only).
    - `broker`: hand the rendered operation to a broker at `broker_url` (HTTPS, bearer token).
    """

    mode: ReachMode = "direct"
    jump_host: JumpHostSettings | None = None
    proxy_url: str | None = field(default=None, repr=False)
    proxy_ca_pem: str | None = field(default=None, repr=False)
    broker_url: str | None = None
    broker_token: str | None = field(default=None, repr=False)
    broker_ca_pem: str | None = field(default=None, repr=False)
    broker_server_name: str = ""
    broker_timeout: float = 120.0
    """Upper bound of one relayed operation (the broker applies the target's own timeouts)."""
    masker: SecretMasker = field(default_factory=_masker, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.jump_host is not None:
            self.masker.add(*self.jump_host.secrets())
        if self.broker_token:
            self.masker.add(self.broker_token)
        if self.proxy_url:
            password = urlsplit(self.proxy_url).password
            if password:
                self.masker.add(password)

    def validate(self) -> None:
        """Raise ValueError when the mode lacks what it needs."""
        if self.mode == "jumpHost" and self.jump_host is None:
            raise ValueError("reach mode jumpHost needs jump_host settings")
        if self.mode == "proxy" and not self.proxy_url:
            raise ValueError("reach mode proxy needs proxy_url")
        if self.mode == "broker" and not (self.broker_url and self.broker_token):
            raise ValueError("reach mode broker needs broker_url and broker_token")


DIRECT = ReachSettings()


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class LimitSettings:
    """Per-appliance rate and concurrency limits, and the retry policy."""

    requests_per_second: float = 10.0
    max_concurrency: int = 4
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    burst: float | None = None
    """Token-bucket capacity; None: one second's worth of requests (at least one)."""

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0:
            raise ValueError("requests_per_second must be > 0")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("backoff must be >= 0")

    @classmethod
    def from_model(
        cls, limits: Limits | None = None, overrides: Mapping[str, Any] | None = None
    ) -> LimitSettings:
        """The dictionary's `limits`, with an appliance's overrides (camelCase or snake_case keys)."""
        base = limits or Limits()
        values: dict[str, Any] = {
            "requests_per_second": base.requests_per_second,
            "max_concurrency": base.max_concurrency,
            "max_retries": base.max_retries,
            "backoff_base": base.backoff_base,
            "backoff_max": base.backoff_max,
        }
        known = {*values, "burst"}
        for key, value in (overrides or {}).items():
            snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
            if snake not in known:
                raise ValueError(f"unknown limit {key!r} (known: {', '.join(sorted(known))})")
            if value is not None:
                values[snake] = value
        return cls(**values)
