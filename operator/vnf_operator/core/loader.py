"""Loading and checking provider dictionaries.

`load_provider_text` / `load_provider_file` / `load_provider_data` accept a `VnfProvider` manifest
or a bare dictionary and return a `LoadedProvider`, or raise `DictionaryError` carrying EVERY
problem found, each with a document path as written (camelCase, `spec.` for manifests):

1. YAML (line and column; duplicate keys, YAML 1.2 booleans, no timestamps, bounded aliases);
2. structure (the pydantic model: unknown keys, wrong types, missing keys);
3. semantics, once the structure is sound: templates compile and use only known context names
   and declared credentials; secrets are never literals; JSONPaths, regexes and TextFSM templates
   compile; connections, services, operations, fields, steps referenced exist; no dependency
   cycles; HTTP calls use HTTP connections and CLI calls SSH ones; writable services have `list`
   and `identity`; field defaults and enums fit their types.

The only I/O here is reading the file `load_provider_file` is given.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nodes as jn
import yaml
from pydantic import BaseModel, ValidationError

from vnf_operator.core import model as m
from vnf_operator.core import rollout
from vnf_operator.core.errors import DictionaryError, Problem, ProblemsError, TemplateError
from vnf_operator.core.itemschema import type_problem, value_problem
from vnf_operator.core.parse import CompileError, compile_jsonpath, compile_regex, textfsm_template
from vnf_operator.core.templating import (
    CONTEXT_NAMES,
    CompiledExpression,
    CompiledTemplate,
    Kind,
    References,
    compile_expression,
    compile_template,
)

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
_ROW_NAMES = frozenset({"row", "omit"})
"""Names a dictionary template may use; where `begin` is defined is checked by `_Checker.begin`."""
_BEGIN_PLACE = re.compile(r"services\.([^.]+)\.(?:operations\.([^.]+)|(commit|abort)|begin\[(\d+)\])[.\[]")
MAX_ALIASES = 200

# ----------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no timestamps, duplicate-key errors and an alias budget."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_ALIASES} aliases", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable key: the base constructor reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _yaml_problem(e: yaml.YAMLError) -> Problem:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    context = getattr(e, "context", None)
    text = f"{context}: {problem}" if context and "duplicate key" not in str(problem) else str(problem)
    if mark is not None:
        return Problem("", f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {text}")
    return Problem("", f"YAML error: {text}")


def parse_yaml(text: str, *, source: str = "", error: type[ProblemsError] = DictionaryError) -> Any:
    """Parse one YAML document the way dictionaries are parsed (see module doc); `error` on failure."""
    if len(text.encode("utf-8", "replace")) > MAX_DOCUMENT_BYTES:
        raise error([Problem("", f"document larger than {MAX_DOCUMENT_BYTES} bytes")], source=source)
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise error([_yaml_problem(e)], source=source) from None
    except (RecursionError, ValueError, OverflowError) as e:
        raise error([Problem("", f"YAML error: {type(e).__name__}")], source=source) from None
    docs = [d for d in docs if d is not None]
    if len(docs) > 1:
        raise error([Problem("", f"expected one YAML document, found {len(docs)}")], source=source)
    return docs[0] if docs else None


# ----------------------------------------------------------------------------- result


@dataclass(frozen=True)
class LoadedProvider:
    """A checked dictionary with its templates and JSONPaths precompiled (cached for rendering)."""

    name: str
    """metadata.name of a manifest, or a slug of info.name for a bare dictionary."""
    dictionary: m.ProviderDictionary
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The manifest's metadata (empty for a bare dictionary)."""
    manifest: bool = True
    """Loaded from a VnfProvider manifest (document paths start with `spec.`)."""
    templates: Mapping[str, CompiledTemplate] = field(default_factory=dict)
    """Every template by document path, compiled for the place it renders in."""
    expressions: Mapping[str, CompiledExpression] = field(default_factory=dict)
    """Every bare expression (`skipIf`) by document path."""
    jsonpaths: Mapping[str, Any] = field(default_factory=dict)
    """Every JSONPath (compiled) by its text."""

    @property
    def path_prefix(self) -> str:
        """`spec` for manifests (and cluster objects), empty for a bare dictionary."""
        return "spec" if self.manifest else ""

    @property
    def version(self) -> str:
        return self.dictionary.info.version


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:63] or "provider"


# ----------------------------------------------------------------------------- structure


def _all_keys() -> set[str]:
    keys: set[str] = set()
    for obj in vars(m).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            for name, f in obj.model_fields.items():
                keys.add(f.alias or name)
    return keys


_KNOWN_KEYS = _all_keys()


def _loc_to_path(loc: tuple[int | str, ...], data: Any, err_type: str, prefix: str) -> str:
    parts: list[str] = [prefix] if prefix else []
    node = data
    for i, el in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and el in node:
            parts.append(f".{el}" if parts else str(el))
            node = node[el]
        elif isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node):
            parts.append(f"[{el}]")
            node = node[el]
        elif last and err_type == "missing":
            parts.append(f".{el}" if parts else str(el))
    return "".join(parts)


def _message(err: Mapping[str, Any]) -> str:
    t = err["type"]
    msg = str(err["msg"])
    if t == "missing":
        return "is required"
    if t == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1, cutoff=0.75)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return f"unknown key `{key}`{hint}"
    if t in ("union_tag_invalid", "union_tag_not_found"):
        return msg.replace("Input tag", "type").replace(" found using 'type'", "")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if t == "string_pattern_mismatch" and err["loc"] and err["loc"][-1] == "[key]":
        return f"invalid name {err['input']!r} (letters, digits, `_` and `-`; starts with a letter or `_`)"
    return msg


def _structure_problems(e: ValidationError, data: Any, prefix: str) -> list[Problem]:
    out: list[Problem] = []
    for err in e.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            path = _loc_to_path(loc, data, err["type"], prefix)
        else:
            path = _loc_to_path(loc, data, err["type"], prefix)
            if err["type"] in ("union_tag_invalid",):
                path += ".type"
        out.append(Problem(path, _message(err)))
    return _dedupe(out)


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


# ----------------------------------------------------------------------------- semantics

_SECRET_KEY = re.compile(
    r"(?i)(pass(word|wd|phrase)?|secret|token|api[-_]?key|apikey|private[-_]?key|authorization|credential)"
)
_SECRET_HEADER = re.compile(
    r"(?i)^(authorization|proxy-authorization|x-api-key|x-auth-token|api-key|apikey|cookie)$"
)
_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_LOOKS_SECRET = re.compile(r"[A-Za-z0-9+/=_.:-]{8,}")


def _literal_text(source: str) -> str:
    return _TAGS.sub(" ", source).strip()


def _is_template(source: str) -> bool:
    return "{{" in source or "{%" in source


class _Checker:
    def __init__(self, d: m.ProviderDictionary, prefix: str) -> None:
        self.d = d
        self.prefix = prefix
        self.problems: list[Problem] = []
        self.templates: dict[str, CompiledTemplate] = {}
        self.expressions: dict[str, CompiledExpression] = {}
        self.jsonpaths: dict[str, Any] = {}

    # -- helpers
    def path(self, rel: str) -> str:
        if not rel:
            return self.prefix
        if not self.prefix:
            return rel
        return f"{self.prefix}{rel}" if rel.startswith("[") else f"{self.prefix}.{rel}"

    def err(self, rel: str, message: str) -> None:
        self.problems.append(Problem(self.path(rel), message))

    def refs(self, refs: References, rel: str, names: frozenset[str] = CONTEXT_NAMES) -> None:
        unknown = sorted(refs.names - names)
        for name in unknown:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            if names is _ROW_NAMES:
                self.err(rel, f"unknown template variable `{name}`{hint}; `compute` templates see only `row`")
            else:
                self.err(
                    rel,
                    f"unknown template variable `{name}`{hint}; see the template context in docs/language.md",
                )
        for name in sorted(refs.credentials - set(self.d.credentials)):
            self.err(rel, f"credential `{name}` is not declared in `credentials`")
        for name in sorted(refs.snippets - set(self.d.templates)):
            self.err(rel, f"template snippet `{name}` is not declared in `templates`")
        for name in sorted(refs.dynamic):
            self.err(rel, f"`{name}` must be used as `{name}.NAME` so the names can be checked")

    def template(
        self,
        source: str,
        kind: Kind,
        rel: str,
        *,
        secret: bool = False,
        names: frozenset[str] = CONTEXT_NAMES,
    ) -> CompiledTemplate | None:
        try:
            ct = compile_template(source, kind, where=self.path(rel))
        except TemplateError as e:
            self.problems.append(Problem(e.where, _tmsg(e)))
            return None
        self.templates[self.path(rel)] = ct
        self.refs(ct.refs, rel, names)
        if secret:
            if not ct.refs.credentials:
                self.err(
                    rel,
                    "must reference a declared credential (e.g. `{{ credentials.password }}`): "
                    "a dictionary never holds a secret value",
                )
            if _LOOKS_SECRET.search(_literal_text(source)):
                self.err(rel, "contains a literal that looks like a secret; reference a credential instead")
        return ct

    def literal_secret(self, key: str, value: Any, rel: str, *, header: bool = False) -> None:
        """A credential-looking key or header with a literal (non-template) value."""
        pattern = _SECRET_HEADER if header else _SECRET_KEY
        if not isinstance(value, str) or not value.strip() or not pattern.search(key):
            return
        if not _is_template(value) or (_LOOKS_SECRET.search(_literal_text(value)) and header):
            self.err(
                rel, f"`{key}` looks like a credential but holds a literal; use `{{{{ credentials.NAME }}}}`"
            )

    def jsonpath(self, expr: str, rel: str) -> None:
        if not expr:
            return
        try:
            self.jsonpaths[expr] = compile_jsonpath(expr)
        except CompileError as e:
            self.err(rel, str(e))

    def regex(self, pattern: str, rel: str, *, named_groups: bool = False) -> None:
        if not pattern:
            return
        try:
            rx = compile_regex(pattern)
        except CompileError as e:
            self.err(rel, str(e))
            return
        if named_groups and not rx.groupindex:
            self.err(rel, "the regex needs named groups (`(?P<field>...)`), one per item field")

    # -- connections
    def connections(self) -> None:
        for name, c in self.d.connections.items():
            rel = f"connections.{name}"
            if isinstance(c, m.HttpConnection):
                for h, v in c.headers.items():
                    self.template(v, Kind.HEADER, f"{rel}.headers.{h}")
                    self.literal_secret(h, v, f"{rel}.headers.{h}", header=True)
                self.auth(c, f"{rel}.auth")
            else:
                self.template(c.username, Kind.TEXT, f"{rel}.username")
                if c.password is not None:
                    self.template(c.password, Kind.TEXT, f"{rel}.password", secret=True)
                if c.private_key is not None:
                    self.template(c.private_key, Kind.TEXT, f"{rel}.privateKey", secret=True)
                if c.host_key is not None:
                    self.template(c.host_key, Kind.TEXT, f"{rel}.hostKey")
                pr = c.prompts
                self.regex(pr.prompt, f"{rel}.prompts.prompt")
                self.regex(pr.config_prompt, f"{rel}.prompts.configPrompt")
                self.regex(pr.pager, f"{rel}.prompts.pager")
                for i, a in enumerate(pr.answers):
                    self.regex(a.pattern, f"{rel}.prompts.answers[{i}].pattern")
                for i, p in enumerate(c.error_patterns):
                    self.regex(p, f"{rel}.errorPatterns[{i}]")
                if not c.config_enter and c.config_exit:
                    self.err(f"{rel}.configEnter", "`configExit` is set but `configEnter` is empty")

    def auth(self, c: m.HttpConnection, rel: str) -> None:
        a = c.auth
        if a is None:
            return
        if isinstance(a, m.BasicAuth):
            self.template(a.username, Kind.TEXT, f"{rel}.username")
            self.template(a.password, Kind.TEXT, f"{rel}.password", secret=True)
        elif isinstance(a, m.BearerAuth):
            self.template(a.token, Kind.HEADER, f"{rel}.token", secret=True)
        elif isinstance(a, m.HeaderAuth):
            self.template(a.value, Kind.HEADER, f"{rel}.value", secret=True)
        elif isinstance(a, m.BodyKeyAuth):
            self.template(a.value, Kind.TEXT, f"{rel}.value", secret=True)
        else:
            self.http_call(a.login, f"{rel}.login", default_connection=True)
            login_refs = [
                ct.refs for p, ct in self.templates.items() if p.startswith(self.path(f"{rel}.login"))
            ]
            if not any(r.credentials for r in login_refs):
                self.err(f"{rel}.login", "the login request must send a declared credential")
            self.jsonpath(a.token, f"{rel}.token")
            self.jsonpath(a.csrf_from, f"{rel}.csrfFrom")
            if (a.csrf_cookie or a.csrf_from) and not a.csrf_header:
                self.err(f"{rel}.csrfHeader", "`csrfCookie`/`csrfFrom` need `csrfHeader`")
            if a.logout is not None:
                self.http_call(a.logout, f"{rel}.logout", default_connection=True)

    # -- calls
    def http_call(self, call: m.HttpCall, rel: str, *, default_connection: bool = False) -> None:
        self.connection_ref(call.connection, "http", rel, allow_default=default_connection)
        self.template(call.path, Kind.PATH, f"{rel}.path")
        literal = _TAGS.sub("x", call.path)
        if "?" in literal or "#" in literal:
            self.err(f"{rel}.path", "the path must not contain `?` or `#`; use `query` for parameters")
        for k, v in call.query.items():
            self.template(v, Kind.QUERY, f"{rel}.query.{k}")
            self.literal_secret(k, v, f"{rel}.query.{k}")
        for k, v in call.headers.items():
            self.template(v, Kind.HEADER, f"{rel}.headers.{k}")
            self.literal_secret(k, v, f"{rel}.headers.{k}", header=True)
        if call.body is not None:
            self.body(call.body, f"{rel}.body")
        if call.form is not None:
            for k, v in call.form.items():
                if isinstance(v, str):
                    self.template(v, Kind.FORM, f"{rel}.form.{k}")
                self.literal_secret(k, v, f"{rel}.form.{k}")
        if call.raw_body is not None:
            self.template(call.raw_body, Kind.RAW, f"{rel}.rawBody")
        for name, part in (call.multipart or {}).items():
            self.template(part.content, Kind.FORM, f"{rel}.multipart.{name}.content")
            self.literal_secret(name, part.content, f"{rel}.multipart.{name}.content")
            if part.filename is not None:
                self.template(part.filename, Kind.HEADER, f"{rel}.multipart.{name}.filename")
        if call.method in ("GET", "HEAD") and (
            call.body is not None
            or call.form is not None
            or call.raw_body is not None
            or call.multipart is not None
        ):
            self.err(f"{rel}.method", f"a {call.method} request cannot carry a body; use POST or `query`")

    def body(self, value: Any, rel: str) -> None:
        if isinstance(value, str):
            self.template(value, Kind.JSON, rel)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                self.body(v, f"{rel}.{k}")
                self.literal_secret(str(k), v, f"{rel}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.body(v, f"{rel}[{i}]")

    def cli_call(self, call: m.CliCall, rel: str) -> None:
        self.connection_ref(call.connection, "ssh", rel)
        for i, line in enumerate(call.commands):
            self.template(line, Kind.CLI, f"{rel}.commands[{i}]")
        if call.config_mode:
            name = self.d.connection_named(call.connection, "ssh")
            conn = self.d.connections.get(name) if name else None
            if isinstance(conn, m.SshConnection) and not conn.config_enter:
                self.err(f"{rel}.configMode", f"connection `{name}` has no `configEnter` lines")

    def connection_ref(self, name: str | None, kind: str, rel: str, *, allow_default: bool = False) -> None:
        if name is None:
            if allow_default:
                return
            if self.d.connection_named(None, "ssh" if kind == "ssh" else "http") is None:
                what = "SSH" if kind == "ssh" else "HTTP"
                self.err(f"{rel}", f"no {what} connection in `connections` for this call")
            return
        conn = self.d.connections.get(name)
        if conn is None:
            known = ", ".join(self.d.connections)
            self.err(f"{rel}.connection", f"no connection `{name}` (known: {known})")
        elif kind == "ssh" and not isinstance(conn, m.SshConnection):
            self.err(
                f"{rel}.connection",
                f"`{name}` is an {conn.type} connection; `cli` calls need an ssh connection",
            )
        elif kind == "http" and not isinstance(conn, m.HttpConnection):
            self.err(
                f"{rel}.connection", f"`{name}` is an ssh connection; `http` calls need an http(s) connection"
            )

    def call_of(self, owner: m.Operation | m.Callback | m.BootstrapStep | m.HealthCheck, rel: str) -> None:
        if owner.http is not None:
            self.http_call(owner.http, f"{rel}.http")
        if owner.cli is not None:
            self.cli_call(owner.cli, f"{rel}.cli")

    # -- responses
    def expect(self, e: m.Expect, rel: str) -> None:
        self.jsonpath(e.jsonpath, f"{rel}.jsonpath")
        self.regex(e.matches, f"{rel}.matches")
        self.regex(e.not_matches, f"{rel}.notMatches")
        if (e.equals is not None or e.one_of) and not e.jsonpath:
            self.err(f"{rel}.jsonpath", "`equals`/`oneOf` compare a JSONPath value: set `jsonpath`")

    def response(self, r: m.Response, rel: str, *, op_name: str = "", cli: bool = False) -> None:
        text = r.format in ("text", "cli")
        if r.success is not None:
            self.expect(r.success, f"{rel}.success")
        if r.absent is not None:
            self.expect(r.absent, f"{rel}.absent")
        errs = r.error if isinstance(r.error, list) else [r.error]
        for i, e in enumerate(errs):
            er = f"{rel}.error" if isinstance(r.error, str) else f"{rel}.error[{i}]"
            self.regex(e, er) if text else self.jsonpath(e, er)
        if r.items:
            if text:
                self.err(f"{rel}.items", "`items` is a JSONPath; text answers use `regex` or `textfsm`")
            else:
                self.jsonpath(r.items, f"{rel}.items")
        for k, v in r.compute.items():
            self.template(v, Kind.JSON, f"{rel}.compute.{k}", names=_ROW_NAMES)
        if not text and r.regex is None and r.textfsm is None:
            for k, v in r.fields.items():
                self.jsonpath(v, f"{rel}.fields.{k}")
        if r.id:
            self.regex(r.id, f"{rel}.id") if text else self.jsonpath(r.id, f"{rel}.id")
        for k, v in r.capture.items():
            self.regex(v, f"{rel}.capture.{k}") if text else self.jsonpath(v, f"{rel}.capture.{k}")
        if r.regex is not None:
            self.regex(r.regex.pattern, f"{rel}.regex.pattern", named_groups=True)
        if r.textfsm is not None:
            try:
                textfsm_template(r.textfsm)
            except CompileError as e:
                self.err(f"{rel}.textfsm", str(e))
            except OSError as e:
                self.err(f"{rel}.textfsm", f"cannot read the ntc-templates template: {e}")
        if r.pagination is not None:
            self.jsonpath(r.pagination.next_jsonpath, f"{rel}.pagination.nextJsonpath")
            p = r.pagination
            if not (p.page_param or p.offset_param or p.next_jsonpath):
                self.err(f"{rel}.pagination", "give `pageParam`, `offsetParam` or `nextJsonpath`")
        if op_name == "list" and r.format == "none":
            self.err(f"{rel}.format", "a `list` operation must read items from its answer")
        if cli and r.format not in ("cli", "text", "none"):
            self.err(f"{rel}.format", f"a CLI answer is text: use `format: cli` (not {r.format})")

    # -- fields
    def fields(self, fields: Mapping[str, m.FieldSpec], rel: str) -> None:
        for name, f in fields.items():
            self.field(f, f"{rel}.{name}")

    def field(self, f: m.FieldSpec, rel: str) -> None:
        self.regex(f.pattern, f"{rel}.pattern")
        for i, v in enumerate(f.enum):
            if f.type not in (m.FieldType.LIST, m.FieldType.OBJECT):
                problem = type_problem(f.type, v)
                if problem:
                    self.err(f"{rel}.enum[{i}]", f"enum value {problem}")
        if f.default is not None:
            if f.type is m.FieldType.LIST or f.type is m.FieldType.OBJECT:
                problem = type_problem(f.type, f.default)
            else:
                problem = value_problem(f, f.default)
            if problem:
                self.err(f"{rel}.default", f"default {problem}")
        if f.items is not None:
            self.field(f.items, f"{rel}.items")
        self.fields(f.fields, f"{rel}.fields")

    # -- health checks
    def health_checks(self, checks: list[m.HealthCheck], rel: str) -> None:
        names: dict[str, int] = {}
        for i, hc in enumerate(checks):
            hr = f"{rel}[{i}]"
            if hc.name in names:
                self.err(
                    f"{hr}.name", f"duplicate health check name `{hc.name}` (also {rel}[{names[hc.name]}])"
                )
            names.setdefault(hc.name, i)
            self.call_of(hc, hr)
            if hc.tcp is not None and hc.tcp.connection not in self.d.connections:
                self.err(f"{hr}.tcp.connection", f"no connection `{hc.tcp.connection}`")
            self.expect(hc.expect, f"{hr}.expect")
            if hc.response is not None:
                self.response(hc.response, f"{hr}.response", cli=hc.cli is not None)

    # -- services
    def services(self) -> None:
        for sname, svc in self.d.services.items():
            rel = f"services.{sname}"
            self.fields(svc.fields, f"{rel}.fields")
            ops = svc.operations
            for i, dep in enumerate(svc.depends_on):
                if dep not in self.d.services:
                    self.err(f"{rel}.dependsOn[{i}]", f"no service `{dep}`")
                elif dep == sname:
                    self.err(f"{rel}.dependsOn[{i}]", "a service cannot depend on itself")
            writes = [o for o in m.WRITE_OPERATIONS if o in ops]
            if writes and "list" not in ops:
                self.err(
                    f"{rel}.operations", f"has {', '.join(writes)} but no `list` operation to diff against"
                )
            if writes and svc.identity is None:
                self.err(f"{rel}.identity", f"has {', '.join(writes)}: `identity` (natural key) is required")
            if svc.identity is not None:
                for i, k in enumerate(svc.identity.key):
                    if k not in svc.fields:
                        self.err(
                            f"{rel}.identity.key[{i}]",
                            f"key field `{k}` is not in `fields`{_known(svc.fields)}",
                        )
            if svc.ownership is not None:
                if svc.ownership.field not in svc.fields:
                    self.err(
                        f"{rel}.ownership.field",
                        f"field `{svc.ownership.field}` is not in `fields`{_known(svc.fields)}",
                    )
                self.template(svc.ownership.marker, Kind.TEXT, f"{rel}.ownership.marker")
            if svc.ordering is not None:
                o = svc.ordering
                if o.position_field is not None and o.position_field not in svc.fields:
                    self.err(
                        f"{rel}.ordering.positionField", f"field `{o.position_field}` is not in `fields`"
                    )
                if o.move is not None and o.move not in ops:
                    self.err(f"{rel}.ordering.move", f"no operation `{o.move}` in this service")
                if o.position_field is None and o.move is None:
                    self.err(f"{rel}.ordering", "give `positionField` or `move`")
            if svc.batch is not None and svc.batch not in ops:
                self.err(f"{rel}.batch", f"no operation `{svc.batch}` in this service")
            if svc.batch is not None and svc.batch in ("list", "create", "update", "delete"):
                self.err(f"{rel}.batch", f"`{svc.batch}` is a single-item operation; name a separate one")
            if svc.batch_size is not None and svc.batch is None:
                self.err(f"{rel}.batchSize", "needs `batch` (the operation taking the change set)")
            for oname, op in ops.items():
                self.operation(op, f"{rel}.operations.{oname}", oname)
            if svc.commit is not None:
                self.operation(svc.commit, f"{rel}.commit", "commit")
            for i, step in enumerate(svc.begin):
                self.operation(step, f"{rel}.begin[{i}]", "begin")
            if svc.abort is not None:
                self.operation(svc.abort, f"{rel}.abort", "abort")
                if not svc.begin:
                    self.err(f"{rel}.abort", "needs `begin` (abort drops what `begin` opened)")
        self.lifecycle_operations()
        self.cycles(
            {n: s.depends_on for n, s in self.d.services.items()},
            lambda n: f"services.{n}.dependsOn",
            "service",
        )

    def lifecycle_operations(self) -> None:
        """The operations the operator runs itself: one service each, with the agreed shapes."""
        for oname in m.LIFECYCLE_OPERATIONS:
            owners = [s for s, svc in self.d.services.items() if oname in svc.operations]
            for extra in owners[1:]:
                self.err(
                    f"services.{extra}.operations.{oname}",
                    f"`{oname}` is already declared by service `{owners[0]}` (the operator runs one)",
                )
            if not owners:
                continue
            op = self.d.services[owners[0]].operations[oname]
            rel = f"services.{owners[0]}.operations.{oname}"
            wants = {"restore": "config", "upgrade": "version"}.get(oname)
            if wants is not None and wants not in op.parameters:
                self.err(f"{rel}.parameters", f"`{oname}` must declare the parameter `{wants}`")
            text = op.response.format in ("text", "cli")
            if oname == "version" and "version" not in op.response.capture and not text:
                self.err(f"{rel}.response.capture", "`version` must capture `version` (or answer plain text)")

    def operation(self, op: m.Operation, rel: str, name: str) -> None:
        self.call_of(op, rel)
        self.response(op.response, f"{rel}.response", op_name=name, cli=op.cli is not None)
        self.fields(op.parameters, f"{rel}.parameters")
        names: set[str] = set()
        for i, cb in enumerate(op.then):
            if cb.name in names:
                self.err(f"{rel}.then[{i}].name", f"duplicate callback name `{cb.name}`")
            names.add(cb.name)
            self.call_of(cb, f"{rel}.then[{i}]")

    # -- bootstrap
    def bootstrap(self) -> None:
        b = self.d.bootstrap
        if b is None:
            return
        rel = "bootstrap"
        if b.connection is not None and b.connection not in self.d.connections:
            self.err(f"{rel}.connection", f"no connection `{b.connection}`")
        self.health_checks(b.needed_when, f"{rel}.neededWhen")
        self.health_checks(b.ready, f"{rel}.ready")
        index: dict[str, int] = {}
        for i, s in enumerate(b.steps):
            if s.name in index:
                self.err(f"{rel}.steps[{i}].name", f"duplicate step name `{s.name}`")
            index.setdefault(s.name, i)
        for i, s in enumerate(b.steps):
            sr = f"{rel}.steps[{i}]"
            for j, dep in enumerate(s.depends_on):
                if dep not in index:
                    self.err(f"{sr}.dependsOn[{j}]", f"no step `{dep}`")
                elif dep == s.name:
                    self.err(f"{sr}.dependsOn[{j}]", "a step cannot depend on itself")
            captures: set[str] = set(s.response.capture)
            if s.operation is not None:
                svc = self.d.services.get(s.service or "")
                if svc is None:
                    self.err(f"{sr}.service", f"no service `{s.service}`")
                elif s.operation not in svc.operations and not (s.operation == "commit" and svc.commit):
                    self.err(f"{sr}.operation", f"service `{s.service}` has no operation `{s.operation}`")
                else:
                    target = svc.operations.get(s.operation) or svc.commit
                    if target is not None:
                        captures |= set(target.response.capture)
                self.body(dict(s.parameters), f"{sr}.parameters")
            else:
                self.call_of(s, sr)
                self.response(s.response, f"{sr}.response", cli=s.cli is not None)
            for j, out in enumerate(s.outputs):
                if out not in captures:
                    self.err(
                        f"{sr}.outputs[{j}]", f"`{out}` is not captured by the step's response (`capture`)"
                    )
            if s.skip_if.strip():
                try:
                    ce = compile_expression(s.skip_if, where=self.path(f"{sr}.skipIf"))
                except TemplateError as e:
                    self.problems.append(Problem(e.where, _tmsg(e)))
                else:
                    self.expressions[self.path(f"{sr}.skipIf")] = ce
                    self.refs(ce.refs, f"{sr}.skipIf")
        self.cycles(
            {s.name: s.depends_on for s in b.steps},
            lambda n: f"bootstrap.steps[{index[n]}].dependsOn",
            "step",
        )

    def cycles(self, graph: Mapping[str, list[str]], where: Any, what: str) -> None:
        WHITE, GREY, BLACK = 0, 1, 2
        color = dict.fromkeys(graph, WHITE)
        reported: set[frozenset[str]] = set()

        def visit(n: str, stack: list[str]) -> None:
            color[n] = GREY
            stack.append(n)
            for dep in graph.get(n, []):
                if dep not in graph or dep == n:
                    continue
                if color[dep] == GREY:
                    cyc = [*stack[stack.index(dep) :], dep]
                    key = frozenset(cyc)
                    if key not in reported:
                        reported.add(key)
                        self.err(where(dep), f"dependency cycle: {' → '.join(cyc)}")
                elif color[dep] == WHITE:
                    visit(dep, stack)
            stack.pop()
            color[n] = BLACK

        for n in graph:
            if color[n] == WHITE:
                visit(n, [])

    # -- top level
    def run(self) -> None:
        d = self.d
        for k, v in d.vars.items():
            if isinstance(v, str) and v and _SECRET_KEY.search(k) and not _is_template(v):
                self.err(f"vars.{k}", f"`{k}` looks like a secret; declare it in `credentials` instead")
        for k, v in d.templates.items():
            self.template(v, Kind.TEXT, f"templates.{k}")
        self.connections()
        self.health_checks(d.health_checks, "healthChecks")
        self.services()
        self.bootstrap()
        self.begin()

    # -- begin: `begin.NAME` only where a transaction is open, and captured before it is used
    def begin(self) -> None:
        prefix = self.path("") + "." if self.prefix else ""
        used: dict[str, dict[str, str]] = {}  # service -> begin name -> first place using it
        steps: dict[tuple[str, int], set[str]] = {}  # (service, begin step) -> names it uses
        for path, expr in self.expressions.items():
            if "begin" in expr.refs.names:
                self.err(
                    path[len(prefix) :] if path.startswith(prefix) else path, "`begin` is not defined here"
                )
        for path, ct in self.templates.items():
            rel = path[len(prefix) :] if path.startswith(prefix) else path
            if rel.startswith("templates.") or ("begin" not in ct.refs.names and not ct.refs.snippets):
                continue  # a snippet is checked where the operations using it are
            names = _begin_names(ct.source, self.d.templates)
            if names is not None and not names:
                continue
            place = _BEGIN_PLACE.match(rel)
            service = place.group(1) if place else ""
            svc = self.d.services.get(service)
            if place is None or svc is None or not _in_transaction(svc, place.group(2), place.group(4)):
                self.err(
                    rel,
                    "`begin` is defined only in a service's changes (create, update, delete, its batch "
                    "and move operations), `commit`, `abort` and later `begin` steps",
                )
                continue
            if names is None:
                self.err(rel, "`begin` must be used as `begin.NAME` so the names can be checked")
                continue
            if place.group(4) is not None:
                steps.setdefault((service, int(place.group(4))), set()).update(names)
            for name in names:
                used.setdefault(service, {}).setdefault(name, rel)
        for service, places in used.items():
            svc = self.d.services[service]
            captured = {n for step in svc.begin for n in step.response.capture}
            for name, rel in sorted(places.items()):
                if not svc.begin:
                    self.err(rel, f"uses `begin.{name}` but service `{service}` has no `begin`")
                elif name not in captured:
                    self.err(
                        rel,
                        f"uses `begin.{name}` but no `begin` step captures `{name}` "
                        f"(captured: {', '.join(sorted(captured)) or 'none'})",
                    )
        for (service, index), step_names in sorted(steps.items()):
            svc = self.d.services[service]
            earlier = {n for step in svc.begin[:index] for n in step.response.capture}
            for name in sorted(step_names - earlier):
                self.err(
                    f"services.{service}.begin[{index}]",
                    f"uses `begin.{name}`, which no earlier `begin` step captures",
                )


def _in_transaction(svc: m.Service, operation: str | None, begin_step: str | None) -> bool:
    """A place `begin` values reach: the changes, commit, abort and begin steps after the first."""
    if begin_step is not None:
        return int(begin_step) > 0
    if operation is None:
        return True  # commit or abort
    move = svc.ordering.move if svc.ordering is not None else None
    return operation in (*m.WRITE_OPERATIONS, svc.batch, move)


def _begin_names(
    source: str, snippets: Mapping[str, str], seen: frozenset[str] = frozenset()
) -> set[str] | None:
    """The NAMEs of `begin.NAME` in a template and the snippets it uses; None when `begin` is used
    otherwise (`begin[x]`, `begin` alone), so the names cannot be checked."""
    try:
        ast = jinja2.Environment(autoescape=True).parse(source)  # parsed only, never rendered
    except jinja2.TemplateSyntaxError:
        return set()  # reported where the template is compiled
    names: set[str] = set()
    plain = 0
    for name_node in ast.find_all(jn.Name):
        plain += name_node.name == "begin" and name_node.ctx == "load"
    for found in ast.find_all((jn.Getattr, jn.Getitem)):
        node: Any = found
        base = node.node
        if isinstance(base, jn.Name) and base.name == "begin":
            plain -= 1
            if isinstance(node, jn.Getattr):
                names.add(node.attr)
            elif isinstance(node.arg, jn.Const) and isinstance(node.arg.value, str):
                names.add(node.arg.value)
            else:
                return None
        elif (
            isinstance(base, jn.Name)
            and base.name == "templates"
            and isinstance(node, jn.Getattr)
            and node.attr in snippets
            and node.attr not in seen
        ):
            inner = _begin_names(snippets[node.attr], snippets, seen | {node.attr})
            if inner is None:
                return None
            names |= inner
    return None if plain > 0 else names


def _tmsg(e: TemplateError) -> str:
    text = str(e)
    return text[len(e.where) + 2 :] if text.startswith(f"{e.where}: ") else text


def _known(fields: Mapping[str, Any]) -> str:
    return f" (known: {', '.join(fields)})" if fields else " (no fields declared)"


def check_dictionary(d: m.ProviderDictionary, *, prefix: str = "spec") -> tuple[list[Problem], _Checker]:
    """Semantic checks of a structurally valid dictionary: (problems, the checker with compiled parts)."""
    c = _Checker(d, prefix)
    c.run()
    return _dedupe(c.problems), c


# ----------------------------------------------------------------------------- entry points


def _is_manifest(data: Mapping[str, Any]) -> bool:
    return any(k in data for k in ("apiVersion", "kind", "metadata", "spec"))


def load_provider_data(data: Any, *, source: str = "", name: str | None = None) -> LoadedProvider:
    """Check already-parsed YAML/JSON data (a manifest or a bare dictionary)."""
    if data is None:
        raise DictionaryError([Problem("", "the document is empty")], source=source)
    if not isinstance(data, Mapping):
        raise DictionaryError(
            [Problem("", f"the document must be a mapping, not {type(data).__name__}")], source=source
        )
    manifest = _is_manifest(data)
    prefix = "spec" if manifest else ""
    rollout_problems: list[Problem] = []
    spec = data.get("spec") if manifest else None
    if isinstance(spec, Mapping) and rollout.ROLLOUT_FIELD in spec:
        # `spec.rollout` tells the operator how to roll the dictionary out; it is not part of it.
        try:
            rollout.max_unavailable(spec, 1)
        except rollout.RolloutSpecError as exc:
            rollout_problems.append(Problem(f"spec.{rollout.ROLLOUT_FIELD}", str(exc)))
        data = {**data, "spec": rollout.dictionary_of(spec)}
    try:
        if manifest:
            doc = m.ProviderManifest.model_validate(data)
            dictionary = doc.spec
            metadata = doc.metadata.model_dump()
            pname = doc.metadata.name
        else:
            dictionary = m.ProviderDictionary.model_validate(data)
            metadata = {}
            pname = name or _slug(dictionary.info.name)
    except ValidationError as e:
        raise DictionaryError(_structure_problems(e, data, ""), source=source) from None
    except RecursionError:
        raise DictionaryError([Problem("", "the document is nested too deeply")], source=source) from None
    problems, checker = check_dictionary(dictionary, prefix=prefix)
    problems = [*problems, *rollout_problems]
    if problems:
        raise DictionaryError(problems, source=source)
    return LoadedProvider(
        name=name or pname,
        dictionary=dictionary,
        source=source,
        metadata=metadata,
        manifest=manifest,
        templates=dict(checker.templates),
        expressions=dict(checker.expressions),
        jsonpaths=dict(checker.jsonpaths),
    )


def load_provider_spec(spec: Mapping[str, Any], *, name: str, source: str = "") -> LoadedProvider:
    """Check the `spec` of a VnfProvider object from the cluster (paths start with `spec.`)."""
    return load_provider_data(
        {"apiVersion": m.API_VERSION, "kind": m.KIND, "metadata": {"name": name}, "spec": dict(spec)},
        source=source or name,
        name=name,
    )


def load_provider_text(text: str, *, source: str = "<text>") -> LoadedProvider:
    """Parse and check a dictionary document (YAML or JSON text)."""
    return load_provider_data(parse_yaml(text, source=source), source=source)


def load_provider_file(path: str | Path) -> LoadedProvider:
    """Read, parse and check a dictionary file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DictionaryError([Problem("", "the file is not UTF-8 text")], source=str(path)) from None
    except OSError as e:
        raise DictionaryError(
            [Problem("", f"cannot read the file: {e.strerror or e}")], source=str(path)
        ) from None
    return load_provider_text(text, source=str(path))
