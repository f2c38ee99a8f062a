"""Rendering dictionary calls into `HttpRequest` / `CliCommands`, injection-safe.

Every templated value goes through the finalize rule of the place it lands in (see
`core/templating.py`): a value can never add a path segment, a header line, a query parameter, a
CLI line or a second CLI argument. JSON bodies are built as data and JSON-encoded by the transport.

The engine calls:

- `render_operation(provider, service, operation, ctx)` for a service operation (`commit`, `abort`
  and `begin[N]` name the service's transaction steps; `with_begin` adds their `begin` values);
- `render_call(provider, call, ctx, where=...)` for any other call (health checks, bootstrap steps,
  callbacks), or the helpers `render_health_check`, `render_bootstrap_step`, `render_callback`,
  `render_login`, `render_logout`;
- `render_connection(provider, name, ctx)` to resolve a connection (auth, headers, user) into plain
  values for a transport.

`describe(...)` turns a rendered operation into display data with secrets masked (vnfctl render).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from vnf_operator.core.context import TemplateContext
from vnf_operator.core.errors import DictionaryError, Problem, TemplateError
from vnf_operator.core.filters import SafeText
from vnf_operator.core.model import (
    BasicAuth,
    BearerAuth,
    BodyKeyAuth,
    BootstrapStep,
    Callback,
    CliCall,
    HeaderAuth,
    HealthCheck,
    HttpCall,
    HttpConnection,
    Operation,
    ProviderDictionary,
    SessionAuth,
    SshConnection,
    SshPrompts,
)
from vnf_operator.core.rendered import CliCommands, HttpRequest, MultipartField, RenderedOperation
from vnf_operator.core.secrets import MASK, SecretMasker
from vnf_operator.core.templating import (
    OMIT,
    Kind,
    SnippetText,
    compile_expression,
    compile_template,
    evaluate,
    render,
    render_text,
    scoped_context,
)


class HasDictionary(Protocol):
    """Anything carrying a dictionary (e.g. `loader.LoadedProvider`)."""

    @property
    def dictionary(self) -> ProviderDictionary: ...

    @property
    def path_prefix(self) -> str: ...


ProviderLike = ProviderDictionary | HasDictionary


def _unwrap(provider: ProviderLike) -> tuple[ProviderDictionary, str]:
    if isinstance(provider, ProviderDictionary):
        return provider, "spec"
    return provider.dictionary, provider.path_prefix


def _join(prefix: str, rest: str) -> str:
    return f"{prefix}.{rest}" if prefix else rest


# ----------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class ResolvedAuth:
    """HTTP authentication with plain values. The transport applies it to every request."""

    type: Literal["basic", "bearer", "header", "bodyKey", "session"]
    username: str = ""
    password: str = ""
    token: str = ""
    """Bearer token."""
    header: str = ""
    """Header name (`header` auth)."""
    field: str = ""
    """Body field name (`bodyKey` auth)."""
    value: str = ""
    """Header value or body key value."""
    session: SessionAuth | None = None
    """Session settings; render the login/logout calls with `render_login` / `render_logout`."""


@dataclass(frozen=True)
class ResolvedConnection:
    """A connection with every template resolved: what a transport needs, and nothing templated."""

    name: str
    type: Literal["http", "https", "ssh"]
    host: str
    port: int
    reach_mode: str
    connect_timeout: float
    # http(s)
    base_url: str = ""
    """`scheme://host:port/base-path` (no trailing slash); `HttpRequest.path` is appended to it."""
    base_path: str = ""
    tls_verify: bool = True
    tls_server_name: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: ResolvedAuth | None = None
    read_timeout: float = 30.0
    # ssh
    username: str = ""
    password: str | None = None
    private_key: str | None = None
    host_key: str | None = None
    mode: Literal["interactive", "exec"] = "interactive"
    prompts: SshPrompts | None = None
    on_connect: tuple[str, ...] = ()
    config_enter: tuple[str, ...] = ()
    config_exit: tuple[str, ...] = ()
    error_patterns: tuple[str, ...] = ()
    command_timeout: float = 30.0
    keepalive_interval: float = 30.0

    def secrets(self) -> list[str]:
        """Every secret value of this connection (for a SecretMasker), including Basic's base64."""
        out = [v for v in (self.password, self.private_key) if v]
        a = self.auth
        if a is not None:
            out += [v for v in (a.password, a.token, a.value) if v]
            if a.type == "basic":
                out.append(base64.b64encode(f"{a.username}:{a.password}".encode()).decode())
        return out


_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22}


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def connection_info(provider: ProviderDictionary, name: str, ctx: TemplateContext) -> dict[str, Any]:
    """What templates see as `connection`: `{name, host, port, base_url}`."""
    conn = provider.connections[name]
    port = int(ctx.appliance.ports.get(name) or conn.port or _DEFAULT_PORTS[conn.type])
    host = ctx.appliance.host
    base_url = ""
    if isinstance(conn, HttpConnection):
        base_url = f"{conn.type}://{_host_for_url(host)}:{port}{conn.base_path.rstrip('/')}"
    return {"name": name, "host": host, "port": port, "base_url": base_url}


def _mapping(
    provider: ProviderDictionary, ctx: TemplateContext, connection: str | None, marker: str | None = None
) -> dict[str, Any]:
    m = ctx.mapping(provider)
    if connection is not None:
        m["connection"] = connection_info(provider, connection, ctx)
    if marker is not None:
        m["marker"] = marker
    m["templates"] = provider.templates
    return m


def render_connection(provider: ProviderLike, name: str, ctx: TemplateContext) -> ResolvedConnection:
    """Resolve connection `name` (auth, headers, user, keys) for a transport."""
    d, prefix = _unwrap(provider)
    if name not in d.connections:
        raise DictionaryError([Problem(_join(prefix, f"connections.{name}"), "no such connection")])
    conn = d.connections[name]
    where = _join(prefix, f"connections.{name}")
    m = _mapping(d, ctx, name)
    info = m["connection"]
    if isinstance(conn, HttpConnection):
        headers = _render_headers(conn.headers, m, f"{where}.headers")
        return ResolvedConnection(
            name=name,
            type=conn.type,
            host=info["host"],
            port=info["port"],
            reach_mode=conn.reach.mode,
            connect_timeout=conn.connect_timeout,
            base_url=info["base_url"],
            base_path=conn.base_path.rstrip("/"),
            tls_verify=conn.tls.verify,
            tls_server_name=conn.tls.server_name,
            headers=headers,
            auth=_render_auth(conn, m, f"{where}.auth"),
            read_timeout=conn.read_timeout,
        )
    ssh: SshConnection = conn

    def text(src: str | None, key: str) -> str | None:
        return None if src is None else render_text(src, Kind.TEXT, m, where=f"{where}.{key}")

    return ResolvedConnection(
        name=name,
        type="ssh",
        host=info["host"],
        port=info["port"],
        reach_mode=ssh.reach.mode,
        connect_timeout=ssh.connect_timeout,
        username=text(ssh.username, "username") or "",
        password=text(ssh.password, "password"),
        private_key=text(ssh.private_key, "privateKey"),
        host_key=text(ssh.host_key, "hostKey"),
        mode=ssh.mode,
        prompts=ssh.prompts,
        on_connect=tuple(ssh.on_connect),
        config_enter=tuple(ssh.config_enter),
        config_exit=tuple(ssh.config_exit),
        error_patterns=tuple(ssh.error_patterns),
        command_timeout=ssh.command_timeout,
        keepalive_interval=ssh.keepalive_interval,
    )


def _render_auth(conn: HttpConnection, m: Mapping[str, Any], where: str) -> ResolvedAuth | None:
    a = conn.auth
    if a is None:
        return None
    if isinstance(a, BasicAuth):
        return ResolvedAuth(
            "basic",
            username=render_text(a.username, Kind.TEXT, m, where=f"{where}.username"),
            password=render_text(a.password, Kind.TEXT, m, where=f"{where}.password"),
        )
    if isinstance(a, BearerAuth):
        return ResolvedAuth("bearer", token=render_text(a.token, Kind.HEADER, m, where=f"{where}.token"))
    if isinstance(a, HeaderAuth):
        return ResolvedAuth(
            "header", header=a.header, value=render_text(a.value, Kind.HEADER, m, where=f"{where}.value")
        )
    if isinstance(a, BodyKeyAuth):
        return ResolvedAuth(
            "bodyKey", field=a.field, value=render_text(a.value, Kind.TEXT, m, where=f"{where}.value")
        )
    return ResolvedAuth("session", session=a)


# ----------------------------------------------------------------------------- calls


def _render_headers(headers: Mapping[str, str], m: Mapping[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, src in headers.items():
        v = render(compile_template(src, Kind.HEADER, where=f"{where}.{k}"), m, where=f"{where}.{k}")
        if v is not OMIT:
            out[k] = str(v)
    return out


def _render_body(value: Any, m: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        return render(compile_template(value, Kind.JSON, where=where), m, where=where)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            r = _render_body(v, m, f"{where}.{k}")
            if r is not OMIT:
                out[str(k)] = r
        return out
    if isinstance(value, list | tuple):
        items = [_render_body(v, m, f"{where}[{i}]") for i, v in enumerate(value)]
        return [x for x in items if x is not OMIT]
    return value


def _render_http(
    d: ProviderDictionary, call: HttpCall, ctx: TemplateContext, where: str, prefix: str, marker: str | None
) -> HttpRequest:
    conn_name = d.connection_named(call.connection, "http")
    if conn_name is None or not isinstance(d.connections[conn_name], HttpConnection):
        what = f"connection `{call.connection}`" if call.connection else "an HTTP connection"
        raise DictionaryError([Problem(f"{where}.connection", f"needs {what}, which the dictionary lacks")])
    conn = d.connections[conn_name]
    assert isinstance(conn, HttpConnection)
    m = scoped_context(_mapping(d, ctx, conn_name, marker))
    path = render_text(call.path, Kind.PATH, m, where=f"{where}.path")
    if not path.startswith("/"):
        path = "/" + path
    query: dict[str, str] = {}
    for k, src in call.query.items():
        v = render(
            compile_template(src, Kind.QUERY, where=f"{where}.query.{k}"), m, where=f"{where}.query.{k}"
        )
        if v is not OMIT:
            query[k] = str(v)
    headers = _render_headers(call.headers, m, f"{where}.headers")
    body: Any = None
    form: dict[str, str] | None = None
    content: str | None = None
    if call.body is not None:
        body = _render_body(call.body, m, f"{where}.body")
    elif call.form is not None:
        form = {}
        for k, v in call.form.items():
            fw = f"{where}.form.{k}"
            r = render(compile_template(v, Kind.FORM, where=fw), m, where=fw) if isinstance(v, str) else v
            if r is OMIT:
                continue
            form[k] = r if isinstance(r, str) else json.dumps(r)
    elif call.raw_body is not None:
        content = render_text(call.raw_body, Kind.RAW, m, where=f"{where}.rawBody")
        if not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = call.content_type or "text/plain"
    parts = _render_multipart(call, m, where) if call.multipart is not None else None
    return HttpRequest(
        connection=conn_name,
        method=call.method,
        path=path,
        query=query,
        headers=headers,
        json=body,
        form=form,
        content=content,
        timeout=call.timeout or conn.read_timeout,
        multipart=parts,
    )


def _render_multipart(call: HttpCall, m: Mapping[str, Any], where: str) -> tuple[MultipartField, ...]:
    """The parts of a `multipart` body, in dictionary order. Content is any text (the transport
    frames it); a file name may not carry control characters (it goes into a part header)."""
    assert call.multipart is not None
    parts: list[MultipartField] = []
    for name, part in call.multipart.items():
        pw = f"{where}.multipart.{name}"
        content = render_text(part.content, Kind.FORM, m, where=f"{pw}.content")
        filename = None
        if part.filename is not None:
            filename = render_text(part.filename, Kind.HEADER, m, where=f"{pw}.filename")
        ctype = part.content_type or ("application/octet-stream" if filename is not None else "")
        parts.append(MultipartField(name, content, filename, ctype))
    return tuple(parts)


def _render_cli(
    d: ProviderDictionary, call: CliCall, ctx: TemplateContext, where: str, marker: str | None
) -> CliCommands:
    conn_name = d.connection_named(call.connection, "ssh")
    if conn_name is None or not isinstance(d.connections[conn_name], SshConnection):
        what = f"connection `{call.connection}`" if call.connection else "an SSH connection"
        raise DictionaryError([Problem(f"{where}.connection", f"needs {what}, which the dictionary lacks")])
    conn = d.connections[conn_name]
    assert isinstance(conn, SshConnection)
    m = _mapping(d, ctx, conn_name, marker)
    lines: list[str] = []
    for i, src in enumerate(call.commands):
        out = render_text(src, Kind.CLI, m, where=f"{where}.commands[{i}]")
        # Newlines can only come from the template text itself (values with newlines are rejected).
        lines += [ln.strip() for ln in out.split("\n") if ln.strip()]
    # Config mode is entered and left by the transport (config_enter/config_exit of the connection),
    # which watches the config prompt and leaves config mode even after an error.
    return CliCommands(
        connection=conn_name,
        commands=tuple(lines),
        mode=conn.mode,
        config_mode=call.config_mode,
        timeout=call.timeout or conn.command_timeout,
    )


def render_call(
    provider: ProviderLike,
    call: HttpCall | CliCall,
    ctx: TemplateContext,
    *,
    where: str,
    service: str | None = None,
) -> RenderedOperation:
    """Render one call. `where` is its document path (e.g. `spec.healthChecks[0].http`); `service`
    makes the service's `marker` available."""
    d, prefix = _unwrap(provider)
    marker = render_marker(provider, service, ctx) if service is not None else None
    if isinstance(call, HttpCall):
        return _render_http(d, call, ctx, where, prefix, marker)
    return _render_cli(d, call, ctx, where, marker)


_BEGIN_STEP = re.compile(r"begin\[(\d+)\]")


def find_operation(provider: ProviderLike, service: str, operation: str) -> tuple[Operation, str]:
    """The operation and its document path; `commit`, `abort` and `begin[N]` name the service's
    commit, abort and begin steps."""
    d, prefix = _unwrap(provider)
    svc = d.services.get(service)
    if svc is None:
        raise DictionaryError([Problem(_join(prefix, f"services.{service}"), "no such service")])
    op = svc.operations.get(operation)
    if op is not None:
        return op, _join(prefix, f"services.{service}.operations.{operation}")
    if operation == "commit" and svc.commit is not None:
        return svc.commit, _join(prefix, f"services.{service}.commit")
    if operation == "abort" and svc.abort is not None:
        return svc.abort, _join(prefix, f"services.{service}.abort")
    step = _BEGIN_STEP.fullmatch(operation)
    if step is not None and int(step.group(1)) < len(svc.begin):
        return svc.begin[int(step.group(1))], _join(prefix, f"services.{service}.{operation}")
    steps = [
        *(["commit"] if svc.commit else []),
        *(["abort"] if svc.abort else []),
        *(f"begin[{i}]" for i in range(len(svc.begin))),
    ]
    known = ", ".join([*svc.operations, *steps]) or "none"
    raise DictionaryError(
        [
            Problem(
                _join(prefix, f"services.{service}.operations.{operation}"),
                f"no such operation (known: {known})",
            )
        ]
    )


def with_begin(ctx: TemplateContext, values: Mapping[str, Any]) -> TemplateContext:
    """`ctx` with `begin.NAME` defined (a change, `commit` or `abort` of a transactional service)."""
    return ctx.replace(begin=values)


def begin_placeholders(provider: ProviderLike, service: str) -> dict[str, str]:
    """`<begin.NAME>` for every value a service's `begin` captures (vnfctl render without --begin)."""
    d, _ = _unwrap(provider)
    svc = d.services.get(service)
    names = [n for step in svc.begin for n in step.response.capture] if svc is not None else []
    return {name: SnippetText(f"<begin.{name}>") for name in names}


def render_operation(
    provider: ProviderLike, service: str, operation: str, ctx: TemplateContext, *, where: str | None = None
) -> RenderedOperation:
    """Render a service operation (`list`, `create`, ..., a custom one, `commit`, `abort` or
    `begin[N]`)."""
    op, path = find_operation(provider, service, operation)
    where = where or path
    call: HttpCall | CliCall = op.http if op.http is not None else op.cli  # type: ignore[assignment]
    kind = "http" if op.http is not None else "cli"
    return render_call(provider, call, ctx, where=f"{where}.{kind}", service=service)


def render_marker(provider: ProviderLike, service: str | None, ctx: TemplateContext) -> str | None:
    """The service's rendered ownership marker (None without ownership)."""
    if service is None:
        return None
    d, prefix = _unwrap(provider)
    svc = d.services.get(service)
    if svc is None or svc.ownership is None:
        return None
    m = _mapping(d, ctx, None)
    where = _join(prefix, f"services.{service}.ownership.marker")
    return render_text(svc.ownership.marker, Kind.TEXT, m, where=where)


def render_health_check(
    provider: ProviderLike, check: HealthCheck, ctx: TemplateContext, *, where: str
) -> RenderedOperation | None:
    """Render a check's HTTP/CLI probe (None for a TCP probe: use `check.tcp.connection`)."""
    if check.http is not None:
        return render_call(provider, check.http, ctx, where=f"{where}.http")
    if check.cli is not None:
        return render_call(provider, check.cli, ctx, where=f"{where}.cli")
    return None


def health_check_paths(provider: ProviderLike) -> list[tuple[HealthCheck, str]]:
    """Every top-level health check with its document path, in phase order (network, api, service)."""
    d, prefix = _unwrap(provider)
    order = {"network": 0, "api": 1, "service": 2}
    checks = [(c, _join(prefix, f"healthChecks[{i}]")) for i, c in enumerate(d.health_checks)]
    return sorted(checks, key=lambda cw: order[cw[0].phase])


def _step(provider: ProviderLike, name: str) -> tuple[BootstrapStep, str]:
    d, prefix = _unwrap(provider)
    steps = d.bootstrap.steps if d.bootstrap else []
    for i, s in enumerate(steps):
        if s.name == name:
            return s, _join(prefix, f"bootstrap.steps[{i}]")
    raise DictionaryError([Problem(_join(prefix, "bootstrap.steps"), f"no step named `{name}`")])


def render_step_parameters(provider: ProviderLike, step: str, ctx: TemplateContext) -> dict[str, Any]:
    """A bootstrap step's `parameters`, rendered (string leaves are templates keeping native types)."""
    d, _ = _unwrap(provider)
    s, where = _step(provider, step)
    m = _mapping(d, ctx, None)
    out = _render_body(dict(s.parameters), m, f"{where}.parameters")
    assert isinstance(out, dict)
    return out


def render_bootstrap_step(provider: ProviderLike, step: str, ctx: TemplateContext) -> RenderedOperation:
    """Render a bootstrap step: its inline call, or its service operation with `params` set."""
    s, where = _step(provider, step)
    if s.http is not None:
        return render_call(provider, s.http, ctx, where=f"{where}.http")
    if s.cli is not None:
        return render_call(provider, s.cli, ctx, where=f"{where}.cli")
    assert s.service is not None and s.operation is not None
    params = render_step_parameters(provider, step, ctx)
    return render_operation(provider, s.service, s.operation, ctx.replace(params=params))


def should_skip_step(provider: ProviderLike, step: str, ctx: TemplateContext) -> bool:
    """Evaluate a step's `skipIf` (False when it has none)."""
    d, _ = _unwrap(provider)
    s, where = _step(provider, step)
    if not s.skip_if.strip():
        return False
    expr = compile_expression(s.skip_if, where=f"{where}.skipIf")
    return bool(evaluate(expr, _mapping(d, ctx, None), where=f"{where}.skipIf"))


def render_callback(
    provider: ProviderLike,
    service: str,
    operation: str,
    callback: str | int,
    ctx: TemplateContext,
) -> tuple[Callback, RenderedOperation]:
    """Render a callback of an operation (by name or index); `ctx.result` should carry the answer."""
    op, path = find_operation(provider, service, operation)
    for i, cb in enumerate(op.then):
        if cb.name == callback or i == callback:
            call: HttpCall | CliCall = cb.http if cb.http is not None else cb.cli  # type: ignore[assignment]
            kind = "http" if cb.http is not None else "cli"
            return cb, render_call(provider, call, ctx, where=f"{path}.then[{i}].{kind}", service=service)
    raise DictionaryError([Problem(f"{path}.then", f"no callback `{callback}`")])


def _session(provider: ProviderLike, connection: str) -> tuple[SessionAuth, str]:
    d, prefix = _unwrap(provider)
    conn = d.connections.get(connection)
    where = _join(prefix, f"connections.{connection}.auth")
    if not isinstance(conn, HttpConnection) or not isinstance(conn.auth, SessionAuth):
        raise DictionaryError([Problem(where, "not a session-authenticated HTTP connection")])
    return conn.auth, where


def render_login(provider: ProviderLike, connection: str, ctx: TemplateContext) -> HttpRequest:
    """The session login request of an HTTP connection (its own connection is the default)."""
    auth, where = _session(provider, connection)
    call = auth.login if auth.login.connection else auth.login.model_copy(update={"connection": connection})
    out = render_call(provider, call, ctx, where=f"{where}.login")
    assert isinstance(out, HttpRequest)
    return out


def render_logout(provider: ProviderLike, connection: str, ctx: TemplateContext) -> HttpRequest | None:
    """The session logout request, if the connection has one."""
    auth, where = _session(provider, connection)
    if auth.logout is None:
        return None
    call = (
        auth.logout if auth.logout.connection else auth.logout.model_copy(update={"connection": connection})
    )
    out = render_call(provider, call, ctx, where=f"{where}.logout")
    assert isinstance(out, HttpRequest)
    return out


# ----------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class BatchChange:
    """One change of a batch: what the single-item operation would have been given."""

    op: Literal["create", "update", "delete"]
    key: tuple[Any, ...]
    """The natural key (display and error reports)."""
    item: Mapping[str, Any] | None = None
    """The desired item, ownership marker written (create, update)."""
    actual: Mapping[str, Any] | None = None
    """The device's item (update, delete)."""
    id: str | None = None
    """The device id (update, delete)."""


_T = TypeVar("_T")


class _CheckedRaw(SafeText):
    """A change's snippet rendered under the `rawBody` rules: safe in a raw body, and an ordinary
    value anywhere else (a path or query still checks it)."""

    __slots__ = ()


class _ChangeSnippets(Mapping[str, Any]):
    """`change.templates.NAME`: a snippet rendered with one change's `item`, `actual` and `id`, so a
    batch operation reuses the snippets of the single-item operations."""

    __slots__ = ("_context", "_kind", "_sources", "_where")

    def __init__(
        self, sources: Mapping[str, str], kind: Kind, context: Mapping[str, Any], where: str
    ) -> None:
        self._sources = sources
        self._kind = kind
        self._context = context
        self._where = where

    def __getitem__(self, name: str) -> str:
        where = f"{self._where} (templates.{name})"
        text = render_text(self._sources[name], self._kind, self._context, where=where)
        if self._kind is Kind.CLI:
            return SnippetText(text)  # CLI lines: checked by the CLI rules already
        if self._kind is Kind.RAW:
            return _CheckedRaw(text)
        return text  # plain text: checked again by the rules of the place it lands in

    def __contains__(self, name: object) -> bool:
        return name in self._sources

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


def batch_context(
    provider: ProviderLike, service: str, operation: str, ctx: TemplateContext, changes: Sequence[BatchChange]
) -> TemplateContext:
    """The context of a batch operation: `items` (every change, in order), `creates`, `updates` and
    `deletes`. Each change is `{op, key, item, actual, id, templates, commands}` (absent parts are
    None): `templates.NAME` renders a snippet with that change's `item`, `actual` and `id`; for a CLI
    batch, `commands` are the lines the change's own `create`/`update`/`delete` would send."""
    d, _ = _unwrap(provider)
    op, where = find_operation(provider, service, operation)
    call: HttpCall | CliCall = op.http if op.http is not None else op.cli  # type: ignore[assignment]
    if isinstance(call, CliCall):
        kind, conn_name = Kind.CLI, d.connection_named(call.connection, "ssh")
    else:
        kind = Kind.RAW if call.raw_body is not None else Kind.TEXT
        conn_name = d.connection_named(call.connection, "http")
    marker = render_marker(provider, service, ctx)
    entries: list[dict[str, Any]] = []
    for i, change in enumerate(changes):
        one = ctx.replace(items=None, creates=None, updates=None, deletes=None).for_item(
            change.item, actual=change.actual, id=change.id
        )
        m = _mapping(d, one, conn_name, marker)
        entry: dict[str, Any] = {
            "op": change.op,
            "key": list(change.key),
            "item": change.item,
            "actual": change.actual,
            "id": change.id,
            "templates": _ChangeSnippets(d.templates, kind, m, f"{where} items[{i}]"),
            "commands": None,
        }
        if kind is Kind.CLI:
            # The lines the change's own operation would send, checked by the CLI rules already.
            single = render_operation(provider, service, change.op, one)
            if isinstance(single, CliCommands):
                entry["commands"] = [SnippetText(line) for line in single.commands]
        entries.append(entry)
    return ctx.replace(
        items=entries,
        creates=[e for e in entries if e["op"] == "create"],
        updates=[e for e in entries if e["op"] == "update"],
        deletes=[e for e in entries if e["op"] == "delete"],
    )


def render_batch(
    provider: ProviderLike, service: str, operation: str, ctx: TemplateContext, changes: Sequence[BatchChange]
) -> RenderedOperation:
    """Render a service's batch operation once for the whole change set (see `batch_context`)."""
    return render_operation(
        provider, service, operation, batch_context(provider, service, operation, ctx, changes)
    )


def chunked(changes: Sequence[_T], size: int | None) -> list[Sequence[_T]]:
    """The change set split into requests of at most `size` changes (one request without a size)."""
    if not changes:
        return []
    if size is None or size >= len(changes):
        return [changes]
    return [changes[i : i + size] for i in range(0, len(changes), size)]


def operation_references(provider: ProviderLike, service: str, operation: str) -> frozenset[str]:
    """Top-level template names an operation's call uses (`before_id`: the create places the item)."""
    op, where = find_operation(provider, service, operation)
    call: HttpCall | CliCall = op.http if op.http is not None else op.cli  # type: ignore[assignment]
    sources: list[str] = []
    if isinstance(call, CliCall):
        sources += call.commands
    else:
        sources += [call.path, *call.query.values(), *call.headers.values()]
        sources += [v for v in (call.form or {}).values() if isinstance(v, str)]
        sources += [call.raw_body] if call.raw_body is not None else []
        sources += _strings(call.body)
    names: set[str] = set()
    for src in sources:
        names |= compile_template(src, Kind.TEXT, where=where).refs.names
    return frozenset(names)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


# ----------------------------------------------------------------------------- display


def display_masker(ctx: TemplateContext, connections: Sequence[ResolvedConnection] = ()) -> SecretMasker:
    """A masker for every credential value of `ctx` and every secret of the resolved connections."""
    masker = SecretMasker(str(v) for v in ctx.credentials.values() if v and not _placeholder(str(v)))
    for c in connections:
        masker.add(*(s for s in c.secrets() if not _placeholder(s)))
    return masker


def _placeholder(value: str) -> bool:
    """Display placeholders (`<credentials.NAME>`) are not secrets."""
    return "<credentials." in value


def _mask_data(value: Any, masker: SecretMasker) -> Any:
    if isinstance(value, str):
        return masker.mask(str(value))
    if isinstance(value, Mapping):
        return {k: _mask_data(v, masker) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_data(v, masker) for v in value]
    return value


def describe(op: RenderedOperation, conn: ResolvedConnection | None, masker: SecretMasker) -> dict[str, Any]:
    """Display data for a rendered operation: full URL, headers (auth included), body; secrets masked."""
    if isinstance(op, HttpRequest):
        headers: dict[str, str] = dict(conn.headers) if conn else {}
        auth = conn.auth if conn else None
        if auth is not None:
            if auth.type == "basic" and (
                "<credentials." in auth.username or "<credentials." in auth.password
            ):
                headers["Authorization"] = f"Basic base64({auth.username}:{auth.password})"
            elif auth.type == "basic":
                token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            elif auth.type == "bearer":
                headers["Authorization"] = f"Bearer {auth.token}"
            elif auth.type == "header":
                headers[auth.header] = auth.value
            elif auth.type == "session" and auth.session is not None:
                headers[auth.session.token_header] = f"{auth.session.token_prefix}<session token>"
        headers.update(op.headers)
        body = op.json
        if auth is not None and auth.type == "bodyKey" and isinstance(body, dict):
            body = {**body, auth.field: auth.value}
        if (
            auth is not None
            and auth.type == "bodyKey"
            and body is None
            and op.form is None
            and op.content is None
            and op.multipart is None
        ):
            body = {auth.field: auth.value}
        if body is not None and not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = "application/json"
        out: dict[str, Any] = {
            "kind": "http",
            "connection": op.connection,
            "method": op.method,
            "url": (conn.base_url if conn else "") + op.path,
            "path": op.path,
            "query": dict(op.query),
            "headers": headers,
        }
        if body is not None:
            out["json"] = body
        if op.form is not None:
            out["form"] = dict(op.form)
        if op.content is not None:
            out["content"] = op.content
        if op.multipart is not None:
            out["multipart"] = {
                p.name: {"filename": p.filename, "contentType": p.content_type, "content": p.content}
                for p in op.multipart
            }
        out["timeout"] = op.timeout
        return _mask_data(out, masker)  # type: ignore[no-any-return]
    out = {
        "kind": "cli",
        "connection": op.connection,
        "target": f"{conn.username}@{_host_for_url(conn.host)}:{conn.port}" if conn else "",
        "mode": op.mode,
        "configMode": op.config_mode,
        # What the session sends, config-mode lines included (the transport adds those).
        "commands": [
            *(conn.config_enter if conn and op.config_mode else ()),
            *op.commands,
            *(conn.config_exit if conn and op.config_mode else ()),
        ],
        "timeout": op.timeout,
    }
    return _mask_data(out, masker)  # type: ignore[no-any-return]


def format_text(data: Mapping[str, Any]) -> str:
    """Plain-text form of `describe()` output: an HTTP request or a command list."""
    from urllib.parse import urlencode

    if data.get("kind") == "http":
        url = data["url"]
        if data.get("query"):
            url += "?" + urlencode(data["query"])
        lines = [f"{data['method']} {url}"]
        lines += [f"{k}: {v}" for k, v in data.get("headers", {}).items()]
        if "json" in data:
            lines += ["", json.dumps(data["json"], indent=2, ensure_ascii=False)]
        elif "form" in data:
            lines += ["", urlencode(data["form"])]
        elif "content" in data:
            lines += ["", data["content"]]
        elif "multipart" in data:
            for name, part in data["multipart"].items():
                file = f"; filename={part['filename']!r} ({part['contentType']})" if part["filename"] else ""
                lines += ["", f"--- part {name}{file}", part["content"]]
        return "\n".join(lines)
    config = ", config mode" if data.get("configMode") else ""
    head = f"# ssh {data.get('target', '')} ({data.get('mode')}{config})"
    return "\n".join([head, *data.get("commands", [])])


__all__ = [
    "MASK",
    "BatchChange",
    "ProviderLike",
    "ResolvedAuth",
    "ResolvedConnection",
    "TemplateError",
    "batch_context",
    "chunked",
    "connection_info",
    "describe",
    "display_masker",
    "find_operation",
    "format_text",
    "health_check_paths",
    "operation_references",
    "render_batch",
    "render_bootstrap_step",
    "render_call",
    "render_callback",
    "render_connection",
    "render_health_check",
    "render_login",
    "render_logout",
    "render_marker",
    "render_operation",
    "render_step_parameters",
    "should_skip_step",
]
