"""The provider dictionary language, v1.

A provider dictionary tells the generic engine how to reach a vendor's appliance, how to tell it
is healthy, how to bring it up, and which services it offers with which operations. The same
document is a file in `providers/` (a `VnfProvider` manifest whose `spec` is the dictionary) and
the body of a `VnfProvider` in the cluster.

YAML keys are camelCase; user-chosen names (connections, services, fields, operations) are free.
Every model forbids unknown keys so a typo is an error, not a silently ignored setting.

Templates: every string marked "template" is Jinja2 (sandboxed, strict undefined); see
docs/language.md for the context. A string leaf of a structured `body` is a template too; a leaf
that is exactly one expression keeps the value's type (a port stays a number in JSON).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

LANGUAGE_VERSION = "v1"
API_VERSION = "vnf.operators.dev/v1alpha1"

# Names of connections, services, operations, fields and credentials: safe in paths and templates.
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")]
Template = Annotated[str, Field(description="A Jinja2 template (sandboxed, strict undefined).")]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_attribute_docstrings=True,
    )


# --------------------------------------------------------------------------- general information


class CommitModel(StrEnum):
    LIVE = "live"
    """Every change takes effect at once (MikroTik, FortiOS, nftables)."""
    STAGED = "staged"
    """Changes are staged until a commit/apply step (OPNsense `apply`, pfSense apply endpoints)."""
    COMMIT_CONFIRM = "commitConfirm"
    """Staged, with a commit that reverts itself unless confirmed (VyOS `commit-confirm`)."""


class Capabilities(_Model):
    commit_model: CommitModel = CommitModel.LIVE
    """How changes take effect on the device."""
    rollback: bool = False
    """The device can roll back to an earlier configuration natively."""
    batching: bool = False
    """Several changes can go in one request or one commit."""


class Info(_Model):
    name: str
    """Human-readable provider name, e.g. `OPNsense firewall`."""
    vendor: str
    product: str = ""
    version: str = Field("0.1.0", pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
    """The dictionary's own semantic version (not the device's)."""
    supported_versions: list[str] = Field(default_factory=list)
    """Device software versions this dictionary is known to work with, e.g. `>=24.7`."""
    description: str = ""
    maintainer: str = ""
    documentation: str = ""
    capabilities: Capabilities = Field(default_factory=Capabilities)


class Credential(_Model):
    description: str = ""
    required: bool = True
    bootstrap: bool = False
    """Read from the appliance's bootstrap-credentials Secret instead of its credentials Secret."""


# --------------------------------------------------------------------------- connections


class TlsSettings(_Model):
    verify: bool = True
    """Verify the device certificate. The appliance may supply a CA; skipping needs the appliance's say."""
    server_name: str = ""
    """Name to verify the certificate against, when it differs from the management host."""


class BasicAuth(_Model):
    type: Literal["basic"]
    username: Template
    password: Template


class BearerAuth(_Model):
    type: Literal["bearer"]
    token: Template


class HeaderAuth(_Model):
    type: Literal["header"]
    """An API key in a request header, e.g. `X-API-Key`."""
    header: str
    value: Template


class BodyKeyAuth(_Model):
    type: Literal["bodyKey"]
    """An API key inside every JSON request body (e.g. VyOS `key`)."""
    field: str
    value: Template


class SessionAuth(_Model):
    """Log in once, carry a token or cookie (and a CSRF header), re-login on 401, log out on close."""

    type: Literal["session"]
    login: HttpCall
    token: str = ""
    """JSONPath into the login response giving the token (empty: the session rides on cookies)."""
    token_header: str = "Authorization"
    token_prefix: str = "Bearer "
    csrf_cookie: str = ""
    """Cookie whose value is sent back as the CSRF header (FortiOS `ccsrftoken`)."""
    csrf_header: str = ""
    csrf_from: str = ""
    """JSONPath into the login response giving a CSRF token, alternatively to a cookie."""
    logout: HttpCall | None = None


HttpAuth = Annotated[
    BasicAuth | BearerAuth | HeaderAuth | BodyKeyAuth | SessionAuth, Field(discriminator="type")
]


class Reach(_Model):
    """How the operator gets to the device by default; an appliance may override the mode."""

    mode: Literal["direct", "jumpHost", "proxy", "broker"] = "direct"


class HttpConnection(_Model):
    type: Literal["http", "https"]
    port: int | None = Field(None, ge=1, le=65535)
    """Default port; the appliance may override it per connection (`spec.management.ports`)."""
    base_path: str = ""
    """Prefix of every request path, e.g. `/api`."""
    tls: TlsSettings = Field(default_factory=TlsSettings)
    auth: HttpAuth | None = None
    headers: dict[str, Template] = Field(default_factory=dict)
    connect_timeout: Seconds = 5.0
    read_timeout: Seconds = 30.0
    reach: Reach = Field(default_factory=Reach)


class SshPrompts(_Model):
    prompt: str = r"[\r\n][\w.@()/:-]+[#>$%] ?$"
    """Regex matching the device prompt at the end of output."""
    config_prompt: str = ""
    """Regex matching the prompt in configuration mode (defaults to `prompt`)."""


class SshConnection(_Model):
    type: Literal["ssh"]
    port: int | None = Field(22, ge=1, le=65535)
    username: Template
    password: Template | None = None
    private_key: Template | None = None
    host_key: Template | None = None
    """A pinned host public key (`ssh-ed25519 AAAA...`); the appliance may also pin one or allow TOFU."""
    mode: Literal["interactive", "exec"] = "interactive"
    prompts: SshPrompts = Field(default_factory=SshPrompts)
    on_connect: list[str] = Field(default_factory=list)
    """Lines sent after login, e.g. `terminal length 0` to disable paging."""
    config_enter: list[str] = Field(default_factory=list)
    """Lines entering configuration mode, e.g. `configure terminal`."""
    config_exit: list[str] = Field(default_factory=list)
    """Lines leaving configuration mode, e.g. `end`."""
    error_patterns: list[str] = Field(default_factory=lambda: [r"^%\s?(Invalid|Incomplete|Ambiguous|Error)"])
    """Regexes that mark a line's output as an error on this device."""
    connect_timeout: Seconds = 10.0
    command_timeout: Seconds = 30.0
    keepalive_interval: Seconds = 30.0
    reach: Reach = Field(default_factory=Reach)

    @model_validator(mode="after")
    def _one_secret(self) -> SshConnection:
        if self.password is None and self.private_key is None:
            raise ValueError("needs `password` or `privateKey` (a template naming a credential)")
        return self


Connection = Annotated[HttpConnection | SshConnection, Field(discriminator="type")]


class Limits(_Model):
    requests_per_second: float = Field(10.0, gt=0)
    max_concurrency: int = Field(4, ge=1)
    """At most this many requests or sessions at once per appliance."""
    max_retries: int = Field(4, ge=0, le=20)
    backoff_base: Seconds = 0.5
    backoff_max: Seconds = 30.0


# --------------------------------------------------------------------------- calls and responses


class HttpCall(_Model):
    """An HTTP request. `path` is relative to the connection's base path; templated values in it
    are percent-encoded as one segment each, so a value cannot change the path."""

    connection: Name | None = None
    """Defaults to the provider's first HTTP connection."""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: Template
    query: dict[str, Template] = Field(default_factory=dict)
    headers: dict[str, Template] = Field(default_factory=dict)
    body: Any = None
    """Structured body sent as JSON; every string leaf is a template."""
    form: dict[str, Any] | None = None
    """Structured body sent as form fields (values JSON-encoded when not strings)."""
    raw_body: Template | None = None
    """A raw body template (XML, text); values inside must pass through a quoting filter."""
    timeout: Seconds | None = None

    @model_validator(mode="after")
    def _one_body(self) -> HttpCall:
        given = [n for n in ("body", "form", "raw_body") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"only one of body, form, rawBody may be set (got {', '.join(given)})")
        return self


class CliCall(_Model):
    """CLI lines over SSH. Each templated value must be a safe token or pass through `quote`."""

    connection: Name | None = None
    """Defaults to the provider's first SSH connection."""
    commands: list[Template] = Field(min_length=1)
    config_mode: bool = False
    """Enter configuration mode before and leave it after (the connection says how)."""
    timeout: Seconds | None = None


class Expect(_Model):
    """A predicate on a response. All given parts must hold."""

    status: list[int] = Field(default_factory=list)
    """Accepted HTTP status codes (default: any 2xx)."""
    jsonpath: str = ""
    """JSONPath evaluated on the parsed body; with no comparison it must match something."""
    equals: Any = None
    one_of: list[Any] = Field(default_factory=list)
    matches: str = ""
    """Regex the JSONPath value (or, without JSONPath, the whole text) must match."""
    not_matches: str = ""
    """Regex the text must not match (e.g. an error banner)."""


class RegexParser(_Model):
    """Items from CLI text: each match of `pattern` (with named groups) is one item."""

    pattern: str
    multiline: bool = True


class TextFsmParser(_Model):
    template: str = ""
    """An inline TextFSM template."""
    ntc_platform: str = ""
    """Use ntc-templates for this platform and `ntcCommand` instead of an inline template."""
    ntc_command: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> TextFsmParser:
        if bool(self.template) == bool(self.ntc_platform):
            raise ValueError("give exactly one of `template` or `ntcPlatform`")
        if self.ntc_platform and not self.ntc_command:
            raise ValueError("`ntcPlatform` needs `ntcCommand`")
        return self


class Pagination(_Model):
    """Follow pages until a page is short or the next marker is empty."""

    page_param: str = ""
    size_param: str = ""
    size: int = Field(100, ge=1)
    offset_param: str = ""
    next_jsonpath: str = ""
    """JSONPath giving the next page URL or token, when the device hands one out."""
    max_pages: int = Field(1000, ge=1)


class Response(_Model):
    format: Literal["json", "xml", "text", "cli", "none"] = "json"
    success: Expect | None = None
    """What a successful answer looks like (default: 2xx, and for CLI no error pattern)."""
    error: str = ""
    """JSONPath (json/xml) or regex with a group (text/cli) giving the device's error message."""
    items: str = ""
    """JSONPath selecting the list of items (list operations), e.g. `$.rows[*]`."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Item field → JSONPath relative to one item (or group name for regex parsers). Empty: take
    every key of the item as it is."""
    id: str = ""
    """JSONPath giving the new item's device id after a create."""
    capture: dict[str, str] = Field(default_factory=dict)
    """Name → JSONPath (or regex group): values captured for later steps (`steps.NAME.captured`)."""
    regex: RegexParser | None = None
    textfsm: TextFsmParser | None = None
    pagination: Pagination | None = None


class Operation(_Model):
    """One operation of a service: an HTTP call or CLI lines, and how to read the answer."""

    description: str = ""
    http: HttpCall | None = None
    cli: CliCall | None = None
    response: Response = Field(default_factory=Response)
    idempotent: bool | None = None
    """Safe to retry blindly. Default: true for list/update/delete and custom reads, false for create."""
    parameters: dict[Name, FieldSpec] = Field(default_factory=dict)
    """Parameters of a custom operation (validated like item fields)."""
    then: list[Callback] = Field(default_factory=list)
    """Callbacks after success (the seed's `callback`)."""

    @model_validator(mode="after")
    def _one_call(self) -> Operation:
        if (self.http is None) == (self.cli is None):
            raise ValueError("give exactly one of `http` or `cli`")
        return self


class Callback(_Model):
    """A follow-up call after an operation succeeds, e.g. notifying another system."""

    name: Name
    http: HttpCall | None = None
    cli: CliCall | None = None
    ignore_errors: bool = False

    @model_validator(mode="after")
    def _one_call(self) -> Callback:
        if (self.http is None) == (self.cli is None):
            raise ValueError("give exactly one of `http` or `cli`")
        return self


# --------------------------------------------------------------------------- item data schema


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    IP = "ip"
    CIDR = "cidr"
    """A network or host prefix, IPv4 or IPv6."""
    PORT = "port"
    PORT_RANGE = "portRange"
    """`80`, `80-90` (also read as `80:90`)."""
    HOSTNAME = "hostname"
    LIST = "list"
    OBJECT = "object"


class FieldSpec(_Model):
    type: FieldType = FieldType.STRING
    description: str = ""
    required: bool = False
    default: Any = None
    enum: list[Any] = Field(default_factory=list)
    pattern: str = ""
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=1)
    minimum: float | None = None
    maximum: float | None = None
    items: FieldSpec | None = None
    """Element schema for `list` fields."""
    fields: dict[Name, FieldSpec] = Field(default_factory=dict)
    """Member schemas for `object` fields."""
    any_values: list[str] = Field(default_factory=list)
    """Words meaning "any" for this field on this device (e.g. `any`), accepted besides the type."""
    # Comparison rules (how a device value is compared to the desired one)
    case_insensitive: bool = False
    device_values: dict[str, Any] = Field(default_factory=dict)
    """Device value → desired value, e.g. `{"1": true, "0": false}` for OPNsense booleans."""
    compare: bool = True
    """False: never compare this field (write-only fields such as a password)."""


class Identity(_Model):
    key: list[Name] = Field(min_length=1)
    """Natural-key fields: match a desired item to an actual one."""
    id: str = ""
    """Field of an actual item holding the device's own id (`uuid`, `.id`, `handle`, `policyid`)."""


class Ownership(_Model):
    """How items this operator created are marked on the device."""

    field: Name
    """Field carrying the marker, usually a description or comment."""
    marker: Template = "vnf-operator"
    """Marker text; the item is owned when the field contains it."""
    placement: Literal["prefix", "suffix"] = "prefix"


class Comparison(_Model):
    mode: Literal["subset", "exact"] = "subset"
    """`subset`: only desired fields are compared, fields the device adds are ignored."""
    ignore: list[str] = Field(default_factory=list)
    """Fields never compared (counters, timestamps, server-generated values)."""


class Ordering(_Model):
    """An ordered collection (firewall rules): device order follows the spec order."""

    position_field: Name | None = None
    """A field the device sorts by (e.g. `sequence`), written by the engine as `(index+1)*step`."""
    step: int = Field(10, ge=1)
    move: Name | None = None
    """An operation moving one item (context: `id`, `before_id`, `after_id`)."""


class Policy(StrEnum):
    MERGED = "merged"
    REPLACED = "replaced"
    OVERRIDDEN = "overridden"


class Service(_Model):
    description: str = ""
    depends_on: list[Name] = Field(default_factory=list)
    """Services to reconcile before this one (interfaces before routes before BGP)."""
    fields: dict[Name, FieldSpec] = Field(default_factory=dict)
    """The data schema of one item."""
    identity: Identity | None = None
    ownership: Ownership | None = None
    comparison: Comparison = Field(default_factory=Comparison)
    ordering: Ordering | None = None
    default_policy: Policy = Policy.MERGED
    operations: dict[Name, Operation] = Field(default_factory=dict)
    """`list`, `create`, `update`, `delete`, and any custom operation (`reboot`, `backup`...)."""
    commit: Operation | None = None
    """Run once after a batch of changes to this service (OPNsense `apply`, VyOS `save`)."""
    batch: Name | None = None
    """An operation taking all changes at once (context `items`, `creates`, `updates`, `deletes`)."""


# --------------------------------------------------------------------------- health and bootstrap


class HealthCheck(_Model):
    name: Name
    phase: Literal["network", "api", "service"] = "api"
    """Phases run in this order; the first failing phase is reported."""
    http: HttpCall | None = None
    cli: CliCall | None = None
    tcp: TcpProbe | None = None
    expect: Expect = Field(default_factory=Expect)
    response: Response | None = None
    """How to read the answer, when `expect` uses JSONPath (defaults to `format: json` for HTTP)."""
    timeout: Seconds = 10.0

    @model_validator(mode="after")
    def _one_probe(self) -> HealthCheck:
        if sum(x is not None for x in (self.http, self.cli, self.tcp)) != 1:
            raise ValueError("give exactly one of `http`, `cli` or `tcp`")
        return self


class TcpProbe(_Model):
    connection: Name
    """Open a TCP connection to this connection's host and port."""


class BootstrapStep(_Model):
    name: Name
    depends_on: list[Name] = Field(default_factory=list)
    service: Name | None = None
    """Run a service operation (`service` + `operation`) with `parameters`..."""
    operation: Name | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    http: HttpCall | None = None
    """...or an inline call."""
    cli: CliCall | None = None
    response: Response = Field(default_factory=Response)
    outputs: list[Name] = Field(default_factory=list)
    """Names from `response.capture` to keep (stored in a Secret owned by the appliance)."""
    skip_if: Template = ""
    """An expression; when true the step is already done (keeps bootstrap idempotent)."""

    @model_validator(mode="after")
    def _one_action(self) -> BootstrapStep:
        kinds = [self.operation is not None, self.http is not None, self.cli is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of `operation` (with `service`), `http` or `cli`")
        if self.operation is not None and self.service is None:
            raise ValueError("`operation` needs `service`")
        return self


class Bootstrap(_Model):
    """Day-0: reach the device with its bootstrap credentials and make it manageable."""

    connection: Name | None = None
    """Connection used for the initial contact (templates see bootstrap credentials)."""
    needed_when: list[HealthCheck] = Field(default_factory=list)
    """Bootstrap runs when any of these fails (e.g. the API key does not work yet)."""
    steps: list[BootstrapStep] = Field(default_factory=list)
    ready: list[HealthCheck] = Field(default_factory=list)
    """Checks that must pass after the steps for bootstrap to count as done."""


# --------------------------------------------------------------------------- the document


class ProviderDictionary(_Model):
    language: Literal["v1"] = "v1"
    """Version of this language; lets the format evolve."""
    info: Info
    credentials: dict[Name, Credential] = Field(default_factory=dict)
    """Credentials the dictionary needs, by name; resolved from the appliance's Secrets."""
    vars: dict[Name, Any] = Field(default_factory=dict)
    """Defaults for appliance variables (`spec.vars` overrides)."""
    templates: dict[Name, Template] = Field(default_factory=dict)
    """Reusable template snippets, available as `templates.NAME` (rendered on use)."""
    connections: dict[Name, Connection] = Field(min_length=1)
    limits: Limits = Field(default_factory=Limits)
    health_checks: list[HealthCheck] = Field(default_factory=list)
    bootstrap: Bootstrap | None = None
    services: dict[Name, Service] = Field(default_factory=dict)


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)


class ProviderManifest(BaseModel):
    """A `VnfProvider` manifest: what `providers/*.yaml` hold and what `kubectl apply` takes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: Literal["vnf.operators.dev/v1alpha1"] = Field(
        "vnf.operators.dev/v1alpha1", alias="apiVersion"
    )
    kind: Literal["VnfProvider"] = "VnfProvider"
    metadata: Metadata
    spec: ProviderDictionary


HttpCall.model_rebuild()
SessionAuth.model_rebuild()
Operation.model_rebuild()
HealthCheck.model_rebuild()
