"""Normalising item values so that equal configuration compares equal.

Devices report values in their own spelling: RouterOS returns every value as a string
(`"false"`, `"1500"`), OPNsense uses `"1"`/`"0"` for booleans, FortiOS writes netmasks instead of
prefix lengths, and most devices add fields nobody asked for. `normalize_item` maps an item, from
either side, to one canonical form per field, driven by a `FieldRule` per field name.

Normalising never raises on odd device data: a value that cannot be coerced is kept as it is, so
it shows up as a difference instead of crashing a reconcile. Only building a `FieldRule` with an
unknown type is an error (that is a dictionary bug, not device data).

Field names may be dotted paths (`source.network`) to reach into nested objects; a name present
literally in the item (RouterOS `.id`, or a key that itself contains a dot) always wins.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "ANY",
    "FIELD_TYPES",
    "NO_DEFAULT",
    "FieldRule",
    "get_path",
    "normalize_item",
    "normalize_value",
    "rule_for_path",
    "rules_from_spec",
    "scalar_text",
    "split_path",
]


class _NoDefault:
    """Sentinel type: the field has no default (`None` is a legitimate default value)."""

    _instance: _NoDefault | None = None

    def __new__(cls) -> _NoDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __bool__(self) -> bool:
        return False


NO_DEFAULT: Final = _NoDefault()
"""Marker for "this field has no default"."""

ANY: Final = "any"
"""Canonical spelling of a value listed in `FieldRule.any_values`."""

FIELD_TYPES: Final = frozenset(
    {
        "string",
        "integer",
        "number",
        "boolean",
        "ipv4",
        "ipv6",
        "ip",
        "cidr",
        "port",
        "port_range",
        "hostname",
        "enum",
        "list",
        "object",
    }
)
_TYPE_ALIASES: Final = {
    "portRange": "port_range",
    "port-range": "port_range",
    "bool": "boolean",
    "int": "integer",
}

_TRUE: Final = frozenset({"true", "yes", "on", "enable", "enabled", "1", "y", "t"})
_FALSE: Final = frozenset({"false", "no", "off", "disable", "disabled", "0", "n", "f"})


def _freeze_rules(rules: Mapping[str, FieldRule]) -> Mapping[str, FieldRule]:
    return MappingProxyType(dict(rules))


@dataclass(frozen=True)
class FieldRule:
    """How one field is compared.

    - `type`: one of `FIELD_TYPES` (`portRange` is accepted for `port_range`).
    - `default`: value assumed when the field is absent or null (`NO_DEFAULT`: none).
    - `case_insensitive`: fold string values to lower case.
    - `ignore`: drop the field entirely; it is never compared (counters, write-only secrets).
    - `value_map`: device spelling → canonical value, applied before type coercion, e.g.
      `{"1": True, "0": False}` or `{"any": "0.0.0.0/0"}`. Keys match the value's text form
      (case-insensitively when `case_insensitive`).
    - `any_values`: words meaning "any" on this device (`any`, `all`, `*`); all become `ANY`.
    - `network`: for `cidr`, reduce to the network address (`10.1.2.3/8` → `10.0.0.0/8`).
      Without it the host bits are kept (an interface address).
    - `choices`: for `enum`, the canonical spellings; a value matching one case-insensitively
      takes that spelling.
    - `items`: rule for each element of a `list`; `unordered`: compare a list as a set.
    - `separator`: a `list` given as one string (`"a,b"`, RouterOS style) is split on it.
    - `fields`: rules for the members of an `object`.
    """

    type: str = "string"
    default: Any = NO_DEFAULT
    case_insensitive: bool = False
    ignore: bool = False
    value_map: Mapping[str, Any] = field(default_factory=dict)
    any_values: tuple[str, ...] = ()
    network: bool = False
    choices: tuple[Any, ...] = ()
    items: FieldRule | None = None
    unordered: bool = False
    separator: str | None = ","
    fields: Mapping[str, FieldRule] = field(default_factory=dict)
    # Derived once here (normalising runs per field per item on every reconcile).
    _any_folded: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())
    _folded_map: Mapping[str, Any] = field(init=False, repr=False, compare=False, default_factory=dict)
    _choice_texts: tuple[tuple[str, Any], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        kind = _TYPE_ALIASES.get(self.type, self.type)
        if kind not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r}; expected one of {sorted(FIELD_TYPES)}")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "value_map", MappingProxyType(dict(self.value_map)))
        object.__setattr__(self, "fields", _freeze_rules(self.fields))
        object.__setattr__(self, "any_values", tuple(self.any_values))
        object.__setattr__(self, "choices", tuple(self.choices))
        object.__setattr__(
            self, "_any_folded", frozenset(w.lower() for w in self.any_values if isinstance(w, str))
        )
        folded: dict[str, Any] = {}
        for key, mapped in self.value_map.items():
            if isinstance(key, str):
                folded.setdefault(key.lower(), mapped)  # the first key of a case-folded spelling wins
        object.__setattr__(self, "_folded_map", MappingProxyType(folded))
        texts = tuple(
            (text.lower(), choice) for choice in self.choices if (text := scalar_text(choice)) is not None
        )
        object.__setattr__(self, "_choice_texts", texts)

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    @classmethod
    def from_spec(cls, spec: Any) -> FieldRule:
        """A rule from one field of a dictionary's data schema (see `rules_from_spec`)."""
        return _rule_from_spec(spec)


# --------------------------------------------------------------------------- paths


def split_path(path: str) -> list[str]:
    """Split a dotted path; a leading dot belongs to the first name (`.id` is one name)."""
    return list(_parts(path))


@lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    """`split_path`, cached and immutable (the same field names are split for every item)."""
    parts = path.split(".")
    if parts and parts[0] == "" and len(parts) > 1:
        parts = ["." + parts[1], *parts[2:]]
    return tuple(parts)


_MISSING: Final = object()


def get_path(item: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted path, or `default`. A literal key equal to the whole path wins."""
    if path in item:
        return item[path]
    node: Any = item
    for part in _parts(path):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def rule_for_path(rules: Mapping[str, FieldRule], path: str) -> FieldRule | None:
    """The rule governing a dotted path: a rule named by the whole path, or nested `fields`."""
    if path in rules:
        return rules[path]
    parts = _parts(path)
    current: Mapping[str, FieldRule] = rules
    found: FieldRule | None = None
    for i, part in enumerate(parts):
        rest = ".".join(parts[i:])
        if rest in current:
            return current[rest]
        found = current.get(part)
        if found is None:
            return None
        current = found.fields
    return found


# --------------------------------------------------------------------------- scalar helpers


def scalar_text(value: Any) -> str | None:
    """The canonical text of a JSON scalar (`True` → `"true"`, `1500.0` → `"1500"`); None otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return None


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts and lists are rebuilt, scalars shared)."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text, 10)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                return None
            return int(as_float) if math.isfinite(as_float) and as_float.is_integer() else None
    return None


def _to_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        as_int = _to_int(value)
        if as_int is not None:
            return as_int
        try:
            as_float = float(value.strip())
        except ValueError:
            return None
        return as_float if math.isfinite(as_float) else None
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


# Parsing addresses is the costliest coercion and devices report the same few again and again:
# the results are cached by text (None: not valid, which `_coerce` treats like a ValueError).


def _to_address(value: Any, version: int | None) -> str | None:
    if not isinstance(value, str):
        return None
    return _address_text(value.strip(), version)


@lru_cache(maxsize=4096)
def _address_text(text: str, version: int | None) -> str | None:
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        return None
    if version is not None and iface.version != version:
        return None
    if iface.network.prefixlen != iface.max_prefixlen:
        return None  # a real prefix is not an address; keep the raw value so it shows as a diff
    return str(iface.ip)


def _to_cidr(value: Any, network: bool) -> str | None:
    if not isinstance(value, str):
        return None
    return _cidr_text(value.strip(), network)


@lru_cache(maxsize=4096)
def _cidr_text(text: str, network: bool) -> str | None:
    try:
        if network:
            return ipaddress.ip_network(text, strict=False).with_prefixlen
        return ipaddress.ip_interface(text).with_prefixlen
    except ValueError:
        return None


def _to_port(value: Any) -> int | None:
    port = _to_int(value)
    if port is None or not 0 <= port <= 65535:
        return None
    return port


def _to_port_range(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if 0 <= value <= 65535 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    for sep in ("-", ":"):
        if sep in text:
            low_text, _, high_text = text.partition(sep)
            low, high = _to_port(low_text), _to_port(high_text)
            if low is None or high is None or low > high:
                return None
            return str(low) if low == high else f"{low}-{high}"
    single = _to_port(text)
    return None if single is None else str(single)


def _to_text(value: Any) -> str | None:
    return scalar_text(value)


def _sort_token(value: Any) -> tuple[int, Any]:
    """Order for unordered lists: numbers by value, then booleans, text, everything else."""
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return (0, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=str))


# --------------------------------------------------------------------------- normalising


def _map_value(value: Any, rule: FieldRule) -> Any:
    if not rule._any_folded and not rule.value_map:
        return value
    text = scalar_text(value)
    if text is None:
        return value
    if rule._any_folded and text.strip().lower() in rule._any_folded:
        return ANY
    if rule.value_map:
        if text in rule.value_map:
            return rule.value_map[text]
        stripped = text.strip()
        if stripped in rule.value_map:
            return rule.value_map[stripped]
        if rule.case_insensitive:
            folded = stripped.lower()
            if folded in rule._folded_map:
                return rule._folded_map[folded]
    return value


def _coerce(value: Any, rule: FieldRule, *, keep_unknown: bool, apply_defaults: bool) -> Any:
    kind = rule.type
    if kind == "string":
        return _to_text(value)
    if kind == "integer":
        return _to_int(value)
    if kind == "number":
        return _to_number(value)
    if kind == "boolean":
        return _to_bool(value)
    if kind in ("ipv4", "ipv6", "ip"):
        return _to_address(value, {"ipv4": 4, "ipv6": 6}.get(kind))
    if kind == "cidr":
        return _to_cidr(value, rule.network)
    if kind == "port":
        return _to_port(value)
    if kind == "port_range":
        return _to_port_range(value)
    if kind == "hostname":
        text = _to_text(value)
        return None if text is None else text.strip().rstrip(".").lower()
    if kind == "enum":
        text = _to_text(value)
        if text is None:
            return None
        folded = text.strip().lower()
        for choice_text, choice in rule._choice_texts:
            if choice_text == folded:
                return choice
        return text
    if kind == "list":
        return _coerce_list(value, rule, keep_unknown=keep_unknown, apply_defaults=apply_defaults)
    if kind == "object":
        if not isinstance(value, Mapping):
            return None
        return normalize_item(value, rule.fields, keep_unknown=keep_unknown, apply_defaults=apply_defaults)
    return None  # pragma: no cover - FieldRule validates the type


def _coerce_list(value: Any, rule: FieldRule, *, keep_unknown: bool, apply_defaults: bool) -> list[Any]:
    elements: list[Any]
    if isinstance(value, list | tuple):
        elements = list(value)
    elif isinstance(value, str) and rule.separator:
        elements = [part.strip() for part in value.split(rule.separator) if part.strip()]
    else:
        # XML-to-JSON conversions (pfSense, IOS-XE 16.x) turn a one-element list into the element.
        elements = [value]
    if rule.items is not None:
        item_rule = rule.items
        elements = [
            normalize_value(e, item_rule, keep_unknown=keep_unknown, apply_defaults=apply_defaults)
            for e in elements
        ]
    else:
        elements = [_copy(e) for e in elements]
    if rule.unordered:
        elements.sort(key=_sort_token)
    return elements


def normalize_value(
    value: Any, rule: FieldRule, *, keep_unknown: bool = True, apply_defaults: bool = True
) -> Any:
    """The canonical form of one value under `rule`; a value that cannot be coerced is returned as is."""
    if value is None:
        return None
    mapped = _map_value(value, rule)
    if mapped is None:
        return None
    if mapped == ANY and rule.any_values and isinstance(mapped, str):
        return ANY
    try:
        coerced = _coerce(mapped, rule, keep_unknown=keep_unknown, apply_defaults=apply_defaults)
    except (ValueError, TypeError, ArithmeticError):
        coerced = None
    result = _copy(mapped) if coerced is None else coerced
    if rule.case_insensitive and isinstance(result, str):
        result = result.lower()
    return result


def normalize_item(
    item: Mapping[str, Any],
    rules: Mapping[str, FieldRule],
    *,
    keep_unknown: bool,
    apply_defaults: bool = True,
) -> dict[str, Any]:
    """A normalised copy of `item`.

    - Fields with a rule are coerced (`normalize_value`); ignored fields are dropped.
    - Fields without a rule are kept (copied) when `keep_unknown`, dropped otherwise.
    - With `apply_defaults`, an absent or null field whose rule has a default gets the
      (normalised) default. Dotted rules reach into nested objects that exist; a missing
      parent object is not invented.
    """
    top: Mapping[str, FieldRule] = rules
    nested: dict[str, dict[str, FieldRule]] = {}
    if any("." in name for name in rules):
        top = {}
        for name, rule in rules.items():
            parts = _parts(name)
            if len(parts) == 1 or name in item:
                top[name] = rule
            else:
                nested.setdefault(parts[0], {})[".".join(parts[1:])] = rule

    result: dict[str, Any] = {}
    for name, value in item.items():
        own_rule = top.get(name)
        sub_rules = nested.get(name)
        if own_rule is not None:
            if own_rule.ignore:
                continue
            if sub_rules and own_rule.type == "object" and isinstance(value, Mapping):
                merged = {**own_rule.fields, **sub_rules}
                result[name] = normalize_item(
                    value, merged, keep_unknown=keep_unknown, apply_defaults=apply_defaults
                )
            else:
                result[name] = normalize_value(
                    value, own_rule, keep_unknown=keep_unknown, apply_defaults=apply_defaults
                )
        elif sub_rules is not None and isinstance(value, Mapping):
            result[name] = normalize_item(
                value, sub_rules, keep_unknown=keep_unknown, apply_defaults=apply_defaults
            )
        elif keep_unknown or sub_rules is not None:
            result[name] = _copy(value)

    if apply_defaults:
        for name, rule in top.items():
            if rule.ignore or not rule.has_default:
                continue
            if result.get(name) is None:
                result[name] = normalize_value(
                    rule.default, rule, keep_unknown=keep_unknown, apply_defaults=apply_defaults
                )
    return result


# --------------------------------------------------------------------------- building rules


_SPEC_KEYS: Final = {
    "caseInsensitive": "case_insensitive",
    "valueMap": "value_map",
    "deviceValues": "value_map",
    "device_values": "value_map",
    "anyValues": "any_values",
    "enum": "choices",
}


# Rules of immutable specs (the frozen pydantic `FieldSpec`s of a loaded dictionary), by identity:
# the engine builds a service's rules on every sync. The spec is kept with its rule, so an id is
# never reused while its entry lives.
_RULES: dict[int, tuple[object, FieldRule]] = {}
_RULES_MAX = 4096


def _rule_from_spec(spec: Any) -> FieldRule:
    if not hasattr(spec, "model_dump"):
        return _build_rule(spec)
    hit = _RULES.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    rule = _build_rule(spec.model_dump(by_alias=False))
    config = getattr(spec, "model_config", None)
    if isinstance(config, Mapping) and config.get("frozen"):
        if len(_RULES) >= _RULES_MAX:
            _RULES.clear()
        _RULES[id(spec)] = (spec, rule)
    return rule


def _build_rule(spec: Any) -> FieldRule:
    if not isinstance(spec, Mapping):
        raise TypeError(f"a field spec must be a mapping, not {type(spec).__name__}")
    data = {_SPEC_KEYS.get(k, k): v for k, v in spec.items()}
    kwargs: dict[str, Any] = {}
    if "type" in data:
        kwargs["type"] = str(data["type"])
    if data.get("default") is not None:
        kwargs["default"] = data["default"]
    for name in ("case_insensitive", "ignore", "network", "unordered"):
        if name in data:
            kwargs[name] = bool(data[name])
    if data.get("compare") is False:
        kwargs["ignore"] = True
    if data.get("value_map"):
        kwargs["value_map"] = {str(k): v for k, v in dict(data["value_map"]).items()}
    if data.get("any_values"):
        kwargs["any_values"] = tuple(str(v) for v in data["any_values"])
    if data.get("choices"):
        kwargs["choices"] = tuple(data["choices"])
    if "separator" in data:
        kwargs["separator"] = data["separator"]
    if data.get("items") is not None:
        kwargs["items"] = _rule_from_spec(data["items"])
    if data.get("fields"):
        kwargs["fields"] = rules_from_spec(data["fields"])
    return FieldRule(**kwargs)


def rules_from_spec(fields: Mapping[str, Any]) -> dict[str, FieldRule]:
    """Field rules from a dictionary's field schema (`Service.fields`).

    Accepts plain mappings (camelCase or snake_case keys: `caseInsensitive`, `deviceValues`,
    `anyValues`, `enum`, `compare: false`, `items`, `fields`) or pydantic models with those
    attributes. A `default` of null means "no default". Keys that are not comparison settings
    (`description`, `pattern`, `minimum`...) are ignored.
    """
    return {name: _rule_from_spec(spec) for name, spec in fields.items()}
