"""Validating desired items (and custom-operation parameters) against a service's data schema.

The schema (`Service.fields`, a map of `FieldSpec`) becomes a JSON Schema; jsonschema checks the
structure (objects, lists, required and unknown fields) and one custom keyword, `x-vnf-field`,
checks each scalar value (type including ipv4/ipv6/ip/cidr/port/portRange/hostname, "any" words,
enum, pattern, lengths, bounds) with messages written for people:

    spec.services.firewall_rules.items[2].action: "allow" is not one of pass, block, reject

Every problem is reported at once (`ItemValidationError`). Defaults are applied before validation
and returned with the items.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs pinned in pyproject
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

from vnf_operator.core.errors import ItemValidationError, Problem
from vnf_operator.core.model import FieldSpec, FieldType, Operation, Service

_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_PORT_RANGE = re.compile(r"^\s*(\d{1,5})\s*(?:[-:]\s*(\d{1,5})\s*)?$")
_SCALAR_KEYWORD = "x-vnf-field"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _port(value: Any) -> int | None:
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 5:
        return int(value)
    return None


def type_problem(ftype: FieldType, value: Any) -> str | None:
    """Why `value` is not of `ftype` (None when it is). Lists and objects are checked elsewhere."""
    # The value is shown only in a problem (json.dumps for every valid value would be most of the cost).
    if ftype is FieldType.STRING:
        return None if isinstance(value, str) else f"{_show(value)} is not a string"
    if ftype is FieldType.INTEGER:
        return None if _is_int(value) else f"{_show(value)} is not an integer"
    if ftype is FieldType.NUMBER:
        return None if _is_number(value) else f"{_show(value)} is not a number"
    if ftype is FieldType.BOOLEAN:
        return None if isinstance(value, bool) else f"{_show(value)} is not a boolean (true or false)"
    if ftype is FieldType.PORT:
        p = _port(value)
        return None if p is not None and 1 <= p <= 65535 else f"{_show(value)} is not a valid port (1-65535)"
    if ftype is FieldType.PORT_RANGE:
        text = str(value) if _is_int(value) else value
        m = _PORT_RANGE.match(text) if isinstance(text, str) else None
        if m:
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if 1 <= lo <= hi <= 65535:
                return None
        return f"{_show(value)} is not a valid port or port range (80, 80-90)"
    if ftype is FieldType.LIST:
        return None if isinstance(value, list) else f"{_show(value)} is not a list"
    if ftype is FieldType.OBJECT:
        return None if isinstance(value, dict) else f"{_show(value)} is not an object"
    if not isinstance(value, str):
        return f"{_show(value)} is not a valid {_NAMES[ftype]}"
    try:
        if ftype is FieldType.IPV4:
            ipaddress.IPv4Address(value)
        elif ftype is FieldType.IPV6:
            ipaddress.IPv6Address(value)
        elif ftype is FieldType.IP:
            ipaddress.ip_address(value)
        elif ftype is FieldType.CIDR:
            if "/" not in value:
                raise ValueError(value)
            ipaddress.ip_network(value, strict=False)
        elif ftype is FieldType.HOSTNAME and not _HOSTNAME.match(value):
            raise ValueError(value)
    except ValueError:
        return f"{_show(value)} is not a valid {_NAMES[ftype]}"
    return None


_NAMES = {
    FieldType.IPV4: "IPv4 address",
    FieldType.IPV6: "IPv6 address",
    FieldType.IP: "IP address",
    FieldType.CIDR: "CIDR prefix (address/length)",
    FieldType.HOSTNAME: "hostname",
}


def value_problem(spec: FieldSpec, value: Any) -> str | None:
    """Why a scalar `value` does not satisfy `spec` (None when it does)."""
    if isinstance(value, str) and value in spec.any_values:
        return None
    if spec.enum:
        if any(value == e and type(value) is type(e) for e in spec.enum) or (
            not isinstance(value, bool) and value in spec.enum
        ):
            return None
        return f"{_show(value)} is not one of {', '.join(str(e) for e in spec.enum)}"
    problem = type_problem(spec.type, value)
    if problem:
        if spec.any_values:
            problem += f" (or {' or '.join(_show(v) for v in spec.any_values)})"
        return problem
    if isinstance(value, str):
        if spec.pattern:
            try:
                if not re.search(spec.pattern, value):
                    return f"{_show(value)} does not match {spec.pattern}"
            except re.error:
                return f"field pattern {spec.pattern!r} is not a valid regex"
        if spec.min_length is not None and len(value) < spec.min_length:
            return f"{_show(value)} is shorter than {spec.min_length} characters"
        if spec.max_length is not None and len(value) > spec.max_length:
            return f"{_show(value)} is longer than {spec.max_length} characters"
    numeric: float | None = float(value) if _is_number(value) else None
    if numeric is None and spec.type in (FieldType.PORT,):
        p = _port(value)
        numeric = float(p) if p is not None else None
    if numeric is not None:
        if spec.minimum is not None and numeric < spec.minimum:
            return f"{_show(value)} is less than the minimum {_num(spec.minimum)}"
        if spec.maximum is not None and numeric > spec.maximum:
            return f"{_show(value)} is greater than the maximum {_num(spec.maximum)}"
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# ----------------------------------------------------------------------------- schema


def field_schema(spec: FieldSpec) -> dict[str, Any]:
    """The validation schema of one field."""
    if spec.type is FieldType.OBJECT:
        return object_schema(spec.fields) if spec.fields else {"type": "object"}
    if spec.type is FieldType.LIST:
        out: dict[str, Any] = {_SCALAR_KEYWORD: {"type": "list"}}
        if spec.items is not None:
            out["items"] = field_schema(spec.items)
        if spec.min_length is not None:
            out["minItems"] = spec.min_length
        if spec.max_length is not None:
            out["maxItems"] = spec.max_length
        return out
    return {_SCALAR_KEYWORD: spec}


def object_schema(fields: Mapping[str, FieldSpec]) -> dict[str, Any]:
    """The validation schema of an object with `fields`: unknown fields are errors."""
    return {
        "type": "object",
        "properties": {name: field_schema(f) for name, f in fields.items()},
        "required": [name for name, f in fields.items() if f.required],
        "additionalProperties": False,
    }


def _scalar(validator: Any, spec: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(spec, FieldSpec):
        problem = value_problem(spec, instance)
    elif isinstance(spec, dict) and spec.get("type") == "list":
        problem = None if isinstance(instance, list) else f"{_show(instance)} is not a list"
    else:  # pragma: no cover - schemas are built above
        problem = None
    if problem:
        yield ValidationError(problem)


_Validator = jsonschema.validators.extend(Draft202012Validator, {_SCALAR_KEYWORD: _scalar})


def _compile(fields: Mapping[str, FieldSpec]) -> Any:
    return _Validator(object_schema(fields))


_CACHE: dict[int, tuple[object, Any]] = {}


def _validator_for(owner: object, fields: Mapping[str, FieldSpec]) -> Any:
    hit = _CACHE.get(id(owner))
    if hit is not None and hit[0] is owner:
        return hit[1]
    if len(_CACHE) > 512:
        _CACHE.clear()
    v = _compile(fields)
    _CACHE[id(owner)] = (owner, v)
    return v


def _path(base: str, parts: Sequence[Any]) -> str:
    out = base
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _conforms(fields: Mapping[str, FieldSpec], item: dict[str, Any]) -> bool:
    """True only when the schema of `fields` (`object_schema`) finds no problem in `item`: the same
    checks in plain Python, so the common valid item skips jsonschema, which then runs only to
    word the problems. False may also mean "not sure"."""
    for name, value in item.items():
        spec = fields.get(name)
        if spec is None or not _value_conforms(spec, value):
            return False
    return all(name in item for name, spec in fields.items() if spec.required)


def _value_conforms(spec: FieldSpec, value: Any) -> bool:
    if spec.type is FieldType.OBJECT:
        return isinstance(value, dict) and (not spec.fields or _conforms(spec.fields, value))
    if spec.type is FieldType.LIST:
        if not isinstance(value, list):
            return False
        if spec.min_length is not None and len(value) < spec.min_length:
            return False
        if spec.max_length is not None and len(value) > spec.max_length:
            return False
        items = spec.items
        return items is None or all(_value_conforms(items, v) for v in value)
    return value_problem(spec, value) is None


def _check(validator: Any, fields: Mapping[str, FieldSpec], item: Any, where: str) -> list[Problem]:
    if isinstance(item, dict) and _conforms(fields, item):
        return []
    return _problems(validator, item, where)


def _problems(validator: Any, item: Any, where: str) -> list[Problem]:
    if not isinstance(item, dict):
        return [Problem(where, f"{_show(item)} is not an object (a mapping of field names to values)")]
    problems: list[Problem] = []
    for err in validator.iter_errors(item):
        parts = list(err.absolute_path)
        if err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            for name in missing or ["?"]:
                problems.append(Problem(_path(where, [*parts, name]), "is required"))
        elif err.validator == "additionalProperties":
            extra = set(err.instance) - set(err.schema.get("properties", {}))
            known = ", ".join(err.schema.get("properties", {})) or "none"
            for name in sorted(extra, key=str):
                problems.append(Problem(_path(where, [*parts, name]), f"unknown field (known: {known})"))
        elif err.validator == "type" and err.validator_value == "object":
            problems.append(Problem(_path(where, parts), f"{_show(err.instance)} is not an object"))
        elif err.validator in ("minItems", "maxItems"):
            n = err.validator_value
            word = "at least" if err.validator == "minItems" else "at most"
            problems.append(Problem(_path(where, parts), f"needs {word} {n} element(s)"))
        else:
            problems.append(Problem(_path(where, parts), err.message))
    return sorted(set(problems), key=lambda p: (p.path, p.message))


def apply_defaults(fields: Mapping[str, FieldSpec], item: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `item` with the defaults of missing fields filled in (nested objects too)."""
    out = dict(item)
    for name, spec in fields.items():
        if name not in out:
            if spec.default is not None:
                out[name] = _copy_default(spec.default)
            elif spec.type is FieldType.OBJECT and spec.fields and _has_defaults(spec.fields):
                out[name] = apply_defaults(spec.fields, {})
        elif spec.type is FieldType.OBJECT and spec.fields and isinstance(out[name], Mapping):
            out[name] = apply_defaults(spec.fields, out[name])
        elif (
            spec.type is FieldType.LIST
            and spec.items is not None
            and spec.items.fields
            and isinstance(out[name], list)
        ):
            out[name] = [
                apply_defaults(spec.items.fields, v) if isinstance(v, Mapping) else v for v in out[name]
            ]
    return out


def _copy_default(value: Any) -> Any:
    # deepcopy returns a scalar itself; skip its dispatch for the common scalar default
    return value if isinstance(value, str | int | float) else copy.deepcopy(value)


def _has_defaults(fields: Mapping[str, FieldSpec]) -> bool:
    return any(f.default is not None or (f.fields and _has_defaults(f.fields)) for f in fields.values())


def validate_fields(
    fields: Mapping[str, FieldSpec], items: Sequence[Any], *, where: str, owner: object | None = None
) -> list[dict[str, Any]]:
    """Validate `items` against `fields`; return them with defaults applied.

    `where` is the document path of the list (e.g. `spec.services.firewall_rules.items`); every
    problem is reported at once as an ItemValidationError.
    """
    validator = _validator_for(owner, fields) if owner is not None else _compile(fields)
    problems: list[Problem] = []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        iw = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(
                Problem(iw, f"{_show(item)} is not an object (a mapping of field names to values)")
            )
            continue
        full = apply_defaults(fields, item)
        problems += _check(validator, fields, full, iw)
        out.append(full)
    if problems:
        raise ItemValidationError(problems)
    return out


def validate_items(service: Service, items: Sequence[Any], *, where: str) -> list[dict[str, Any]]:
    """Validate desired items of `service`; duplicates of the identity key are errors too."""
    out = validate_fields(service.fields, items, where=where, owner=service)
    if service.identity is not None:
        seen: dict[tuple[str, ...], int] = {}
        problems: list[Problem] = []
        for i, item in enumerate(out):
            key = tuple(_show(item.get(k)) for k in service.identity.key)
            if key in seen:
                shown = ", ".join(f"{k}={v}" for k, v in zip(service.identity.key, key, strict=True))
                problems.append(
                    Problem(f"{where}[{i}]", f"duplicate key ({shown}), same as item {seen[key]}")
                )
            else:
                seen[key] = i
        if problems:
            raise ItemValidationError(problems)
    return out


def validate_item(service: Service, item: Any, *, where: str) -> dict[str, Any]:
    """Validate one item (e.g. `vnfctl render --item`); returns it with defaults applied."""
    validator = _validator_for(service, service.fields)
    if not isinstance(item, Mapping):
        raise ItemValidationError([Problem(where, f"{_show(item)} is not an object")])
    full = apply_defaults(service.fields, item)
    problems = _check(validator, service.fields, full, where)
    if problems:
        raise ItemValidationError(problems)
    return full


def validate_params(operation: Operation, params: Mapping[str, Any] | None, *, where: str) -> dict[str, Any]:
    """Validate the parameters of a custom operation; returns them with defaults applied."""
    validator = _validator_for(operation, operation.parameters)
    full = apply_defaults(operation.parameters, params or {})
    problems = _check(validator, operation.parameters, full, where)
    if problems:
        raise ItemValidationError(problems)
    return full


def item_json_schema(fields: Mapping[str, FieldSpec]) -> dict[str, Any]:
    """A standard JSON Schema (draft 2020-12) of an item, for documentation and UIs."""

    def one(spec: FieldSpec) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if spec.description:
            out["description"] = spec.description
        t = spec.type
        if t is FieldType.OBJECT:
            out.update(item_json_schema(spec.fields) if spec.fields else {"type": "object"})
        elif t is FieldType.LIST:
            out["type"] = "array"
            if spec.items is not None:
                out["items"] = one(spec.items)
        elif t in (FieldType.INTEGER, FieldType.NUMBER, FieldType.BOOLEAN, FieldType.STRING):
            out["type"] = str(t)
        elif t is FieldType.PORT:
            out["type"] = ["integer", "string"]
            out["x-vnf-type"] = "port"
        else:
            out["type"] = "string"
            out["format"] = {"ip": "ip", "ipv4": "ipv4", "ipv6": "ipv6", "hostname": "hostname"}.get(
                str(t), str(t)
            )
        if spec.enum:
            out["enum"] = list(spec.enum)
        if spec.pattern:
            out["pattern"] = spec.pattern
        if spec.default is not None:
            out["default"] = spec.default
        if spec.any_values:
            out["x-vnf-any"] = list(spec.any_values)
        for k, attr in (("minimum", "minimum"), ("maximum", "maximum")):
            if getattr(spec, attr) is not None:
                out[k] = getattr(spec, attr)
        return out

    return {
        "type": "object",
        "properties": {name: one(f) for name, f in fields.items()},
        "required": [name for name, f in fields.items() if f.required],
        "additionalProperties": False,
    }
