"""Pure diff/plan of a desired item collection against the items listed on a device.

`plan()` matches desired and actual items by natural key (after normalising both sides with
`normalize.py`), and returns a `Plan`: what to create, update, delete and move, plus what it
found and left alone (adopted, unmanaged, duplicate and protected items). `simulate()` applies a
plan to a list in memory, for dry-run previews and for property tests.

Vocabulary:

- **owned**: the item carries the ownership marker in `owner_field` (a comment/description).
- **managed**: owned, or its key is in `managed_keys` (keys recorded in status by earlier runs).
  The key of a desired item is managed too once the plan runs (`Plan.managed`).
- **protected**: the actual item matches one of the `protected` patterns; it is never deleted,
  modified or moved, whatever the policy.
- **adopted**: a pre-existing, unmanaged item whose key equals a desired key; it is taken over
  (and updated when it differs), never duplicated.

Policies: `merged` creates and updates only; `replaced` also deletes managed items that are no
longer desired (and extra copies of desired keys); `overridden` makes the collection exactly the
desired one, except protected items.

Executing a plan (`Plan.steps()` gives this order): deletes, then updates, then creates and moves
interleaved by ascending `position` (their desired index). In an ordered collection each
placement is relative to an anchor: `before` an item that never moves (an existing item kept in
place), or `after` the previous desired item (placed by an earlier step), or neither (append at
the end). Moves are minimal: only items outside the longest run of existing items that is
already in desired order move.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from vnf_operator.core.errors import VnfError
from vnf_operator.core.model import Policy
from vnf_operator.core.normalize import (
    FieldRule,
    get_path,
    normalize_item,
    normalize_value,
    rule_for_path,
    scalar_text,
    split_path,
)

__all__ = [
    "Anchor",
    "ComparisonRules",
    "Create",
    "Delete",
    "DeviceId",
    "Duplicate",
    "DuplicateKeyError",
    "FieldChange",
    "ItemRef",
    "Key",
    "MissingKeyError",
    "Move",
    "Plan",
    "PlanError",
    "PlanMismatchError",
    "Policy",
    "Skipped",
    "Step",
    "Update",
    "compare",
    "format_key",
    "insert_positions",
    "is_owned",
    "item_key",
    "longest_increasing_subsequence",
    "matches_protected",
    "plan",
    "plan_positions",
    "simulate",
    "with_owner_marker",
]

Key = tuple[Any, ...]
"""A natural key: one canonical, hashable component per key field (scalars become text)."""
DeviceId = str | int | None
"""The device's own id of an item (`uuid`, `.id`, `handle`), when the collection has one."""

_MISSING: Final = object()


# --------------------------------------------------------------------------- errors


class PlanError(VnfError, ValueError):
    """Desired items or a plan are inconsistent."""


class DuplicateKeyError(PlanError):
    """Two desired items have the same natural key."""

    def __init__(
        self, key: Key, first: int, second: int, *, key_fields: Sequence[str], collection: str
    ) -> None:
        self.key = key
        self.first = first
        self.second = second
        super().__init__(
            f"desired {collection}: items {first} and {second} have the same key {_key_text(key, key_fields)}"
        )


class MissingKeyError(PlanError):
    """A desired item lacks a value for a key field."""

    def __init__(self, index: int, field_name: str, *, collection: str) -> None:
        self.index = index
        self.field = field_name
        super().__init__(f"desired {collection}[{index}] has no value for key field {field_name!r}")


class PlanMismatchError(PlanError):
    """A plan does not fit the list it is applied to (simulate)."""


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class ComparisonRules:
    """How the items of one collection are identified and compared.

    - `key_fields`: the natural key (dotted paths allowed); never empty.
    - `id_field`: where an actual item carries the device's own id; never compared.
    - `field_rules`: per-field normalisation (`normalize.FieldRule`).
    - `ignore_fields`: paths never compared (counters, timestamps, server-generated values).
    - `mode`: `subset` compares only the fields the desired item sets (server-added fields and
      fields left to their default are not drift); `exact` compares every field of both sides,
      after defaults, treating absent and null as equal.
    - `ordered`: the order of the collection matters (firewall rules); the plan carries moves.
    - `owner_field` / `owner_marker`: the ownership marker; `owner_match` says whether the
      field must contain it (default) or start with it.
    - `collection`: the name used in summaries and error messages (`firewall_rules`).
    """

    key_fields: tuple[str, ...]
    id_field: str | None = None
    field_rules: Mapping[str, FieldRule] = field(default_factory=dict)
    ignore_fields: frozenset[str] = frozenset()
    mode: Literal["subset", "exact"] = "subset"
    ordered: bool = False
    owner_field: str | None = None
    owner_marker: str | None = None
    owner_match: Literal["contains", "prefix"] = "contains"
    collection: str = "items"
    _key_rules: tuple[tuple[str, FieldRule | None], ...] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    """The key fields with their rules, when every key is a plain field (see `_fast_key`)."""

    def __post_init__(self) -> None:
        keys = (self.key_fields,) if isinstance(self.key_fields, str) else tuple(self.key_fields)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("key_fields must name at least one field")
        if len(set(keys)) != len(keys):
            raise ValueError(f"key_fields repeats a field: {keys}")
        if self.mode not in ("subset", "exact"):
            raise ValueError(f"mode must be 'subset' or 'exact', not {self.mode!r}")
        if self.owner_match not in ("contains", "prefix"):
            raise ValueError(f"owner_match must be 'contains' or 'prefix', not {self.owner_match!r}")
        if (self.owner_field is None) != (self.owner_marker is None):
            raise ValueError("owner_field and owner_marker go together")
        if self.owner_marker is not None and not self.owner_marker:
            raise ValueError("owner_marker must not be empty")
        object.__setattr__(self, "key_fields", keys)
        object.__setattr__(self, "ignore_fields", frozenset(self.ignore_fields))
        object.__setattr__(self, "field_rules", MappingProxyType(dict(self.field_rules)))
        object.__setattr__(self, "_key_rules", _plain_key_rules(keys, self.field_rules))


# --------------------------------------------------------------------------- plan records


@dataclass(frozen=True)
class FieldChange:
    """One differing field (dotted path); values are normalised, None when absent."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Anchor:
    """The item a placement is relative to.

    `index` is the anchor's position in the actual list the plan was made from, or None when
    the anchor is created by the same plan (its device id is then known only after creation).
    """

    key: Key
    device_id: DeviceId
    index: int | None


@dataclass(frozen=True)
class Create:
    key: Key
    desired: Mapping[str, Any]
    position: int | None = None
    """Index of the item in the desired list (ordered collections only)."""
    before: Anchor | None = None
    after: Anchor | None = None

    @property
    def before_id(self) -> DeviceId:
        return None if self.before is None else self.before.device_id

    @property
    def after_id(self) -> DeviceId:
        return None if self.after is None else self.after.device_id


@dataclass(frozen=True)
class Update:
    key: Key
    device_id: DeviceId
    desired: Mapping[str, Any]
    actual: Mapping[str, Any]
    changed_fields: tuple[FieldChange, ...]
    index: int
    """Position of the item in the actual list."""
    adopted: bool = False


@dataclass(frozen=True)
class Delete:
    key: Key | None
    """None for an actual item lacking a key field."""
    device_id: DeviceId
    actual: Mapping[str, Any]
    index: int
    reason: Literal["undesired", "duplicate", "foreign"] = "undesired"
    """`undesired`: managed, no longer in the spec; `duplicate`: extra copy of a key;
    `foreign`: unmanaged, removed because the policy is `overridden`."""


@dataclass(frozen=True)
class Move:
    key: Key
    device_id: DeviceId
    index: int
    position: int
    """Index of the item in the desired list."""
    before: Anchor | None = None
    after: Anchor | None = None

    @property
    def before_id(self) -> DeviceId:
        return None if self.before is None else self.before.device_id

    @property
    def after_id(self) -> DeviceId:
        return None if self.after is None else self.after.device_id


@dataclass(frozen=True)
class ItemRef:
    """An actual item the plan leaves alone."""

    key: Key | None
    device_id: DeviceId
    actual: Mapping[str, Any]
    index: int


@dataclass(frozen=True)
class Duplicate:
    """Several actual items share one natural key."""

    key: Key
    indexes: tuple[int, ...]
    device_ids: tuple[DeviceId, ...]


@dataclass(frozen=True)
class Skipped:
    """A protected actual item that the policy would otherwise have changed."""

    key: Key | None
    device_id: DeviceId
    index: int
    action: Literal["update", "delete"]


Step = Create | Update | Delete | Move


def _key_text(key: Key | None, key_fields: Sequence[str]) -> str:
    if key is None:
        return "?"
    return ",".join(f"{name}={_part_text(part)}" for name, part in zip(key_fields, key, strict=False))


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, tuple):
        return "[" + ",".join(_part_text(p) for p in part) + "]"
    return str(part)


def format_key(key: Key | None, rules: ComparisonRules) -> str:
    """`collection[field=value,...]`, as used in plan summaries."""
    return f"{rules.collection}[{_key_text(key, rules.key_fields)}]"


@dataclass(frozen=True)
class Plan:
    collection: str
    key_fields: tuple[str, ...]
    policy: Policy
    creates: tuple[Create, ...] = ()
    updates: tuple[Update, ...] = ()
    deletes: tuple[Delete, ...] = ()
    moves: tuple[Move, ...] = ()
    adopted: tuple[Key, ...] = ()
    unmanaged: tuple[ItemRef, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    protected: tuple[Skipped, ...] = ()
    managed: tuple[Key, ...] = ()
    """Keys this operator manages once the plan has run (record them in status)."""

    @property
    def is_empty(self) -> bool:
        """No change to make (reports such as unmanaged or duplicate items do not count)."""
        return not (self.creates or self.updates or self.deletes or self.moves)

    def steps(self) -> tuple[Step, ...]:
        """All changes in execution order: deletes (highest index first, so positional ids
        stay valid), updates, then creates and moves by ascending desired position."""
        deletes = sorted(self.deletes, key=lambda d: d.index, reverse=True)
        placements: list[Create | Move] = [*self.creates, *self.moves]
        if all(p.position is not None for p in placements):
            placements.sort(key=lambda p: p.position if p.position is not None else -1)
        return (*deletes, *self.updates, *placements)

    def _ref(self, key: Key | None) -> str:
        return f"{self.collection}[{_key_text(key, self.key_fields)}]"

    def _anchor_text(self, before: Anchor | None, after: Anchor | None) -> str:
        if before is not None:
            return f" before {self._ref(before.key)}"
        if after is not None:
            return f" after {self._ref(after.key)}"
        return ""

    @staticmethod
    def _id_text(device_id: DeviceId) -> str:
        return "" if device_id is None else f" id={device_id}"

    def summary(self) -> list[str]:
        """Human-readable lines, changes first. Field names only, never values (they may be secret)."""
        lines: list[str] = []
        for step in self.steps():
            if isinstance(step, Delete):
                ref = self._ref(step.key) if step.key is not None else f"{self.collection}[#{step.index}]"
                lines.append(f"delete {ref}{self._id_text(step.device_id)} ({step.reason})")
            elif isinstance(step, Update):
                names = ", ".join(c.field for c in step.changed_fields)
                lines.append(f"update {self._ref(step.key)}{self._id_text(step.device_id)}: {names}")
            elif isinstance(step, Create):
                lines.append(f"create {self._ref(step.key)}{self._anchor_text(step.before, step.after)}")
            else:
                where = self._anchor_text(step.before, step.after) or " to the end"
                lines.append(f"move {self._ref(step.key)}{self._id_text(step.device_id)}{where}")
        lines.extend(f"adopt {self._ref(key)}" for key in self.adopted)
        for dup in self.duplicates:
            ids = ", ".join(str(i) for i in dup.device_ids if i is not None)
            lines.append(
                f"duplicate {self._ref(dup.key)}: {len(dup.indexes)} copies"
                + (f" (ids {ids})" if ids else "")
            )
        for skip in self.protected:
            ref = self._ref(skip.key) if skip.key is not None else f"{self.collection}[#{skip.index}]"
            lines.append(f"keep protected {ref}{self._id_text(skip.device_id)} (would {skip.action})")
        if self.unmanaged:
            lines.append(f"leave {len(self.unmanaged)} unmanaged {self.collection} item(s) alone")
        return lines

    def counts(self) -> dict[str, int]:
        return {
            "create": len(self.creates),
            "update": len(self.updates),
            "delete": len(self.deletes),
            "move": len(self.moves),
            "adopt": len(self.adopted),
            "unmanaged": len(self.unmanaged),
            "duplicate": len(self.duplicates),
            "protected": len(self.protected),
        }


# --------------------------------------------------------------------------- keys, ownership, comparison


def _key_part(value: Any) -> Any:
    """A canonical, hashable key component; None for an absent or empty value."""
    if value is None or value == "":
        return None
    text = scalar_text(value)
    if text is not None:
        return text
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _key_part(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_key_part(v) for v in value)
    return repr(value)


def _normalized_full(item: Mapping[str, Any], rules: ComparisonRules) -> dict[str, Any]:
    return normalize_item(item, rules.field_rules, keep_unknown=True, apply_defaults=True)


def _extract_key(normalized: Mapping[str, Any], rules: ComparisonRules) -> tuple[Key | None, str | None]:
    parts: list[Any] = []
    for name in rules.key_fields:
        part = _key_part(get_path(normalized, name))
        if part is None:
            return None, name
        parts.append(part)
    return tuple(parts), None


def _plain_key_rules(
    key_fields: Sequence[str], field_rules: Mapping[str, FieldRule]
) -> tuple[tuple[str, FieldRule | None], ...] | None:
    """Key fields with their rules, or None when a key's normalised value depends on more than
    its own field (a dotted key, or dotted rules reaching into it)."""
    for name in key_fields:
        if len(split_path(name)) != 1:
            return None
        for other in field_rules:
            parts = split_path(other)
            if len(parts) > 1 and parts[0] == name:
                return None
    return tuple((name, field_rules.get(name)) for name in key_fields)


def _fast_key(item: Mapping[str, Any], rules: ComparisonRules) -> tuple[Key | None, str | None]:
    """`_extract_key(_normalized_full(item))` normalising only the key fields: what
    `normalize_item` makes of a plain field with no dotted rules below it."""
    if rules._key_rules is None:
        return _extract_key(_normalized_full(item, rules), rules)
    parts: list[Any] = []
    for name, rule in rules._key_rules:
        value = item.get(name) if name in item else None
        if rule is not None:
            if rule.ignore:
                value = None
            else:
                if value is not None:
                    value = normalize_value(value, rule, keep_unknown=True, apply_defaults=True)
                if value is None and rule.has_default:
                    value = normalize_value(rule.default, rule, keep_unknown=True, apply_defaults=True)
        part = _key_part(value)
        if part is None:
            return None, name
        parts.append(part)
    return tuple(parts), None


def item_key(item: Mapping[str, Any], rules: ComparisonRules) -> Key | None:
    """The natural key of an item (either side), or None when a key field is absent or empty."""
    return _fast_key(item, rules)[0]


def _device_id(item: Mapping[str, Any], rules: ComparisonRules) -> DeviceId:
    if rules.id_field is None:
        return None
    value = get_path(item, rules.id_field)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return value
    return str(value)


def is_owned(item: Mapping[str, Any], rules: ComparisonRules) -> bool:
    """Whether the item carries this operator's ownership marker."""
    if rules.owner_field is None or rules.owner_marker is None:
        return False
    value = get_path(item, rules.owner_field)
    if not isinstance(value, str):
        return False
    if rules.owner_match == "prefix":
        return value.lstrip().startswith(rules.owner_marker)
    return rules.owner_marker in value


def with_owner_marker(
    item: Mapping[str, Any], rules: ComparisonRules, *, placement: Literal["prefix", "suffix"] = "prefix"
) -> dict[str, Any]:
    """A copy of a desired item with the ownership marker written into `owner_field`.

    Top-level `owner_field` only; an item already carrying the marker is returned unchanged.
    """
    result = dict(item)
    if rules.owner_field is None or rules.owner_marker is None or is_owned(item, rules):
        return result
    current = result.get(rules.owner_field)
    text = "" if current is None else str(current)
    marker = rules.owner_marker
    if not text:
        result[rules.owner_field] = marker
    elif placement == "prefix":
        result[rules.owner_field] = f"{marker} {text}"
    else:
        result[rules.owner_field] = f"{text} {marker}"
    return result


def _drop_path(item: dict[str, Any], path: str) -> None:
    """Remove a (dotted) path; parent objects left empty by the removal go too."""
    if path in item:
        del item[path]
        return
    parts = split_path(path)
    chain: list[dict[str, Any]] = [item]
    for part in parts[:-1]:
        child = chain[-1].get(part)
        if not isinstance(child, dict):
            return
        chain.append(child)
    if parts[-1] not in chain[-1]:
        return
    del chain[-1][parts[-1]]
    for depth in range(len(chain) - 1, 0, -1):
        if chain[depth]:
            break
        del chain[depth - 1][parts[depth - 1]]


def _set_path(item: dict[str, Any], path: str, value: Any) -> None:
    parts = split_path(path)
    if len(parts) == 1 or path in item:
        item[path] = value
        return
    node = item
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _comparable(item: Mapping[str, Any], rules: ComparisonRules, *, desired: bool) -> dict[str, Any]:
    """The normalised view that is compared: defaults applied (on the desired side only in
    `exact` mode, so that subset mode compares exactly what the spec sets), id and ignored
    fields removed."""
    apply_defaults = not desired or rules.mode == "exact"
    norm = normalize_item(item, rules.field_rules, keep_unknown=True, apply_defaults=apply_defaults)
    return _drop_uncompared(norm, rules)


def _drop_uncompared(norm: dict[str, Any], rules: ComparisonRules) -> dict[str, Any]:
    """`norm` (changed in place) without the id and the ignored fields."""
    if rules.id_field is not None:
        _drop_path(norm, rules.id_field)
    for path in rules.ignore_fields:
        _drop_path(norm, path)
    return norm


def _equal(want: Any, have: Any, exact: bool) -> bool:
    """Loose equality of normalised values: scalars compare by canonical text (so `"1500"`
    equals `1500` and `True` does not equal `1`); in subset mode a desired object only
    constrains the members it sets, also inside lists."""
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        names = set(want) | set(have) if exact else set(want)
        return all(_equal(want.get(n), have.get(n), exact) for n in names)
    if isinstance(want, list | tuple) and isinstance(have, list | tuple):
        return len(want) == len(have) and all(_equal(w, h, exact) for w, h in zip(want, have, strict=True))
    want_text, have_text = scalar_text(want), scalar_text(have)
    if want_text is not None and have_text is not None:
        return want_text == have_text
    if want_text is not None or have_text is not None:
        return False
    return bool(want == have)


def _diff(
    want: Mapping[str, Any], have: Mapping[str, Any], exact: bool, prefix: str = ""
) -> list[FieldChange]:
    names = list(want)
    if exact:
        names += [n for n in have if n not in want]
    changes: list[FieldChange] = []
    for name in names:
        path = f"{prefix}.{name}" if prefix else name
        w, h = want.get(name), have.get(name)
        if isinstance(w, Mapping) and isinstance(h, Mapping):
            changes.extend(_diff(w, h, exact, path))
        elif not _equal(w, h, exact):
            changes.append(FieldChange(path, h, w))
    return changes


def compare(
    desired: Mapping[str, Any], actual: Mapping[str, Any], rules: ComparisonRules
) -> tuple[FieldChange, ...]:
    """The fields in which `actual` differs from `desired` under `rules` (empty: in sync)."""
    want = _comparable(desired, rules, desired=True)
    have = _comparable(actual, rules, desired=False)
    return tuple(_diff(want, have, rules.mode == "exact"))


def _pattern_matches(
    item: Mapping[str, Any], normalized: Mapping[str, Any], pattern: Mapping[str, Any], rules: ComparisonRules
) -> bool:
    for path, expected in pattern.items():
        raw = get_path(item, path, _MISSING)
        norm = get_path(normalized, path, _MISSING)
        if expected is None:
            if raw is not _MISSING and raw is not None:
                return False
            continue
        if raw is _MISSING or raw is None:
            return False
        rule = rule_for_path(rules.field_rules, path)
        if isinstance(expected, str):
            texts = [t for t in (scalar_text(raw), scalar_text(norm)) if t is not None]
            glob = expected
            if rule is not None and rule.case_insensitive:
                texts = [t.lower() for t in texts]
                glob = glob.lower()
            if not any(fnmatch.fnmatchcase(t, glob) for t in texts):
                return False
        else:
            wanted = normalize_value(expected, rule) if rule is not None else expected
            if not (_equal(wanted, norm, True) or _equal(expected, raw, True)):
                return False
    return True


def _check_patterns(patterns: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    if isinstance(patterns, Mapping):
        raise TypeError("protected must be a list of patterns (field -> value or glob), not one mapping")
    checked = tuple(patterns)
    for i, pattern in enumerate(checked):
        if not isinstance(pattern, Mapping):
            raise TypeError(f"protected[{i}] must be a mapping of field -> value or glob")
    return checked


def matches_protected(
    item: Mapping[str, Any], patterns: Sequence[Mapping[str, Any]], rules: ComparisonRules
) -> bool:
    """Whether an actual item matches any protected pattern.

    A pattern maps field paths to values; every field must match. A string value is a glob
    (`mgmt-*`) matched against the raw and the normalised value; other values compare after
    normalisation; None matches an absent or null field.
    """
    normalized = _normalized_full(item, rules)
    return any(_pattern_matches(item, normalized, p, rules) for p in _check_patterns(patterns))


# --------------------------------------------------------------------------- longest increasing subsequence


def _best_chain(values: Sequence[int], weights: Sequence[tuple[int, ...]], size: int) -> list[int]:
    """Indexes of a strictly increasing (by value) subsequence maximising the summed weight
    lexicographically. Values lie in [0, size). A Fenwick tree of prefix maxima: O(n log n)."""
    tree: list[tuple[tuple[int, ...], int] | None] = [None] * (size + 1)
    previous = [-1] * len(values)

    def query(upto: int) -> tuple[tuple[int, ...], int] | None:
        best: tuple[tuple[int, ...], int] | None = None
        i = upto
        while i > 0:
            entry = tree[i]
            if entry is not None and (best is None or entry[0] > best[0]):
                best = entry
            i -= i & -i
        return best

    def update(position: int, entry: tuple[tuple[int, ...], int]) -> None:
        i = position + 1
        while i <= size:
            current = tree[i]
            if current is None or entry[0] > current[0]:
                tree[i] = entry
            i += i & -i

    for n, (value, weight) in enumerate(zip(values, weights, strict=True)):
        best = query(value)
        if best is None:
            score = weight
        else:
            score = tuple(a + b for a, b in zip(best[0], weight, strict=True))
            previous[n] = best[1]
        update(value, (score, n))

    chain: list[int] = []
    top = query(size)
    n = -1 if top is None else top[1]
    while n >= 0:
        chain.append(n)
        n = previous[n]
    chain.reverse()
    return chain


def longest_increasing_subsequence(values: Sequence[Any]) -> list[int]:
    """Indexes of one longest strictly increasing subsequence of `values` (comparable items)."""
    ranks = {v: r for r, v in enumerate(sorted(set(values)))}
    return _best_chain([ranks[v] for v in values], [(1,)] * len(values), len(ranks))


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Desired:
    index: int
    raw: Mapping[str, Any]
    key: Key
    comparable: dict[str, Any]


@dataclass(frozen=True)
class _Actual:
    index: int
    raw: Mapping[str, Any]
    key: Key | None
    device_id: DeviceId
    owned: bool
    protected: bool
    comparable: dict[str, Any]


def _managed_key_set(keys: Iterable[Any], rules: ComparisonRules) -> set[Key]:
    """Keys recorded earlier (JSON from status: lists, maybe numbers as text), normalised as
    the item keys are. Entries of the wrong shape are ignored."""
    result: set[Key] = set()
    for entry in keys:
        parts: list[Any]
        if isinstance(entry, list | tuple):
            parts = list(entry)
        elif len(rules.key_fields) == 1:
            parts = [entry]
        else:
            continue
        if len(parts) != len(rules.key_fields):
            continue
        key: list[Any] = []
        for name, part in zip(rules.key_fields, parts, strict=True):
            rule = rule_for_path(rules.field_rules, name)
            value = normalize_value(part, rule) if rule is not None else part
            canonical = _key_part(value)
            if canonical is None:
                break
            key.append(canonical)
        else:
            result.add(tuple(key))
    return result


def _observe(
    actual: Sequence[Mapping[str, Any]], rules: ComparisonRules, patterns: Sequence[Mapping[str, Any]]
) -> list[_Actual]:
    observed: list[_Actual] = []
    for index, raw in enumerate(actual):
        if not isinstance(raw, Mapping):
            observed.append(_Actual(index, {}, None, None, False, False, {}))
            continue
        # One normalisation serves the key, the protected patterns and (its id and ignored
        # fields dropped afterwards) the comparison: `_comparable(raw, desired=False)`.
        normalized = _normalized_full(raw, rules)
        key, _ = _extract_key(normalized, rules)
        protected = any(_pattern_matches(raw, normalized, p, rules) for p in patterns)
        observed.append(
            _Actual(
                index=index,
                raw=raw,
                key=key,
                device_id=_device_id(raw, rules),
                owned=is_owned(raw, rules),
                protected=protected,
                comparable=_drop_uncompared(normalized, rules),
            )
        )
    return observed


def _read_desired(desired: Sequence[Mapping[str, Any]], rules: ComparisonRules) -> list[_Desired]:
    wanted: list[_Desired] = []
    seen: dict[Key, int] = {}
    for index, raw in enumerate(desired):
        if not isinstance(raw, Mapping):
            raise PlanError(f"desired {rules.collection}[{index}] is not a mapping")
        if rules.mode == "exact":  # the comparable view is the full one, id and ignored fields dropped
            normalized = _normalized_full(raw, rules)
            key, missing = _extract_key(normalized, rules)
            comparable = _drop_uncompared(normalized, rules)
        else:
            key, missing = _fast_key(raw, rules)
            comparable = None
        if key is None:
            raise MissingKeyError(index, missing or "?", collection=rules.collection)
        if key in seen:
            raise DuplicateKeyError(
                key, seen[key], index, key_fields=rules.key_fields, collection=rules.collection
            )
        seen[key] = index
        if comparable is None:
            comparable = _comparable(raw, rules, desired=True)
        wanted.append(_Desired(index, raw, key, comparable))
    return wanted


def plan(
    desired: Sequence[Mapping[str, Any]],
    actual: Sequence[Mapping[str, Any]],
    rules: ComparisonRules,
    policy: Policy | str,
    *,
    managed_keys: Collection[Any] = (),
    protected: Sequence[Mapping[str, Any]] = (),
) -> Plan:
    """The changes that make `actual` match `desired` under `policy`.

    Raises `MissingKeyError` or `DuplicateKeyError` for bad desired items; never raises on odd
    actual items (an actual item lacking a key field is foreign: left alone, or deleted under
    `overridden`).

    With several actual copies of a desired key, the copy kept is the first one that needs no
    change (and, in ordered collections, no move), else the first unprotected copy; the other
    copies are deleted under `replaced`/`overridden` and reported under `merged`.
    """
    policy = Policy(policy)
    patterns = _check_patterns(protected)
    exact = rules.mode == "exact"
    wanted = _read_desired(desired, rules)
    by_key = {d.key: d for d in wanted}
    managed_set = _managed_key_set(managed_keys, rules)
    observed = _observe(actual, rules, patterns)

    groups: dict[Key, list[_Actual]] = {}
    for a in observed:
        if a.key is not None:
            groups.setdefault(a.key, []).append(a)

    # Differences of every unprotected copy of a desired key.
    changes: dict[int, tuple[FieldChange, ...]] = {}
    candidates: dict[Key, list[_Actual]] = {}
    for d in wanted:
        cands = [a for a in groups.get(d.key, []) if not a.protected]
        candidates[d.key] = cands
        for a in cands:
            changes[a.index] = tuple(_diff(d.comparable, a.comparable, exact))

    def managed(a: _Actual) -> bool:
        return a.owned or (a.key is not None and a.key in managed_set)

    def preference(a: _Actual) -> tuple[int, int]:
        return (int(not changes[a.index]), int(managed(a)))

    # Choose the copy of each desired key to keep; in ordered collections, the choice that
    # leaves the most items in place.
    primary: dict[Key, _Actual] = {}
    in_place: set[Key] = set()
    if rules.ordered:
        seq = [a for a in observed if a.key is not None and not a.protected and a.key in by_key]
        chain = _best_chain(
            [by_key[a.key].index for a in seq if a.key is not None],
            [(1, *preference(a)) for a in seq],
            len(wanted),
        )
        for n in chain:
            a = seq[n]
            assert a.key is not None
            primary[a.key] = a
            in_place.add(a.key)
    for d in wanted:
        cands = candidates[d.key]
        if d.key not in primary and cands:
            best = max(preference(a) for a in cands)
            primary[d.key] = next(a for a in cands if preference(a) == best)

    creates: list[Create] = []
    updates: list[Update] = []
    deletes: list[Delete] = []
    adopted: list[Key] = []
    unmanaged: list[ItemRef] = []
    skipped: list[Skipped] = []
    managed_after: list[Key] = []
    protected_only: set[Key] = set()

    for d in wanted:
        copies = groups.get(d.key, [])
        if not copies:
            managed_after.append(d.key)
            continue
        chosen = primary.get(d.key)
        if chosen is None:  # every copy is protected: leave it, report when it differs
            protected_only.add(d.key)
            first = copies[0]
            if _diff(d.comparable, first.comparable, exact):
                skipped.append(Skipped(d.key, first.device_id, first.index, "update"))
            continue
        managed_after.append(d.key)
        is_adopted = not managed(chosen)
        if is_adopted:
            adopted.append(d.key)
        if changes[chosen.index]:
            updates.append(
                Update(
                    key=d.key,
                    device_id=chosen.device_id,
                    desired=d.raw,
                    actual=chosen.raw,
                    changed_fields=changes[chosen.index],
                    index=chosen.index,
                    adopted=is_adopted,
                )
            )

    kept = {id(a) for a in primary.values()}
    for a in observed:
        if id(a) in kept:
            continue
        if not isinstance(actual[a.index], Mapping):  # not an item at all: never touched
            unmanaged.append(ItemRef(None, None, a.raw, a.index))
            continue
        if a.key is not None and a.key in by_key:
            # Another copy of a desired key (or the protected item standing for it).
            if policy is Policy.MERGED or (a.key in protected_only and a is groups[a.key][0]):
                continue
            if a.protected:
                skipped.append(Skipped(a.key, a.device_id, a.index, "delete"))
            else:
                deletes.append(Delete(a.key, a.device_id, a.raw, a.index, "duplicate"))
            continue
        is_managed = managed(a)
        if policy is Policy.MERGED or (policy is Policy.REPLACED and not is_managed):
            if not is_managed:
                unmanaged.append(ItemRef(a.key, a.device_id, a.raw, a.index))
            continue
        if a.protected:
            skipped.append(Skipped(a.key, a.device_id, a.index, "delete"))
        else:
            deletes.append(
                Delete(a.key, a.device_id, a.raw, a.index, "undesired" if is_managed else "foreign")
            )

    moves: list[Move] = []
    participants = [d for d in wanted if d.key not in protected_only]
    if rules.ordered:

        def anchor(d: _Desired) -> Anchor:
            a = primary.get(d.key)
            return Anchor(d.key, None, None) if a is None else Anchor(d.key, a.device_id, a.index)

        next_fixed: list[_Desired | None] = [None] * len(participants)
        upcoming: _Desired | None = None
        for pos in range(len(participants) - 1, -1, -1):
            next_fixed[pos] = upcoming
            if participants[pos].key in in_place:
                upcoming = participants[pos]
        for pos, d in enumerate(participants):
            if d.key in in_place:
                continue
            nxt = next_fixed[pos]
            before = anchor(nxt) if nxt is not None else None
            after = anchor(participants[pos - 1]) if nxt is None and pos > 0 else None
            chosen = primary.get(d.key)
            if chosen is None:
                creates.append(Create(d.key, d.raw, d.index, before, after))
            else:
                moves.append(Move(d.key, chosen.device_id, chosen.index, d.index, before, after))
    else:
        creates.extend(Create(d.key, d.raw) for d in participants if d.key not in primary)

    duplicates = tuple(
        Duplicate(key, tuple(a.index for a in copies), tuple(a.device_id for a in copies))
        for key, copies in groups.items()
        if len(copies) > 1
    )
    return Plan(
        collection=rules.collection,
        key_fields=rules.key_fields,
        policy=policy,
        creates=tuple(creates),
        updates=tuple(updates),
        deletes=tuple(sorted(deletes, key=lambda x: x.index)),
        moves=tuple(moves),
        adopted=tuple(adopted),
        unmanaged=tuple(unmanaged),
        duplicates=duplicates,
        protected=tuple(sorted(skipped, key=lambda s: s.index)),
        managed=tuple(managed_after),
    )


# --------------------------------------------------------------------------- position values


def insert_positions(
    keys: Sequence[Key],
    fixed: Mapping[Key, int | None],
    created: Collection[Key],
    step: int,
    *,
    ceiling: int = 0,
) -> dict[Key, int | None]:
    """Position values for created items (a `sequence` the device sorts by) that put each one
    between its neighbours in `keys` (the desired order), without renumbering anything.

    `fixed` holds the items that stay where they are, with their device value (None: unknown);
    keys neither fixed nor created are moved by the plan's move steps. A run of creates between
    two fixed items shares the gap between their values; at the end of the list the creates go
    past every value on the device (`ceiling`), `step` apart. A create gets None when its place
    cannot be written as a value: the gap is too small, a neighbour's value is unknown, or items
    that move share the gap (their values change as they move). The caller then places it with
    a move.
    """
    out: dict[Key, int | None] = {}
    lo: int | None = 0
    run: list[Key] = []

    def close(hi: int | None, at_end: bool) -> None:
        creates = [k for k in run if k in created]
        if not creates:
            return
        if at_end:
            base = max(ceiling, lo if lo is not None else ceiling)
            out.update({k: base + step * (n + 1) for n, k in enumerate(creates)})
            return
        room = None if lo is None or hi is None else hi - lo - 1
        if room is None or room < len(creates) or len(creates) != len(run):
            out.update(dict.fromkeys(creates))
            return
        assert lo is not None and hi is not None
        width = hi - lo
        out.update({k: lo + width * (n + 1) // (len(creates) + 1) for n, k in enumerate(creates)})

    for key in keys:
        if key in fixed:
            value = fixed[key]
            close(value, at_end=False)
            run = []
            lo = value
        else:
            run.append(key)
    close(None, at_end=True)
    return out


def plan_positions(
    plan: Plan,
    desired: Sequence[Mapping[str, Any]],
    actual: Sequence[Mapping[str, Any]],
    rules: ComparisonRules,
    position_field: str,
    step: int,
) -> dict[Key, int | None]:
    """The position value to write for each desired item of an ordered collection whose device
    sorts by `position_field`: items kept in place keep their device value (an update must not
    renumber them), created items get a value between their neighbours (`insert_positions`),
    moved items None (their move places them)."""
    deleted = {d.index for d in plan.deletes}
    device: dict[Key, int | None] = {}
    ceiling = 0
    for index, raw in enumerate(actual):
        if not isinstance(raw, Mapping):
            continue
        value = _position_value(get_path(raw, position_field))
        if value is not None:
            ceiling = max(ceiling, value)
        key = item_key(raw, rules)
        if index not in deleted and key is not None and key not in device:
            device[key] = value
    created = {c.key for c in plan.creates}
    moved = {m.key for m in plan.moves}
    keys = [k for k in (item_key(d, rules) for d in desired) if k is not None]
    fixed = {k: device[k] for k in keys if k in device and k not in created and k not in moved}
    out: dict[Key, int | None] = dict.fromkeys(moved)
    out.update(insert_positions(keys, fixed, created, step, ceiling=ceiling))
    out.update(fixed)
    return out


def _position_value(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


# --------------------------------------------------------------------------- simulation


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in patch.items():
        current = target.get(name)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge(current, value)
        else:
            target[name] = _copy(value)
    return target


def _apply_update(
    actual: Mapping[str, Any], desired: Mapping[str, Any], rules: ComparisonRules
) -> dict[str, Any]:
    if rules.mode == "subset":
        return _merge(_copy(actual), desired)
    result: dict[str, Any] = _copy(desired)
    kept = [*rules.ignore_fields, *(name for name, r in rules.field_rules.items() if r.ignore)]
    if rules.id_field is not None:
        kept.append(rules.id_field)
    for path in kept:
        value = get_path(actual, path, _MISSING)
        if value is not _MISSING and get_path(result, path, _MISSING) is _MISSING:
            _set_path(result, path, _copy(value))
    return result


_Handle = tuple[str, Any]


def simulate(actual: Sequence[Mapping[str, Any]], plan: Plan, rules: ComparisonRules) -> list[dict[str, Any]]:
    """Apply `plan` to a copy of `actual` in memory, as a device would (dry-run preview).

    Updates merge the desired fields into the item (`subset`) or replace it, keeping its id and
    ignored fields (`exact`). Created items get a fresh id (`sim-N`) when the collection has
    an `id_field`. Raises `PlanMismatchError` when the plan was not made from this list.
    """
    size = len(actual)

    def check(index: int, key: Key | None) -> None:
        if not 0 <= index < size:
            raise PlanMismatchError(f"plan refers to {plan.collection} item #{index}; the list has {size}")
        raw = actual[index]
        if key is not None and (not isinstance(raw, Mapping) or item_key(raw, rules) != key):
            raise PlanMismatchError(
                f"plan expects {plan.collection} item #{index} to have key {_key_text(key, plan.key_fields)}"
            )

    entries: list[tuple[_Handle, Any]] = [(("actual", i), _copy(item)) for i, item in enumerate(actual)]
    deleted: set[int] = set()
    for d in plan.deletes:
        check(d.index, d.key)
        deleted.add(d.index)
    entries = [e for e in entries if e[0][1] not in deleted]
    replaced: dict[int, dict[str, Any]] = {}
    for u in plan.updates:
        check(u.index, u.key)
        replaced[u.index] = _apply_update(actual[u.index], u.desired, rules)
    entries = [(h, replaced.get(h[1], item)) for h, item in entries]

    used_ids = {
        str(v)
        for item in actual
        if isinstance(item, Mapping)
        for v in [_device_id(item, rules)]
        if v is not None
    }
    counter = 0

    def fresh_id() -> str:
        nonlocal counter
        while True:
            counter += 1
            candidate = f"sim-{counter}"
            if candidate not in used_ids:
                used_ids.add(candidate)
                return candidate

    def locate(target: Anchor) -> int:
        handle: _Handle = ("actual", target.index) if target.index is not None else ("created", target.key)
        for pos, (h, _) in enumerate(entries):
            if h == handle:
                return pos
        raise PlanMismatchError(f"anchor {_key_text(target.key, plan.key_fields)} is not in the list")

    for step in plan.steps():
        if not isinstance(step, Create | Move):
            continue
        if isinstance(step, Move):
            check(step.index, step.key)
            handle: _Handle = ("actual", step.index)
            found = [pos for pos, (h, _) in enumerate(entries) if h == handle]
            if not found:
                raise PlanMismatchError(f"cannot move deleted {plan.collection} item #{step.index}")
            item = entries.pop(found[0])[1]
        else:
            handle = ("created", step.key)
            item = _copy(step.desired)
            if rules.id_field is not None and get_path(item, rules.id_field) is None:
                _set_path(item, rules.id_field, fresh_id())
        if step.before is not None:
            entries.insert(locate(step.before), (handle, item))
        elif step.after is not None:
            entries.insert(locate(step.after) + 1, (handle, item))
        else:
            entries.append((handle, item))
    return [item for _, item in entries]
