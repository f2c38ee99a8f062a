"""Sandboxed Jinja2 templating with per-context output rules.

Every template of a dictionary is rendered in one *kind* of place, and each kind has its own Jinja
`finalize` hook deciding what a `{{ }}` output may be:

| kind   | where                            | rule for each `{{ }}` output                          |
|--------|----------------------------------|-------------------------------------------------------|
| path   | `http.path`                      | percent-encoded as ONE segment; empty, `.`, `..` fail |
| query  | `http.query` values              | control characters (CR, LF...) rejected               |
| header | header values, bearer/header auth| control characters (CR, LF...) rejected               |
| cli    | `cli.commands`                   | a safe token (`[A-Za-z0-9._:/@,+=*-]`) or `| quote`   |
| raw    | `http.rawBody`                   | a safe token or `| tojson` / `| xmlescape` / `| quote`|
| json   | string leaves of `http.body`     | any text (JSON encoding keeps it inside the string)   |
| form   | `http.form` values               | any text (form encoding keeps it inside the value)    |
| text   | markers, user names, passwords   | any text                                              |

A template is compiled once per (source, kind) and cached: the engine renders thousands of times.
Undefined variables raise (StrictUndefined) with the variable's dotted name; the sandbox
(immutable) blocks attribute tricks such as `''.__class__.__mro__`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import quote as _urlquote

import jinja2
import jinja2.nodes as jn
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vnf_operator.core.errors import InjectionError, TemplateError
from vnf_operator.core.filters import FILTERS, FilterError, QuotedText, SafeText, UnsafeValue, _describe

#: Top-level names a template may use (docs/language.md, "Template context").
CONTEXT_NAMES = frozenset(
    {
        "appliance",
        "vars",
        "item",
        "actual",
        "id",
        "credentials",
        "connection",
        "bootstrap",
        "steps",
        "params",
        "items",
        "creates",
        "updates",
        "deletes",
        "before_id",
        "after_id",
        "begin",
        "marker",
        "result",
        "templates",
        "omit",
    }
)

MAX_VALUE_LENGTH = 1024
"""Longest single value in a path segment or a CLI token."""
MAX_HEADER_VALUE_LENGTH = 8192
"""Longest single value in a header or query parameter."""
MAX_OUTPUT_LENGTH = 1 << 20
"""Longest rendered template (1 MiB)."""
_MAX_SEQUENCE_REPEAT = 100_000
_MAX_SNIPPET_DEPTH = 8

SAFE_TOKEN = re.compile(r"^[A-Za-z0-9._:/@,+=*-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SINGLE_EXPR = re.compile(r"^\{\{-?(.*?)-?\}\}$", re.DOTALL)


class Kind(StrEnum):
    """Where a template's output goes; decides the finalize rule."""

    TEXT = "text"
    PATH = "path"
    QUERY = "query"
    HEADER = "header"
    CLI = "cli"
    RAW = "raw"
    JSON = "json"
    FORM = "form"


OMITTABLE = frozenset({Kind.JSON, Kind.QUERY, Kind.HEADER, Kind.FORM})


class _Omit:
    """`omit`: a body leaf, query parameter, header or form field rendering to it is left out."""

    _instance: _Omit | None = None

    def __new__(cls) -> _Omit:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "omit"

    def __str__(self) -> str:
        return "<omit>"


OMIT = _Omit()


class SnippetText(SafeText):
    """A rendered `templates.NAME` snippet: its values were checked by the same rules already."""

    __slots__ = ()


class _Rejected(Exception):
    """Raised by a finalize hook; turned into InjectionError/TemplateError with the document path."""

    def __init__(self, message: str, *, injection: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.injection = injection


class _Omitted(Exception):
    pass


# ----------------------------------------------------------------------------- scopes


class Scope(Mapping[str, Any]):
    """A read-only view of a context dict that knows its dotted name (for precise error messages)."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self._data = data
        self._path = path

    def __getitem__(self, key: str) -> Any:
        return _wrap(
            self._data[key], f"{self._path}.{key}" if isinstance(key, str) else f"{self._path}[{key!r}]"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return repr(plain(self._data))

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Scope):
            other = other._data
        return bool(self._data == other)

    __hash__ = None  # type: ignore[assignment]


class ScopeList(Sequence[Any]):
    """A read-only view of a context list that knows its dotted name."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: Sequence[Any], path: str) -> None:
        self._data = data
        self._path = path

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return ScopeList(self._data[index], self._path)
        return _wrap(self._data[index], f"{self._path}[{index}]")

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        for i, v in enumerate(self._data):
            yield _wrap(v, f"{self._path}[{i}]")

    def __repr__(self) -> str:
        return repr(plain(self._data))

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScopeList):
            other = other._data
        return bool(list(self._data) == other)

    __hash__ = None  # type: ignore[assignment]


def _wrap(value: Any, path: str) -> Any:
    kind = type(value)  # exact types first: context data is mostly plain JSON
    if kind is str:
        return value
    if kind is dict:
        return Scope(value, path)
    if kind is list:
        return ScopeList(value, path)
    if isinstance(value, Scope | ScopeList | str):
        return value
    if isinstance(value, Mapping):
        return Scope(value, path)
    if isinstance(value, list | tuple):
        return ScopeList(value, path)
    return value


def plain(value: Any) -> Any:
    """Plain data from template values: scopes become dicts/lists, marked strings plain `str`."""
    if isinstance(value, Scope | ScopeList):
        value = value._data
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# ----------------------------------------------------------------------------- environment


class _Undefined(jinja2.StrictUndefined):
    """StrictUndefined whose message names the variable as written (`item.source.port`)."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        obj = self._undefined_obj
        if obj is jinja2.utils.missing:
            return f"undefined variable `{name}`"
        if isinstance(obj, Scope | ScopeList):
            base = obj._path
        elif isinstance(obj, Mapping):
            base = "an object"
        else:
            base = f"a value of type {type(obj).__name__}"
        if isinstance(name, str):
            return (
                f"`{base}` has no field `{name}`"
                if isinstance(obj, Scope)
                else f"{base} has no field `{name}`"
            )
        return (
            f"`{base}` has no element {name!r}"
            if isinstance(obj, ScopeList)
            else f"{base} has no element {name!r}"
        )


class _Env(ImmutableSandboxedEnvironment):
    """The sandbox: immutable, strict, bounded operators, keys preferred over methods."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `item.items` / `item.values` name the field, not dict methods.
        if isinstance(obj, Mapping) and isinstance(attribute, str) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Scope | ScopeList):
            try:
                return obj[argument]
            except (KeyError, IndexError, TypeError):
                return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**" and isinstance(right, int | float) and abs(right) > 4096:
            raise SecurityError("exponent too large")
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple | ScopeList) and isinstance(n, int)
                if sized and n * max(len(seq), 1) > _MAX_SEQUENCE_REPEAT:
                    raise SecurityError("repetition result too long")
        return _BINOPS[operator_](left, right)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {"*": operator.mul, "**": operator.pow}


def _check_length(text: str, limit: int) -> None:
    if len(text) > limit:
        raise _Rejected(f"value is longer than {limit} characters")


def _as_text(value: Any) -> str:
    if isinstance(value, _Omit):
        raise _Omitted()
    if isinstance(value, jinja2.Undefined):
        str(value)  # raises UndefinedError for StrictUndefined
    if isinstance(value, Scope | ScopeList):
        return repr(value)
    return str(value)


def _finalize_text(value: Any) -> str:
    if value is None:
        return ""
    return _as_text(value)


def _finalize_path(value: Any) -> str:
    if isinstance(value, SnippetText):
        return str(value)
    if value is None:
        raise _Rejected("a path value is None (a path segment cannot be empty)")
    text = _as_text(value)
    if text == "":
        raise _Rejected("a path value is empty (a path segment cannot be empty)")
    if text in (".", ".."):
        raise _Rejected(f"a path value is {text!r} (path traversal)")
    _check_length(text, MAX_VALUE_LENGTH)
    return _urlquote(text, safe="")


def _finalize_query(value: Any) -> str:
    if value is None:
        return ""
    text = _as_text(value)
    m = _CONTROL.search(text)
    if m:
        raise _Rejected(f"value contains {_describe(m.group(0))} (header/query injection)")
    _check_length(text, MAX_HEADER_VALUE_LENGTH)
    return text


def _finalize_header(value: Any) -> str:
    text = _finalize_query(value)
    if not text.isascii():
        raise _Rejected("value contains a non-ASCII character (not allowed in a header value)")
    return text


def _finalize_cli(value: Any) -> str:
    if isinstance(value, QuotedText | SnippetText):
        return str(value)
    if value is None:
        raise _Rejected("a CLI value is None", injection=False)
    text = _as_text(value)
    _check_length(text, MAX_VALUE_LENGTH)
    if not SAFE_TOKEN.match(text):
        raise _Rejected(
            f"value {_preview(text)} is not a safe CLI token (letters, digits and ._:/@,+=*-); "
            "pass it through `| quote`"
        )
    return text


def _finalize_raw(value: Any) -> str:
    if isinstance(value, SafeText):
        return str(value)
    if value is None:
        return ""
    text = _as_text(value)
    if not SAFE_TOKEN.match(text):
        raise _Rejected(
            f"value {_preview(text)} is not a safe token; "
            "pass it through `| tojson`, `| xmlescape` or `| quote`"
        )
    return text


def _preview(text: str) -> str:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return repr(shown)


_FINALIZERS: dict[Kind, Callable[[Any], str]] = {
    Kind.TEXT: _finalize_text,
    Kind.JSON: _finalize_text,
    Kind.FORM: _finalize_text,
    Kind.PATH: _finalize_path,
    Kind.QUERY: _finalize_query,
    Kind.HEADER: _finalize_header,
    Kind.CLI: _finalize_cli,
    Kind.RAW: _finalize_raw,
}


def _make_env(kind: Kind) -> _Env:
    env = _Env(
        undefined=_Undefined,
        finalize=_FINALIZERS[kind],
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        cache_size=0,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


_ENVS: dict[Kind, _Env] = {k: _make_env(k) for k in Kind}


# ----------------------------------------------------------------------------- compiled templates


@dataclass(frozen=True)
class References:
    """What a template refers to: top-level names, `credentials.X` and `templates.X`."""

    names: frozenset[str]
    credentials: frozenset[str]
    snippets: frozenset[str]
    dynamic: frozenset[str]
    """Top-level names used other than as `NAME.attr` / `NAME['key']` (`credentials[x]`, `credentials`)."""


@dataclass(frozen=True, eq=False)
class CompiledTemplate:
    """A template compiled for one kind of place (cached by source and kind)."""

    source: str
    kind: Kind
    refs: References
    static: bool
    """No `{{ }}`, `{% %}` or `{# #}`: renders to the source itself."""
    _template: jinja2.Template | None
    _expression: Callable[..., Any] | None
    """For a JSON leaf that is exactly one `{{ expr }}`: evaluate keeping the value's type."""

    @property
    def native(self) -> bool:
        return self._expression is not None


@dataclass(frozen=True, eq=False)
class CompiledExpression:
    """A bare expression (e.g. `skipIf`)."""

    source: str
    refs: References
    _expression: Callable[..., Any]


class _CompileFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _references(ast: jn.Template) -> References:
    from jinja2 import meta

    names = frozenset(meta.find_undeclared_variables(ast))
    creds: set[str] = set()
    snippets: set[str] = set()
    dynamic: set[str] = set()
    targets = {"credentials": creds, "templates": snippets}
    used_by_name: dict[str, int] = {"credentials": 0, "templates": 0}
    for found in ast.find_all((jn.Getattr, jn.Getitem)):
        node: Any = found
        base = node.node
        if isinstance(base, jn.Name) and base.name in targets:
            if isinstance(node, jn.Getattr):
                targets[base.name].add(node.attr)
                used_by_name[base.name] += 1
            elif isinstance(node.arg, jn.Const) and isinstance(node.arg.value, str):
                targets[base.name].add(node.arg.value)
                used_by_name[base.name] += 1
    for node in ast.find_all(jn.Name):
        if node.name in targets and node.ctx == "load":
            used_by_name[node.name] -= 1
    for name, balance in used_by_name.items():
        if balance < 0 and name in names:
            dynamic.add(name)
    return References(names, frozenset(creds), frozenset(snippets), frozenset(dynamic))


def _is_static(source: str) -> bool:
    return "{{" not in source and "{%" not in source and "{#" not in source


def _syntax_message(e: TemplateSyntaxError) -> str:
    line = f" (line {e.lineno})" if e.lineno and e.lineno > 1 else ""
    return f"template syntax error{line}: {e.message}"


def _flat_globals(template: jinja2.Template) -> jinja2.Template:
    """Jinja keeps a template's globals as a ChainMap over the environment's, and copies them into
    every render's context (slow for a ChainMap). Ours never change after `_make_env`: one dict."""
    template.globals = dict(template.globals)
    return template


@lru_cache(maxsize=8192)
def _compile(source: str, kind: Kind) -> CompiledTemplate:
    env = _ENVS[kind]
    try:
        ast = env.parse(source)
        refs = _references(ast)
        expression = None
        if kind is Kind.JSON:
            m = _SINGLE_EXPR.match(source)
            body = ast.body
            if (
                m
                and len(body) == 1
                and isinstance(body[0], jn.Output)
                and len(body[0].nodes) == 1
                and not isinstance(body[0].nodes[0], jn.TemplateData)
            ):
                try:
                    expression = env.compile_expression(m.group(1), undefined_to_none=False)
                    _flat_globals(expression._template)
                except TemplateSyntaxError:
                    expression = None
        template = None if _is_static(source) else _flat_globals(env.from_string(ast))
    except TemplateSyntaxError as e:
        raise _CompileFailed(_syntax_message(e)) from None
    except (RecursionError, MemoryError):
        raise _CompileFailed("template too deeply nested") from None
    return CompiledTemplate(source, kind, refs, _is_static(source), template, expression)


def compile_template(source: str, kind: Kind, *, where: str) -> CompiledTemplate:
    """Compile (or fetch from the cache) a template for `kind`; TemplateError naming `where` on failure."""
    try:
        return _compile(source, kind)
    except _CompileFailed as e:
        raise TemplateError(where, e.message) from None


@lru_cache(maxsize=1024)
def _compile_expression(source: str) -> CompiledExpression:
    env = _ENVS[Kind.TEXT]
    try:
        ast = env.parse("{{ " + source + " }}")
        expression = env.compile_expression(source, undefined_to_none=False)
        _flat_globals(expression._template)
    except TemplateSyntaxError as e:
        raise _CompileFailed(_syntax_message(e)) from None
    except (RecursionError, MemoryError):
        raise _CompileFailed("expression too deeply nested") from None
    return CompiledExpression(source, _references(ast), expression)


def compile_expression(source: str, *, where: str) -> CompiledExpression:
    """Compile a bare expression such as `steps.get_key.captured.key is defined`."""
    src = source.strip()
    m = _SINGLE_EXPR.match(src)
    if m:  # tolerate `{{ expr }}` where an expression is expected
        src = m.group(1).strip()
    try:
        return _compile_expression(src)
    except _CompileFailed as e:
        raise TemplateError(where, e.message) from None


# ----------------------------------------------------------------------------- rendering


class Snippets(Mapping[str, Any]):
    """`templates.NAME`: renders the named snippet on use, with the same context and rules."""

    __slots__ = ("_context", "_depth", "_kind", "_sources", "_where")

    def __init__(
        self, sources: Mapping[str, str], kind: Kind, context: Mapping[str, Any], depth: int, where: str
    ) -> None:
        self._sources = sources
        self._kind = kind
        self._context = context
        self._depth = depth
        self._where = where

    def __getitem__(self, name: str) -> SnippetText:
        source = self._sources[name]
        if self._depth >= _MAX_SNIPPET_DEPTH:
            raise TemplateError(self._where, f"templates.{name}: snippets nested too deeply (recursion?)")
        where = f"{self._where} (templates.{name})"
        ct = compile_template(source, self._kind if self._kind is not Kind.JSON else Kind.TEXT, where=where)
        out = _render(ct, self._context, where=where, depth=self._depth + 1)
        return SnippetText(out)

    def __contains__(self, name: object) -> bool:
        return name in self._sources

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


class ScopedContext(dict[str, Any]):
    """A context whose values are wrapped already (`scoped_context`)."""


def scoped_context(context: Mapping[str, Any]) -> ScopedContext:
    """`context` with its values wrapped once, for a call whose templates (a body's leaves) all
    render with it: rendering then copies it instead of wrapping every value for every template."""
    out = ScopedContext()
    for k, v in context.items():
        out[k] = v if k == "templates" else _wrap(v, k)
    return out


def _scoped(context: Mapping[str, Any], kind: Kind, depth: int, where: str) -> dict[str, Any]:
    out: dict[str, Any]
    if type(context) is ScopedContext:
        out = dict(context)
        out.pop("templates", None)
    else:
        out = {}
        for k, v in context.items():
            if k == "templates":
                continue
            out[k] = _wrap(v, k)
    sources = context.get("templates")
    out["templates"] = Snippets(sources if isinstance(sources, Mapping) else {}, kind, context, depth, where)
    out["omit"] = OMIT
    return out


def _render(ct: CompiledTemplate, context: Mapping[str, Any], *, where: str, depth: int = 0) -> Any:
    if ct.static:
        return ct.source
    scope = _scoped(context, ct.kind, depth, where)
    try:
        if ct._expression is not None:
            value = ct._expression(**scope)
            if isinstance(value, jinja2.Undefined):
                str(value)
            if isinstance(value, _Omit):
                raise _Omitted()
            return _native(value, where)
        assert ct._template is not None
        text = ct._template.render(scope)
    except _Omitted:
        if ct.kind in OMITTABLE:
            return OMIT
        raise TemplateError(
            where, "`omit` is only allowed for a whole body leaf, query parameter, header or form field"
        ) from None
    except _Rejected as e:
        cls = InjectionError if e.injection else TemplateError
        raise cls(where, e.message) from None
    except TemplateError:
        raise
    except UndefinedError as e:
        raise TemplateError(where, str(e.message)) from None
    except SecurityError as e:
        raise TemplateError(where, f"sandbox violation: {e}") from None
    except UnsafeValue as e:
        raise InjectionError(where, str(e)) from None
    except FilterError as e:
        raise TemplateError(where, str(e)) from None
    except jinja2.TemplateError as e:
        raise TemplateError(where, str(e.message or e)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as e:
        raise TemplateError(where, f"{type(e).__name__}: {e}") from None
    except RecursionError:
        raise TemplateError(where, "recursion too deep") from None
    if len(text) > MAX_OUTPUT_LENGTH:
        raise TemplateError(where, f"rendered text is longer than {MAX_OUTPUT_LENGTH} characters")
    return text


def _native(value: Any, where: str) -> Any:
    """A natively evaluated JSON leaf: plain JSON data only."""
    value = plain(value)
    try:
        _check_json(value)
    except TypeError as e:
        raise TemplateError(where, str(e)) from None
    return value


def _check_json(value: Any) -> None:
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"object keys must be text, got {type(k).__name__}")
            _check_json(v)
        return
    if isinstance(value, list):
        for v in value:
            _check_json(v)
        return
    if isinstance(value, jinja2.Undefined):
        str(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot go into a JSON body")


def render(ct: CompiledTemplate, context: Mapping[str, Any], *, where: str) -> Any:
    """Render a compiled template.

    Returns text, or for a native JSON leaf the value itself, or `OMIT` when the value is `omit` in an
    omittable place. Raises TemplateError / InjectionError naming `where`.
    """
    return _render(ct, context, where=where)


def render_text(source: str, kind: Kind, context: Mapping[str, Any], *, where: str) -> str:
    """Compile (cached) and render a template that must produce text (not `omit`)."""
    out = render(compile_template(source, kind, where=where), context, where=where)
    if out is OMIT:
        raise TemplateError(where, "`omit` is not allowed here")
    return str(out) if not isinstance(out, str) else out


def evaluate(expr: CompiledExpression, context: Mapping[str, Any], *, where: str) -> Any:
    """Evaluate a bare expression (plain data result)."""
    scope = _scoped(context, Kind.TEXT, 0, where)
    try:
        value = expr._expression(**scope)
        if isinstance(value, jinja2.Undefined):
            str(value)
        return plain(value)
    except TemplateError:
        raise
    except UndefinedError as e:
        raise TemplateError(where, str(e.message)) from None
    except SecurityError as e:
        raise TemplateError(where, f"sandbox violation: {e}") from None
    except UnsafeValue as e:
        raise InjectionError(where, str(e)) from None
    except FilterError as e:
        raise TemplateError(where, str(e)) from None
    except jinja2.TemplateError as e:
        raise TemplateError(where, str(e.message or e)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as e:
        raise TemplateError(where, f"{type(e).__name__}: {e}") from None
    except RecursionError:
        raise TemplateError(where, "recursion too deep") from None


def truthy(value: Any) -> bool:
    """Jinja truthiness of an evaluated expression."""
    return bool(value)
