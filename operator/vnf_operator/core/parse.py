"""Reading device answers as a dictionary's `response` says.

`parse_response` decides success (status, success predicate, CLI error patterns), extracts the
device's own error text, the items of a list, a created item's id and captured values. Whatever the
body holds, only `ParseError` (a `VnfError`) comes out: a device can send anything.

JSONPath is jsonpath-ng's extended dialect (`jsonpath_ng.ext`: filters such as
`$.rows[?(@.action == "pass")]`). Compiled JSONPaths, regexes and TextFSM templates are cached.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from vnf_operator.core.errors import ParseError
from vnf_operator.core.model import Expect, Pagination, Response, TextFsmParser
from vnf_operator.core.rendered import RawResponse

MAX_ERROR_LENGTH = 500
"""Longest device error text kept (the rest is cut)."""

# ----------------------------------------------------------------------------- compilers (cached)


class CompileError(ValueError):
    """A JSONPath, regex or TextFSM template does not compile."""


@lru_cache(maxsize=4096)
def compile_jsonpath(expr: str) -> Any:
    """Compile a JSONPath (jsonpath-ng extended); CompileError when it does not parse."""
    from jsonpath_ng.ext.parser import parse as jp_parse

    if not expr.strip():
        raise CompileError("empty JSONPath")
    try:
        return jp_parse(expr)
    except Exception as e:  # jsonpath-ng raises bare Exception / JsonPathLexerError / JsonPathParserError
        raise CompileError(f"invalid JSONPath {expr!r}: {_one_line(str(e))}") from None


_Step = tuple[str, ...] | None
"""One step of a simple JSONPath: field names to look up, or None for a wildcard (`[*]`, `.*`)."""


@lru_cache(maxsize=4096)
def _simple_steps(expr: str) -> tuple[_Step, ...] | None:
    """The steps of a JSONPath made only of `$`, plain field names and wildcards (`$.rows[*]`,
    `uuid`, `$.result`), read from jsonpath-ng's own parse so the meaning is the same; None for
    anything else (filters, slices, indexes, unions...), which jsonpath-ng evaluates."""
    from jsonpath_ng.jsonpath import Child, Fields, Root, Wildcard

    nodes: list[Any] = []
    pending = [compile_jsonpath(expr)]
    while pending:  # flatten Child(left, right) in order: left first
        node = pending.pop()
        if type(node) is Child:
            pending += [node.right, node.left]
        else:
            nodes.append(node)
    if nodes and type(nodes[0]) is Root:
        nodes = nodes[1:]
    steps: list[_Step] = []
    for node in nodes:
        if type(node) is Wildcard:
            steps.append(None)
        elif type(node) is Fields and "*" not in node.fields:  # `*` as a name: left to jsonpath-ng
            steps.append(tuple(node.fields))
        else:
            return None
    return tuple(steps)


_NOT_SET = object()


@lru_cache(maxsize=1)
def _jsonpath() -> Any:
    """jsonpath-ng's evaluator module (imported on first use, like the parser)."""
    import jsonpath_ng.jsonpath

    return jsonpath_ng.jsonpath


def _walk(steps: Sequence[_Step], data: Any) -> list[Any]:
    """What jsonpath-ng's `find` yields for simple steps (without auto ids): a field is looked up
    with `.get` (nothing from a value without one), a wildcard takes the elements of a list or
    tuple and the values of a dict."""
    values = [data]
    for step in steps:
        found: list[Any] = []
        for value in values:
            if step is None:
                if isinstance(value, list | tuple):
                    found.extend(value)
                elif isinstance(value, dict):
                    found.extend(value.values())
                else:
                    found.extend(_wildcard_members(value))
            else:
                found.extend(_members(value, step))
        values = found
    return values


def _wildcard_members(value: Any) -> list[Any]:
    try:
        keys = tuple(value.keys())
    except AttributeError:
        return []
    return _members(value, keys)


def _members(value: Any, names: Iterable[Any]) -> list[Any]:
    """The members `value` has of `names` (a mapping's; anything else has none)."""
    out = []
    for name in names:
        try:
            member = value.get(name, _NOT_SET)
        except (TypeError, AttributeError):
            continue
        if member is not _NOT_SET:
            out.append(member)
    return out


@lru_cache(maxsize=4096)
def compile_regex(pattern: str, flags: int = re.MULTILINE) -> re.Pattern[str]:
    """Compile a regex; CompileError when it does not."""
    try:
        return re.compile(pattern, flags)
    except (re.error, OverflowError, RecursionError) as e:
        raise CompileError(f"invalid regex {pattern!r}: {e}") from None


@lru_cache(maxsize=256)
def _textfsm_inline(template: str) -> str:
    import textfsm

    try:
        textfsm.TextFSM(io.StringIO(template))
    except (textfsm.TextFSMTemplateError, textfsm.TextFSMError, ValueError, re.error) as e:
        raise CompileError(f"invalid TextFSM template: {_one_line(str(e))}") from None
    return template


@lru_cache(maxsize=1)
def _ntc_table() -> Any:
    # Read-only access to the installed ntc-templates package data (its index), once.
    from ntc_templates.parse import _get_template_dir
    from textfsm import clitable

    return clitable.CliTable("index", _get_template_dir())


@lru_cache(maxsize=256)
def ntc_template(platform: str, command: str) -> str:
    """The ntc-templates TextFSM template text for (platform, command); CompileError when none."""
    import os

    try:
        table = _ntc_table()
        row = table.index.GetRowMatch({"Platform": platform, "Command": command})
    except Exception as e:  # clitable raises its own errors and IndexTableError
        raise CompileError(f"ntc-templates lookup failed: {_one_line(str(e))}") from None
    if not row:
        raise CompileError(f"ntc-templates has no template for platform {platform!r}, command {command!r}")
    name = str(table.index.index[row]["Template"]).split(":")[0].strip()
    with open(os.path.join(table.template_dir, name), encoding="utf-8") as f:
        return _textfsm_inline(f.read())


def textfsm_template(spec: TextFsmParser) -> str:
    """The TextFSM template text of a parser spec (inline or from ntc-templates), validated."""
    if spec.template:
        return _textfsm_inline(spec.template)
    return ntc_template(spec.ntc_platform, spec.ntc_command)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Parsed:
    """A parsed answer."""

    ok: bool
    """The operation succeeded."""
    error: str = ""
    """The device's own error text when not ok (masking is the caller's job)."""
    items: list[dict[str, Any]] = field(default_factory=list)
    """Items (list operations, or any operation with `items`/`regex`/`textfsm`)."""
    id: str | None = None
    """The new item's device id (create)."""
    captured: dict[str, Any] = field(default_factory=dict)
    """Values named in `response.capture`."""
    data: Any = None
    """The parsed body (JSON data, XML as data, or text)."""
    absent: bool = False
    """The answer says the item does not exist (`response.absent`)."""
    status: int | None = None
    """HTTP status, when any."""

    def as_step(self) -> dict[str, Any]:
        """What later templates see as `steps.NAME` / `result`."""
        return {
            "ok": self.ok,
            "error": self.error,
            "items": self.items,
            "id": self.id,
            "captured": self.captured,
            "data": self.data,
            "status": self.status,
        }


@dataclass(frozen=True)
class NextPage:
    """Where the next page is: query parameters to set, or a URL/path the device handed out."""

    query: dict[str, str] = field(default_factory=dict)
    url: str | None = None


# ----------------------------------------------------------------------------- body decoding


def _one_line(text: str, limit: int = MAX_ERROR_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _xml_to_data(elem: ET.Element) -> Any:
    children = list(elem)
    attrs = {f"@{_local(k)}": v for k, v in elem.attrib.items()}
    text = (elem.text or "").strip()
    if not children and not attrs:
        return text
    out: dict[str, Any] = dict(attrs)
    lists: set[str] = set()
    for child in children:
        key = _local(child.tag)
        value = _xml_to_data(child)
        if key in out:
            if key not in lists:
                out[key] = [out[key]]
                lists.add(key)
            out[key].append(value)
        else:
            out[key] = value
    if text:
        out["#text"] = text
    return out


def _local(tag: Any) -> str:
    t = str(tag)
    return t.rsplit("}", 1)[-1] if t.startswith("{") else t


def decode_body(fmt: str, text: str, *, where: str) -> Any:
    """Body text → data for `fmt` (json, xml, text, cli, none); ParseError when it does not decode."""
    if fmt in ("text", "cli"):
        return text
    if fmt == "none" or not text.strip():
        return None
    if fmt == "json":
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ParseError(where, f"response is not valid JSON: {_one_line(str(e), 200)}") from None
    if fmt == "xml":
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise ParseError(where, "XML with a DOCTYPE or entities is refused")
        try:
            root = ET.fromstring(text)  # noqa: S314 - DOCTYPE/entities refused above; expat fetches nothing
        except (ET.ParseError, ValueError, RecursionError) as e:
            raise ParseError(where, f"response is not valid XML: {_one_line(str(e), 200)}") from None
        return {_local(root.tag): _xml_to_data(root)}
    raise ParseError(where, f"unknown response format {fmt!r}")


# ----------------------------------------------------------------------------- helpers


def _find(expr: str, data: Any, where: str) -> list[Any]:
    try:
        path = compile_jsonpath(expr)
        steps = _simple_steps(expr)
    except CompileError as e:
        raise ParseError(where, str(e)) from None
    try:
        if steps is not None and _jsonpath().auto_id_field is None:
            return _walk(steps, data)  # the common shapes, without jsonpath-ng's per-match objects
        return [m.value for m in path.find(data)]
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as e:
        raise ParseError(where, f"JSONPath {expr!r} failed: {e}") from None
    except Exception as e:  # jsonpath-ng filters may raise anything on odd data
        raise ParseError(where, f"JSONPath {expr!r} failed: {_one_line(str(e), 200)}") from None


def _regex(pattern: str, where: str, flags: int = re.MULTILINE) -> re.Pattern[str]:
    try:
        return compile_regex(pattern, flags)
    except CompileError as e:
        raise ParseError(where, str(e)) from None


def _first(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _format_error(value: Any) -> str:
    """`{"rule.port": "msg"}` → `rule.port: msg`; lists joined with `; `."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            inner = _format_error(v)
            parts.append(f"{k}: {inner}" if inner else str(k))
        return "; ".join(parts)
    if isinstance(value, list):
        return "; ".join(p for p in (_format_error(v) for v in value) if p)
    return str(value).strip()


def _regex_value(pattern: str, text: str, name: str, where: str) -> Any:
    m = _regex(pattern, where).search(text)
    if m is None:
        return None
    groups = m.groupdict()
    if name in groups:
        return groups[name]
    if "value" in groups:
        return groups["value"]
    if m.re.groups:
        return m.group(1)
    return m.group(0)


def _status_ok(statuses: Sequence[int], status: int | None) -> bool:
    if status is None:
        return True
    if statuses:
        return status in statuses
    return 200 <= status < 300


# ----------------------------------------------------------------------------- expectations


def check_expect(expect: Expect, raw: RawResponse, data: Any = None) -> tuple[bool, str]:
    """Does a response satisfy `expect`? Returns (ok, why not). Never raises for odd data.

    `data` is the parsed body; when None and `expect.jsonpath` is set, the text is read as JSON.
    """
    try:
        return _check_expect(expect, raw, data)
    except ParseError as e:
        return False, str(e)


def _check_expect(expect: Expect, raw: RawResponse, data: Any) -> tuple[bool, str]:
    where = "expect"
    if not _status_ok(expect.status, raw.status):
        wanted = ", ".join(map(str, expect.status)) if expect.status else "2xx"
        return False, f"HTTP status {raw.status}, expected {wanted}"
    if expect.jsonpath:
        if data is None:
            try:
                data = json.loads(raw.text) if raw.text.strip() else None
            except (ValueError, RecursionError):
                return False, "response is not JSON"
        found = _find(expect.jsonpath, data, where)
        if not found:
            return False, f"{expect.jsonpath} matched nothing"
        value = _first(found)
        if expect.equals is not None and not _equal(value, expect.equals):
            return False, f"{expect.jsonpath} is {_short(value)}, expected {_short(expect.equals)}"
        if expect.one_of and not any(_equal(value, v) for v in expect.one_of):
            choices = ", ".join(_short(v) for v in expect.one_of)
            return False, f"{expect.jsonpath} is {_short(value)}, expected one of {choices}"
        if expect.matches and not _regex(expect.matches, where).search(_text_value(value)):
            return False, f"{expect.jsonpath} is {_short(value)}, which does not match /{expect.matches}/"
    elif expect.matches and not _regex(expect.matches, where).search(raw.text):
        return False, f"output does not match /{expect.matches}/"
    if expect.not_matches:
        m = _regex(expect.not_matches, where).search(raw.text)
        if m:
            return False, f"output matches /{expect.not_matches}/: {_one_line(m.group(0), 120)}"
    return True, ""


def _equal(a: Any, b: Any) -> bool:
    if a == b and type(a) is type(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    return _text_value(a) == _text_value(b)


def _short(value: Any) -> str:
    return _one_line(json.dumps(value, ensure_ascii=False, default=str), 80)


# ----------------------------------------------------------------------------- parse_response


def parse_response(
    spec: Response,
    raw: RawResponse,
    *,
    where: str,
    operation_kind: str = "custom",
    error_patterns: Sequence[str] = (),
) -> Parsed:
    """Parse a device answer.

    `operation_kind` is the operation name (`list`, `create`, ...; anything else is custom): a
    `list` always yields items. `error_patterns` are the SSH connection's error regexes (CLI).
    Raises ParseError (only) when a successful answer cannot be read as the spec says.
    """
    try:
        return _parse(spec, raw, where=where, kind=operation_kind, error_patterns=error_patterns)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError(where, "response nested too deeply") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, UnicodeError) as e:
        raise ParseError(
            where, f"cannot read the response: {type(e).__name__}: {_one_line(str(e), 200)}"
        ) from None


def _parse(
    spec: Response, raw: RawResponse, *, where: str, kind: str, error_patterns: Sequence[str]
) -> Parsed:
    text = raw.text or ""
    success = spec.success or Expect()
    ok = _status_ok(success.status, raw.status)
    error = ""
    if ok and raw.exit_status not in (None, 0):
        ok, error = False, f"exit status {raw.exit_status}"
    if ok and spec.format == "cli":
        for pattern in error_patterns:
            m = _regex(pattern, f"{where} (error pattern)").search(text)
            if m:
                line_start = text.rfind("\n", 0, m.start()) + 1
                line_end = text.find("\n", m.end())
                ok, error = False, text[line_start : line_end if line_end >= 0 else len(text)].strip()
                break
    # Decode the body; an error answer that does not decode is still an error answer.
    try:
        data = decode_body(spec.format, text, where=where)
    except ParseError:
        if ok:
            raise
        data = None
    if ok:
        # The status was checked above; without one `_check_expect` checks only the body.
        good, why = _check_expect(success, RawResponse(status=None, text=text), data)
        if not good:
            ok, error = False, why
    absent = False
    if spec.absent is not None:
        absent, _ = check_expect(spec.absent, raw, data)
    if not ok:
        device_error = _extract_error(spec, text, data, where)
        if device_error:
            error = device_error
        elif not error:
            error = f"HTTP status {raw.status}" if raw.status is not None else "command failed"
            if text.strip():
                error += f": {_one_line(text, 200)}"
        return Parsed(ok=False, error=_one_line(error), data=data, absent=absent, status=raw.status)

    items = _items(spec, text, data, where, kind)
    new_id: str | None = None
    if spec.id:
        if spec.format in ("text", "cli"):
            v = _regex_value(spec.id, text, "id", f"{where}.id")
        else:
            found = _find(spec.id, data, f"{where}.id")
            v = found[0] if found else None
        new_id = None if v is None or v == "" else _text_value(v)
    captured: dict[str, Any] = {}
    for name, expr in spec.capture.items():
        cw = f"{where}.capture.{name}"
        if spec.format in ("text", "cli"):
            captured[name] = _regex_value(expr, text, name, cw)
        else:
            found = _find(expr, data, cw)
            captured[name] = (found[0] if len(found) == 1 else found) if found else None
    return Parsed(
        ok=True, items=items, id=new_id, captured=captured, data=data, absent=absent, status=raw.status
    )


def _extract_error(spec: Response, text: str, data: Any, where: str) -> str:
    for expr in spec.error_paths:
        if spec.format in ("text", "cli"):
            v = _regex_value(expr, text, "error", f"{where}.error")
            if v:
                return str(v).strip()
        elif data is not None:
            found = _find(expr, data, f"{where}.error")
            msg = _format_error(_first(found)) if found else ""
            if msg:
                return msg
    return ""


def _items(spec: Response, text: str, data: Any, where: str, kind: str) -> list[dict[str, Any]]:
    rows: list[Any]
    if spec.regex is not None:
        flags = re.MULTILINE if spec.regex.multiline else 0
        pattern = _regex(spec.regex.pattern, f"{where}.regex.pattern", flags)
        rows = [{k: v for k, v in m.groupdict().items() if v is not None} for m in pattern.finditer(text)]
        return [_compute(spec, r, _map_fields(spec, r, where, by_name=True), where) for r in rows]
    if spec.textfsm is not None:
        rows = _run_textfsm(spec.textfsm, text, f"{where}.textfsm")
        return [_compute(spec, r, _map_fields(spec, r, where, by_name=True), where) for r in rows]
    if spec.items:
        found = _find(spec.items, data, f"{where}.items")
        rows = found[0] if len(found) == 1 and isinstance(found[0], list) else found
    elif kind == "list":
        if data is None:
            rows = []
        elif isinstance(data, list):
            rows = data
        else:
            raise ParseError(f"{where}.items", "the answer is not a list; set `response.items` to a JSONPath")
    else:
        return []
    out = []
    for r in rows:
        row = r if isinstance(r, dict) else {"value": r}
        out.append(_compute(spec, row, _map_fields(spec, row, where, by_name=False), where))
    return out


def _compute(spec: Response, row: dict[str, Any], item: dict[str, Any], where: str) -> dict[str, Any]:
    if not spec.compute:
        return item
    from vnf_operator.core.errors import TemplateError
    from vnf_operator.core.templating import OMIT, Kind, compile_template, render

    item = dict(item)
    for name, source in spec.compute.items():
        cw = f"{where}.compute.{name}"
        try:
            value = render(compile_template(source, Kind.JSON, where=cw), {"row": row}, where=cw)
        except TemplateError as e:
            raise ParseError(e.where, str(e)[len(e.where) + 2 :]) from None
        if value is OMIT or value == "" or value is None:
            item.pop(name, None)
        else:
            item[name] = value
    return item


def _map_fields(spec: Response, row: dict[str, Any], where: str, *, by_name: bool) -> dict[str, Any]:
    if not spec.fields:
        return row
    out: dict[str, Any] = {}
    for name, expr in spec.fields.items():
        if by_name:
            if expr in row:
                out[name] = row[expr]
            continue
        found = _find(expr, row, f"{where}.fields.{name}")
        if found:
            out[name] = found[0]
    return out


def _run_textfsm(spec: TextFsmParser, text: str, where: str) -> list[dict[str, Any]]:
    import textfsm

    try:
        template = textfsm_template(spec)
    except CompileError as e:
        raise ParseError(where, str(e)) from None
    except OSError as e:
        raise ParseError(where, f"cannot read the ntc-templates template: {e}") from None
    try:
        fsm = textfsm.TextFSM(io.StringIO(template))
        rows = fsm.ParseText(text)
    except (textfsm.TextFSMError, textfsm.TextFSMTemplateError, ValueError, re.error) as e:
        raise ParseError(where, f"TextFSM: {_one_line(str(e), 200)}") from None
    header = [h.lower() for h in fsm.header]
    return [dict(zip(header, row, strict=False)) for row in rows]


# ----------------------------------------------------------------------------- pagination


def first_page(p: Pagination) -> dict[str, str]:
    """Query parameters of the first page."""
    q: dict[str, str] = {}
    if p.page_param:
        q[p.page_param] = str(p.start)
    if p.size_param:
        q[p.size_param] = str(p.size)
    if p.offset_param:
        q[p.offset_param] = "0"
    return q


def next_page(
    p: Pagination, *, pages_read: int, items_on_page: int, data: Any, where: str = "pagination"
) -> NextPage | None:
    """Where the page after `pages_read` pages is, or None when the list is complete."""
    if pages_read >= p.max_pages:
        return None
    if p.next_jsonpath:
        found = _find(p.next_jsonpath, data, f"{where}.nextJsonpath")
        token = found[0] if found else None
        if token in (None, "", 0, False):
            return None
        if p.next_param:
            return NextPage(query={p.next_param: _text_value(token)})
        return NextPage(url=_text_value(token))
    if items_on_page < p.size or not (p.page_param or p.offset_param):
        return None
    q: dict[str, str] = {}
    if p.page_param:
        q[p.page_param] = str(p.start + pages_read)
    if p.size_param:
        q[p.size_param] = str(p.size)
    if p.offset_param:
        q[p.offset_param] = str(pages_read * p.size)
    return NextPage(query=q)
