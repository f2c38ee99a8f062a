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

Structural rules live here (pydantic); rules that need the whole document (references, cycles,
templates, JSONPaths, regexes) live in `core/loader.py`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

LANGUAGE_VERSION = "v1"
API_VERSION = "vnf.operators.dev/v1alpha1"
KIND = "VnfProvider"

#: Operations the generic sync engine knows; any other operation name is a custom operation.
STANDARD_OPERATIONS = ("list", "create", "update", "delete")
#: Operations that change the device and need a `list` operation to diff against.
WRITE_OPERATIONS = ("create", "update", "delete")
#: Custom operations the operator runs itself (docs/lifecycle.md): `backup` answers the configuration
#: text, `restore` takes it as `params.config`, `version` captures `version`, `upgrade` takes
#: `params.version`. At most one service declares each.
LIFECYCLE_OPERATIONS = ("backup", "restore", "version", "upgrade")

# Names of connections, services, operations, fields and credentials: safe in paths and templates.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# A Jinja2 template (sandboxed, strict undefined); marked `x-vnf-template` in the JSON Schema.
Template = Annotated[str, Field(json_schema_extra={"x-vnf-template": True})]
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
    """How changes take effect on the device."""

    LIVE = "live"
    """Every change takes effect at once (MikroTik, FortiOS, nftables)."""
    STAGED = "staged"
    """Changes are staged until a commit/apply step (OPNsense `apply`, pfSense apply endpoints)."""
    COMMIT_CONFIRM = "commitConfirm"
    """Staged, with a commit that reverts itself unless confirmed (VyOS `commit-confirm`)."""


class Capabilities(_Model):
    """What the appliance's management plane supports, declared honestly per vendor."""

    commit_model: CommitModel = CommitModel.LIVE
    """How changes take effect on the device: `live`, `staged` or `commitConfirm`."""
    rollback: bool = False
    """The device can roll back to an earlier configuration natively."""
    batching: bool = False
    """Several changes can go in one request or one commit."""


class Info(_Model):
    """General information about the provider."""

    name: str = Field(min_length=1, max_length=63)
    """Human-readable provider name, e.g. `OPNsense firewall`."""
    vendor: str
    """Vendor of the appliance, e.g. `Deciso`."""
    product: str = ""
    """Product the dictionary drives, e.g. `OPNsense`."""
    version: str = Field("0.1.0", pattern=r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
    """The dictionary's own semantic version (not the device's)."""
    supported_versions: list[str] = Field(default_factory=list)
    """Device software versions this dictionary is known to work with, e.g. `>=24.7`."""
    description: str = ""
    """What the provider covers."""
    maintainer: str = ""
    """Who maintains the dictionary (name and contact)."""
    documentation: str = ""
    """Where the vendor API is documented (a URL)."""
    debug: bool = False
    """Log rendered requests and raw responses (secrets masked) at debug level."""
    capabilities: Capabilities = Field(default_factory=Capabilities)
    """What the appliance's management plane supports."""


class Credential(_Model):
    """A credential the dictionary needs. Its value lives in the appliance's Secret, never here."""

    description: str = ""
    """What the credential is and where to create it on the appliance."""
    required: bool = True
    """The appliance's Secret must carry this key (optional credentials render as empty)."""
    bootstrap: bool = False
    """Read from the appliance's bootstrap-credentials Secret instead of its credentials Secret."""


# --------------------------------------------------------------------------- connections


class TlsSettings(_Model):
    """TLS verification of an HTTPS connection."""

    verify: bool = True
    """Verify the device certificate. The appliance may supply a CA; skipping needs the appliance's say."""
    server_name: str = ""
    """Name to verify the certificate against, when it differs from the management host."""


class BasicAuth(_Model):
    """HTTP Basic authentication."""

    type: Literal["basic"]
    """`basic`."""
    username: Template
    """User name (template), e.g. `{{ credentials.api_key }}`."""
    password: Template
    """Password (template naming a credential), e.g. `{{ credentials.api_secret }}`."""


class BearerAuth(_Model):
    """A bearer token in the `Authorization` header."""

    type: Literal["bearer"]
    """`bearer`."""
    token: Template
    """The token (template naming a credential)."""


class HeaderAuth(_Model):
    """An API key in a request header, e.g. `X-API-Key`."""

    type: Literal["header"]
    """`header`."""
    header: str = Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    """Header name, e.g. `X-API-Key`."""
    value: Template
    """Header value (template naming a credential)."""


class BodyKeyAuth(_Model):
    """An API key inside every JSON request body (e.g. VyOS `key`)."""

    type: Literal["bodyKey"]
    """`bodyKey`."""
    field: str = Field(min_length=1)
    """Top-level body field carrying the key, e.g. `key`."""
    value: Template
    """The key (template naming a credential)."""


class SessionAuth(_Model):
    """Log in once, carry a token or cookie (and a CSRF header), re-login on 401, log out on close."""

    type: Literal["session"]
    """`session`."""
    login: HttpCall
    """The login request (its body names credentials, e.g. `{{ credentials.password }}`)."""
    token: str = ""
    """JSONPath into the login response giving the token (empty: the session rides on cookies)."""
    token_header: str = "Authorization"
    """Header carrying the token on every later request."""
    token_prefix: str = "Bearer "
    """Text put before the token in `tokenHeader`."""
    csrf_cookie: str = ""
    """Cookie whose value is sent back as the CSRF header (FortiOS `ccsrftoken`)."""
    csrf_header: str = ""
    """Header carrying the CSRF token (e.g. `X-CSRFToken`)."""
    csrf_from: str = ""
    """JSONPath into the login response giving a CSRF token, alternatively to a cookie."""
    relogin_on: list[int] = Field(default_factory=lambda: [401])
    """HTTP statuses meaning the session expired: log in again and retry the request once."""
    logout: HttpCall | None = None
    """Request ending the session when the connection closes."""


HttpAuth = Annotated[
    BasicAuth | BearerAuth | HeaderAuth | BodyKeyAuth | SessionAuth, Field(discriminator="type")
]


class Reach(_Model):
    """How the operator gets to the device by default; an appliance may override the mode."""

    mode: Literal["direct", "jumpHost", "proxy", "broker"] = "direct"
    """`direct`, `jumpHost` (SSH bastion), `proxy` (HTTP CONNECT/SOCKS) or `broker` (a vnf-broker)."""


class HttpConnection(_Model):
    """An HTTP or HTTPS management API."""

    type: Literal["http", "https"]
    """`http` or `https`."""
    port: int | None = Field(None, ge=1, le=65535)
    """Default port (80/443 when empty); the appliance may override it (`spec.management.ports`)."""
    base_path: str = Field("", pattern=r"^(/[^?#\s]*)?$")
    """Prefix of every request path, e.g. `/api`."""
    tls: TlsSettings = Field(default_factory=TlsSettings)
    """Certificate verification (https only)."""
    auth: HttpAuth | None = None
    """Authentication: `basic`, `bearer`, `header`, `bodyKey` or `session`."""
    headers: dict[str, Template] = Field(default_factory=dict)
    """Headers sent with every request (templates), e.g. `Accept: application/json`."""
    connect_timeout: Seconds = 5.0
    """Seconds to wait for the TCP/TLS connection."""
    read_timeout: Seconds = 30.0
    """Seconds to wait for an answer (a call's `timeout` overrides it)."""
    reach: Reach = Field(default_factory=Reach)
    """How the device is reached by default."""


class PromptAnswer(_Model):
    """An interactive question the device may ask, and what to send back."""

    pattern: str
    """Regex matching the question at the end of output, e.g. `\\[confirm\\]`."""
    send: str = ""
    """Line sent in answer (empty: just Enter)."""


class SshPrompts(_Model):
    """How the interactive shell is read: prompts, pager and questions."""

    prompt: str = r"[\r\n][\w.@()/:-]+[#>$%] ?$"
    """Regex matching the device prompt at the end of output."""
    config_prompt: str = ""
    """Regex matching the prompt in configuration mode (defaults to `prompt`)."""
    pager: str = ""
    """Regex matching a pager prompt (e.g. ` --More-- `) when paging cannot be disabled."""
    pager_send: str = " "
    """What to send at a pager prompt."""
    answers: list[PromptAnswer] = Field(default_factory=list)
    """Questions answered automatically (e.g. `Destination filename \\[startup-config\\]\\?`)."""


class SshConnection(_Model):
    """An SSH CLI."""

    type: Literal["ssh"]
    """`ssh`."""
    port: int | None = Field(22, ge=1, le=65535)
    """Default port; the appliance may override it (`spec.management.ports`)."""
    username: Template
    """Login user (template), e.g. `{{ credentials.username }}`."""
    password: Template | None = None
    """Password (template naming a credential)."""
    private_key: Template | None = None
    """OpenSSH private key (template naming a credential)."""
    host_key: Template | None = None
    """A pinned host public key (`ssh-ed25519 AAAA...`); the appliance may also pin one or allow TOFU."""
    mode: Literal["interactive", "exec"] = "interactive"
    """`interactive`: one shell, prompt detection; `exec`: each line is an exec-channel command."""
    prompts: SshPrompts = Field(default_factory=SshPrompts)
    """Prompt, pager and question patterns of the interactive shell."""
    on_connect: list[str] = Field(default_factory=list)
    """Lines sent after login, e.g. `terminal length 0` to disable paging."""
    config_enter: list[str] = Field(default_factory=list)
    """Lines entering configuration mode, e.g. `configure terminal`."""
    config_exit: list[str] = Field(default_factory=list)
    """Lines leaving configuration mode, e.g. `end`."""
    error_patterns: list[str] = Field(default_factory=lambda: [r"^%\s?(Invalid|Incomplete|Ambiguous|Error)"])
    """Regexes (multiline) that mark a line's output as an error on this device."""
    connect_timeout: Seconds = 10.0
    """Seconds to wait for the connection and login."""
    command_timeout: Seconds = 30.0
    """Seconds to wait for the prompt after a line (a call's `timeout` overrides it)."""
    keepalive_interval: Seconds = 30.0
    """Seconds between SSH keepalives on an idle session."""
    reach: Reach = Field(default_factory=Reach)
    """How the device is reached by default."""

    @model_validator(mode="after")
    def _one_secret(self) -> SshConnection:
        if self.password is None and self.private_key is None:
            raise ValueError("needs `password` or `privateKey` (a template naming a credential)")
        return self


Connection = Annotated[HttpConnection | SshConnection, Field(discriminator="type")]


class Limits(_Model):
    """Client-side limits protecting the appliance's management plane (the appliance may lower them)."""

    requests_per_second: float = Field(10.0, gt=0)
    """Maximum request rate to one appliance."""
    max_concurrency: int = Field(4, ge=1)
    """At most this many requests or sessions at once per appliance."""
    max_retries: int = Field(4, ge=0, le=20)
    """Retries of a transient failure (timeouts, resets, 5xx, 429)."""
    backoff_base: Seconds = 0.5
    """First retry delay in seconds (doubled each time, with jitter; `Retry-After` wins)."""
    backoff_max: Seconds = 30.0
    """Longest retry delay in seconds."""


# --------------------------------------------------------------------------- calls and responses


class MultipartPart(_Model):
    """One part of a `multipart/form-data` body: a file upload, or a plain field without `filename`."""

    content: Template
    """The part's content (template; any text, e.g. `{{ params.config }}` for a configuration file)."""
    filename: Template | None = None
    """File name sent with the part (template); without it the part is a plain form field."""
    content_type: str = Field("", pattern=r"^([A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)?$")
    """Content-Type of a file part (default `application/octet-stream`)."""


class HttpCall(_Model):
    """An HTTP request. `path` is relative to the connection's base path; templated values in it
    are percent-encoded as one segment each, so a value cannot change the path."""

    connection: Name | None = None
    """Defaults to the provider's first HTTP connection."""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    """HTTP method."""
    path: Template
    """Path template, e.g. `/firewall/filter/setRule/{{ id }}` (each value becomes one encoded segment)."""
    query: dict[str, Template] = Field(default_factory=dict)
    """Query parameters (templates; control characters are rejected)."""
    headers: dict[str, Template] = Field(default_factory=dict)
    """Extra headers (templates; CR/LF and control characters are rejected)."""
    body: Any = None
    """Structured body sent as JSON; every string leaf is a template."""
    form: dict[str, Any] | None = None
    """Structured body sent as form fields (values JSON-encoded when not strings)."""
    raw_body: Template | None = None
    """A raw body template (XML, text); values must pass through `tojson`/`xmlescape` or be safe tokens."""
    content_type: str = ""
    """Content-Type of a `rawBody` (defaults to `text/plain`)."""
    multipart: dict[str, MultipartPart] | None = None
    """A `multipart/form-data` body: part name → part (file uploads such as a configuration restore)."""
    timeout: Seconds | None = None
    """Seconds to wait for the answer (default: the connection's `readTimeout`)."""

    @model_validator(mode="after")
    def _one_body(self) -> HttpCall:
        given = [n for n in ("body", "form", "raw_body", "multipart") if getattr(self, n) is not None]
        if len(given) > 1:
            names = {"body": "body", "form": "form", "raw_body": "rawBody", "multipart": "multipart"}
            raise ValueError(
                "only one of body, form, rawBody, multipart may be set "
                f"(got {', '.join(names[g] for g in given)})"
            )
        if self.multipart is not None and not self.multipart:
            raise ValueError("`multipart` needs at least one part")
        return self


class CliCall(_Model):
    """CLI lines over SSH. Each templated value must be a safe token or pass through `quote`."""

    connection: Name | None = None
    """Defaults to the provider's first SSH connection."""
    commands: list[Template] = Field(min_length=1)
    """Lines (templates). A line rendering empty is dropped, so `{% if %}` can make a line optional."""
    config_mode: bool = False
    """Enter configuration mode before and leave it after (the connection says how)."""
    timeout: Seconds | None = None
    """Seconds to wait for each line (default: the connection's `commandTimeout`)."""


class Expect(_Model):
    """A predicate on a response. All given parts must hold."""

    status: list[int] = Field(default_factory=list)
    """Accepted HTTP status codes (default: any 2xx)."""
    jsonpath: str = ""
    """JSONPath evaluated on the parsed body; with no comparison it must match something."""
    equals: Any = None
    """The JSONPath value must equal this (compared as text when types differ)."""
    one_of: list[Any] = Field(default_factory=list)
    """The JSONPath value must be one of these."""
    matches: str = ""
    """Regex the JSONPath value (or, without JSONPath, the whole text) must match."""
    not_matches: str = ""
    """Regex the text must not match (e.g. an error banner)."""


class RegexParser(_Model):
    """Items from CLI text: each match of `pattern` (with named groups) is one item."""

    pattern: str
    """Regex with named groups; each match is one item, each group one field."""
    multiline: bool = True
    """`^` and `$` match at line boundaries."""


class TextFsmParser(_Model):
    """Items from CLI text with TextFSM: an inline template or one from ntc-templates."""

    template: str = ""
    """An inline TextFSM template."""
    ntc_platform: str = ""
    """Use ntc-templates for this platform (e.g. `cisco_ios`) and `ntcCommand` instead of `template`."""
    ntc_command: str = ""
    """The command whose output is parsed, as ntc-templates indexes it (e.g. `show ip bgp summary`)."""

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
    """Query parameter carrying the page number (e.g. OPNsense `current`)."""
    start: int = Field(1, ge=0)
    """Number of the first page."""
    size_param: str = ""
    """Query parameter carrying the page size (e.g. `rowCount`)."""
    size: int = Field(100, ge=1)
    """Items per page."""
    offset_param: str = ""
    """Query parameter carrying the offset of the first item (instead of a page number)."""
    next_jsonpath: str = ""
    """JSONPath giving the next page URL or token, when the device hands one out."""
    next_param: str = ""
    """Query parameter carrying the token from `nextJsonpath` (empty: the token is a URL path)."""
    max_pages: int = Field(1000, ge=1)
    """Safety stop."""


class Response(_Model):
    """How to read a device answer: format, success, error text, items, id and captured values."""

    format: Literal["json", "xml", "text", "cli", "none"] = "json"
    """Body format (default `json` for HTTP calls, `cli` for CLI calls). `cli` is the output of CLI
    lines; `xml` is converted to JSON-like data."""
    success: Expect | None = None
    """What a successful answer looks like (default: 2xx, and for CLI no error pattern)."""
    error: str | list[str] = ""
    """JSONPath (json/xml) or regex with a group (text/cli) giving the device's error message; a list
    is tried in order. Objects such as `{"rule.port": "msg"}` become `rule.port: msg`."""
    absent: Expect | None = None
    """What an answer saying "no such item" looks like (a delete of a missing item then counts as done)."""
    items: str = ""
    """JSONPath selecting the list of items (list operations), e.g. `$.rows[*]`."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Item field → JSONPath relative to one item (or group name for regex parsers). Empty: take
    every key of the item as it is."""
    compute: dict[str, Template] = Field(default_factory=dict)
    """Item field → template computing it from the parsed row (`row`, before `fields` renaming), e.g.
    a CIDR from an address and a mask. A template that is exactly one `{{ expr }}` keeps the value's
    type; `omit` or an empty result leaves the field out."""
    id: str = ""
    """JSONPath (or regex for text/cli) giving the new item's device id after a create."""
    capture: dict[Name, str] = Field(default_factory=dict)
    """Name → JSONPath (or regex for text/cli): values captured for later steps (`steps.NAME.captured`)."""
    regex: RegexParser | None = None
    """Parse items from text with a regex (text/cli)."""
    textfsm: TextFsmParser | None = None
    """Parse items from text with TextFSM (text/cli)."""
    pagination: Pagination | None = None
    """How a list spans several pages."""

    @property
    def error_paths(self) -> tuple[str, ...]:
        """`error` as a tuple (empty when not set)."""
        if isinstance(self.error, str):
            return (self.error,) if self.error else ()
        return tuple(e for e in self.error if e)

    @model_validator(mode="after")
    def _one_parser(self) -> Response:
        if self.regex is not None and self.textfsm is not None:
            raise ValueError("give at most one of `regex` or `textfsm`")
        if (self.regex is not None or self.textfsm is not None) and self.format not in ("text", "cli"):
            raise ValueError("`regex` and `textfsm` parse text: they need `format: text` or `format: cli`")
        return self


def _cli_answers_are_text(data: Any, *, create: bool) -> Any:
    """`response.format` defaults to `cli` for CLI calls (and `json` for HTTP ones)."""
    if isinstance(data, dict) and data.get("cli") is not None:
        resp = data.get("response")
        if resp is None and create:
            return {**data, "response": {"format": "cli"}}
        if isinstance(resp, dict) and "format" not in resp:
            return {**data, "response": {**resp, "format": "cli"}}
    return data


class Operation(_Model):
    """One operation of a service: an HTTP call or CLI lines, and how to read the answer."""

    description: str = ""
    """What the operation does (shown by vnfctl and the UI)."""
    http: HttpCall | None = None
    """The HTTP request..."""
    cli: CliCall | None = None
    """...or the CLI lines."""
    response: Response = Field(default_factory=Response)
    """How to read the answer."""
    idempotent: bool | None = None
    """Safe to retry blindly. Default: true for list/update/delete and custom reads, false for create."""
    parameters: dict[Name, FieldSpec] = Field(default_factory=dict)
    """Parameters of a custom operation (validated like item fields, available as `params`)."""
    then: list[Callback] = Field(default_factory=list)
    """Callbacks after success (the seed's `callback`)."""

    @model_validator(mode="before")
    @classmethod
    def _cli_format(cls, data: Any) -> Any:
        return _cli_answers_are_text(data, create=True)

    @model_validator(mode="after")
    def _one_call(self) -> Operation:
        if (self.http is None) == (self.cli is None):
            raise ValueError("give exactly one of `http` or `cli`")
        return self


class Callback(_Model):
    """A follow-up call after an operation succeeds, e.g. notifying another system."""

    name: Name
    """Name of the callback (unique within the operation)."""
    http: HttpCall | None = None
    """An HTTP request (its templates also see `result`: the parsed answer of the operation)..."""
    cli: CliCall | None = None
    """...or CLI lines."""
    ignore_errors: bool = False
    """A failing callback does not fail the operation."""

    @model_validator(mode="after")
    def _one_call(self) -> Callback:
        if (self.http is None) == (self.cli is None):
            raise ValueError("give exactly one of `http` or `cli`")
        return self


# --------------------------------------------------------------------------- item data schema


class FieldType(StrEnum):
    """Type of an item field."""

    STRING = "string"
    """Text."""
    INTEGER = "integer"
    """A whole number."""
    NUMBER = "number"
    """Any number."""
    BOOLEAN = "boolean"
    """`true` or `false`."""
    IPV4 = "ipv4"
    """An IPv4 address."""
    IPV6 = "ipv6"
    """An IPv6 address."""
    IP = "ip"
    """An IPv4 or IPv6 address."""
    CIDR = "cidr"
    """A network or host prefix, IPv4 or IPv6."""
    PORT = "port"
    """A TCP/UDP port, 1-65535 (number or digit string)."""
    PORT_RANGE = "portRange"
    """`80`, `80-90` (also read as `80:90`)."""
    HOSTNAME = "hostname"
    """A DNS name."""
    LIST = "list"
    """A list of values (`items` describes one)."""
    OBJECT = "object"
    """A nested object (`fields` describes its members)."""


class FieldSpec(_Model):
    """One field of an item (or a parameter of a custom operation)."""

    type: FieldType = FieldType.STRING
    """Type of the value."""
    description: str = ""
    """What the field means (shown in docs and the UI)."""
    required: bool = False
    """A desired item must give this field."""
    default: Any = None
    """Value used when a desired item leaves the field out."""
    enum: list[Any] = Field(default_factory=list)
    """Allowed values."""
    pattern: str = ""
    """Regex a string value must match (searched; anchor it with `^...$`)."""
    min_length: int | None = Field(None, ge=0)
    """Shortest allowed string or list."""
    max_length: int | None = Field(None, ge=1)
    """Longest allowed string or list."""
    minimum: float | None = None
    """Smallest allowed number."""
    maximum: float | None = None
    """Largest allowed number."""
    items: FieldSpec | None = None
    """Element schema for `list` fields."""
    fields: dict[Name, FieldSpec] = Field(default_factory=dict)
    """Member schemas for `object` fields."""
    any_values: list[str] = Field(default_factory=list)
    """Words meaning "any" for this field on this device (e.g. `any`), accepted besides the type."""
    # Comparison rules (how a device value is compared to the desired one)
    case_insensitive: bool = False
    """Compare text without regard to case."""
    device_values: dict[str, Any] = Field(default_factory=dict)
    """Device value → desired value, e.g. `{"1": true, "0": false}` for OPNsense booleans."""
    compare: bool = True
    """False: never compare this field (write-only fields such as a password)."""

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.items is not None and self.type is not FieldType.LIST:
            raise ValueError("`items` is only for `type: list`")
        if self.fields and self.type is not FieldType.OBJECT:
            raise ValueError("`fields` is only for `type: object`")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("`minimum` is greater than `maximum`")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError("`minLength` is greater than `maxLength`")
        if self.required and self.default is not None:
            raise ValueError("a `required` field cannot have a `default`")
        return self


class Identity(_Model):
    """How a desired item is matched to a device item."""

    key: list[Name] = Field(min_length=1)
    """Natural-key fields: match a desired item to an actual one."""
    id: str = ""
    """Field of an actual item holding the device's own id (`uuid`, `.id`, `handle`, `policyid`)."""


class Ownership(_Model):
    """How items this operator created are marked on the device."""

    field: Name
    """Field carrying the marker, usually a description or comment."""
    marker: Template = "vnf-operator"
    """Marker text (template); the item is owned when the field contains it."""
    placement: Literal["prefix", "suffix"] = "prefix"
    """Where the engine puts the marker in the field."""


class Comparison(_Model):
    """How desired and actual items are compared."""

    mode: Literal["subset", "exact"] = "subset"
    """`subset`: only desired fields are compared, fields the device adds are ignored."""
    ignore: list[str] = Field(default_factory=list)
    """Fields never compared (counters, timestamps, server-generated values)."""


class Ordering(_Model):
    """An ordered collection (firewall rules): device order follows the spec order."""

    position_field: Name | None = None
    """A field the device sorts by (e.g. `sequence`). Items that stay in place keep their value; a
    new item gets one between its neighbours' (`step` apart at the end), so it lands in place."""
    step: int = Field(10, ge=1)
    """Gap between positions, leaving room for hand-made items."""
    move: Name | None = None
    """An operation moving one item (context: `id`, `before_id`, `after_id`). Also places a new item
    the device appends, right after its create, unless the create uses `before_id`/`after_id`."""


class Policy(StrEnum):
    """How desired items combine with what is on the device."""

    MERGED = "merged"
    """Create and update the listed items, never delete others."""
    REPLACED = "replaced"
    """Like merged, and owned items no longer listed are deleted."""
    OVERRIDDEN = "overridden"
    """The service is made equal to the listed items (except protected ones)."""


class Service(_Model):
    """A service of the appliance (firewall rules, routes...): its item schema and operations."""

    description: str = ""
    """What the service configures."""
    depends_on: list[Name] = Field(default_factory=list)
    """Services to reconcile before this one (interfaces before routes before BGP)."""
    fields: dict[Name, FieldSpec] = Field(default_factory=dict)
    """The data schema of one item."""
    identity: Identity | None = None
    """Natural key and device id (needed by services the engine syncs)."""
    ownership: Ownership | None = None
    """How owned items are marked on the device."""
    comparison: Comparison = Field(default_factory=Comparison)
    """Comparison rules: subset or exact, ignored fields."""
    ordering: Ordering | None = None
    """Device order follows the spec order."""
    default_policy: Policy = Policy.MERGED
    """Policy when the appliance does not give one."""
    operations: dict[Name, Operation] = Field(default_factory=dict)
    """`list`, `create`, `update`, `delete`, and any custom operation (`reboot`, `backup`...)."""
    commit: Operation | None = None
    """Run once after a batch of changes to this service (OPNsense `apply`, VyOS `save`)."""
    batch: Name | None = None
    """An operation taking all changes at once (context `items`, `creates`, `updates`, `deletes`):
    the creates, updates and deletes of a sync go in one request, then one `commit`."""
    batch_size: int | None = Field(None, ge=1)
    """At most this many changes per `batch` request; larger change sets go in several requests."""
    begin: list[Operation] = Field(default_factory=list)
    """Steps run in order once before the first change of a sync that has changes (open a
    transaction). Each step's `response.capture` values become `begin.NAME`, seen by the later
    steps, every change, `commit` and `abort`. A sync with nothing to change never runs them."""
    abort: Operation | None = None
    """Run when a change or `commit` fails after `begin` succeeded: drop what was staged (delete the
    transaction), so nothing stays half-applied. Needs `begin`."""


# --------------------------------------------------------------------------- health and bootstrap


class TcpProbe(_Model):
    """A TCP connect probe."""

    connection: Name
    """Open a TCP connection to this connection's host and port."""


class HealthCheck(_Model):
    """One health check: a probe and what its answer must look like."""

    name: Name
    """Name of the check (unique in its list), shown in conditions."""
    phase: Literal["network", "api", "service"] = "api"
    """Phases run in this order; the first failing phase is reported."""
    http: HttpCall | None = None
    """An HTTP request...,"""
    cli: CliCall | None = None
    """...CLI lines..."""
    tcp: TcpProbe | None = None
    """...or a TCP connect."""
    expect: Expect = Field(default_factory=Expect)
    """What a healthy answer looks like (status, JSONPath predicate, output pattern)."""
    response: Response | None = None
    """How to read the answer, when `expect` uses JSONPath (defaults to `format: json` for HTTP)."""
    timeout: Seconds = 10.0
    """Seconds before the check counts as failed."""

    @model_validator(mode="before")
    @classmethod
    def _cli_format(cls, data: Any) -> Any:
        return _cli_answers_are_text(data, create=False)

    @model_validator(mode="after")
    def _one_probe(self) -> HealthCheck:
        if sum(x is not None for x in (self.http, self.cli, self.tcp)) != 1:
            raise ValueError("give exactly one of `http`, `cli` or `tcp`")
        return self


class BootstrapStep(_Model):
    """One day-0 step."""

    name: Name
    """Name of the step (unique); later steps see its results as `steps.NAME`."""
    depends_on: list[Name] = Field(default_factory=list)
    """Steps that must run first."""
    service: Name | None = None
    """Run a service operation (`service` + `operation`) with `parameters`..."""
    operation: Name | None = None
    """Operation of `service` to run."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Parameters (string leaves are templates) passed as `params`."""
    http: HttpCall | None = None
    """...or an inline call."""
    cli: CliCall | None = None
    """...or inline CLI lines."""
    response: Response = Field(default_factory=Response)
    """How to read the answer of an inline call."""
    outputs: list[Name] = Field(default_factory=list)
    """Names from `response.capture` to keep (stored in a Secret owned by the appliance)."""
    skip_if: Template = ""
    """An expression; when true the step is already done (keeps bootstrap idempotent)."""

    @model_validator(mode="before")
    @classmethod
    def _cli_format(cls, data: Any) -> Any:
        return _cli_answers_are_text(data, create=True)

    @model_validator(mode="after")
    def _one_action(self) -> BootstrapStep:
        kinds = [self.operation is not None, self.http is not None, self.cli is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of `operation` (with `service`), `http` or `cli`")
        if self.operation is not None and self.service is None:
            raise ValueError("`operation` needs `service`")
        if self.service is not None and self.operation is None:
            raise ValueError("`service` needs `operation`")
        return self


class Bootstrap(_Model):
    """Day-0: reach the device with its bootstrap credentials and make it manageable."""

    connection: Name | None = None
    """Connection used for the initial contact (templates see bootstrap credentials)."""
    needed_when: list[HealthCheck] = Field(default_factory=list)
    """Bootstrap runs when any of these fails (e.g. the API key does not work yet)."""
    steps: list[BootstrapStep] = Field(default_factory=list)
    """The steps, run in dependency order."""
    ready: list[HealthCheck] = Field(default_factory=list)
    """Checks that must pass after the steps for bootstrap to count as done."""


# --------------------------------------------------------------------------- the document


class ProviderDictionary(_Model):
    """A provider dictionary: everything the engine needs to drive one kind of appliance."""

    language: Literal["v1"] = "v1"
    """Version of this language; lets the format evolve."""
    info: Info
    """General information."""
    credentials: dict[Name, Credential] = Field(default_factory=dict)
    """Credentials the dictionary needs, by name; resolved from the appliance's Secrets."""
    vars: dict[Name, Any] = Field(default_factory=dict)
    """Defaults for appliance variables (`spec.vars` overrides)."""
    templates: dict[Name, Template] = Field(default_factory=dict)
    """Reusable template snippets, available as `templates.NAME` (rendered on use)."""
    connections: dict[Name, Connection] = Field(min_length=1)
    """Connections by name (`http`, `https`, `ssh`)."""
    limits: Limits = Field(default_factory=Limits)
    """Default rate and concurrency limits."""
    health_checks: list[HealthCheck] = Field(default_factory=list)
    """Ordered health checks (phases network → api → service)."""
    bootstrap: Bootstrap | None = None
    """Day-0 steps."""
    services: dict[Name, Service] = Field(default_factory=dict)
    """Services by name."""

    def connection_named(self, name: str | None, kind: Literal["http", "ssh"]) -> str | None:
        """The connection a call uses: `name`, or the first connection of `kind` when `name` is None."""
        if name is not None:
            return name if name in self.connections else None
        for n, c in self.connections.items():
            if (kind == "ssh") == isinstance(c, SshConnection):
                return n
        return None


class Metadata(BaseModel):
    """Object metadata of the manifest (only `name` is read; labels and annotations are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True, use_attribute_docstrings=True)
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    """Name of the VnfProvider, e.g. `opnsense`."""


class ProviderManifest(BaseModel):
    """A `VnfProvider` manifest: what `providers/*.yaml` hold and what `kubectl apply` takes."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, use_attribute_docstrings=True
    )
    api_version: Literal["vnf.operators.dev/v1alpha1"] = Field(
        "vnf.operators.dev/v1alpha1", alias="apiVersion"
    )
    """`vnf.operators.dev/v1alpha1`."""
    kind: Literal["VnfProvider"] = "VnfProvider"
    """`VnfProvider`."""
    metadata: Metadata
    """Object metadata; `name` is the provider name appliances refer to."""
    spec: ProviderDictionary
    """The provider dictionary."""


HttpCall.model_rebuild()
SessionAuth.model_rebuild()
HttpConnection.model_rebuild()
Operation.model_rebuild()
HealthCheck.model_rebuild()
