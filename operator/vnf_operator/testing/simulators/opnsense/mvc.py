"""The ApiMutableModelControllerBase behaviour: records keyed by UUID, validation, search grids.

Records are flat ``{dotted.field: "string"}`` dicts; nested containers (``source.network``) are
nested again only in ``get*`` output, as the PHP models do.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .fields import Field, ListField, ModelContext, SequenceField, php_string

Record = dict[str, str]
Validations = dict[str, str | list[str]]
CrossCheck = Callable[[Record], list[tuple[str, str]]]

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))


def new_uuid() -> str:
    return str(uuidlib.uuid4())


@dataclass(frozen=True)
class ModelSpec:
    """One ArrayField: its body key (``rule``, ``route``) and ordered fields."""

    key: str
    fields: Mapping[str, Field]
    cross_checks: tuple[CrossCheck, ...] = ()
    computed: Callable[[Record, ModelContext], dict[str, str]] | None = None


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not _looks_like_option_map(value):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _looks_like_option_map(value: Mapping[str, Any]) -> bool:
    return all(isinstance(item, Mapping) and "selected" in item for item in value.values())


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


class Collection:
    """An ordered UUID -> record store for one model ArrayField."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.records: dict[str, Record] = {}

    def copy_records(self) -> dict[str, Record]:
        return {key: dict(value) for key, value in self.records.items()}

    def sequence_default(self, name: str, field_def: SequenceField) -> str:
        highest = max(
            [field_def.minimum or 0, *(int(r[name]) for r in self.records.values() if r[name].isdigit())]
        )
        return str(highest + 1)

    def new_record(self) -> Record:
        record: Record = {}
        for name, field_def in self.spec.fields.items():
            if isinstance(field_def, SequenceField):
                record[name] = self.sequence_default(name, field_def)
            else:
                record[name] = field_def.default
        return record

    def apply_post(self, record: Record, posted: Mapping[str, Any]) -> None:
        """setNodes(): known fields are cast to strings, unknown keys are ignored."""
        for name, raw in flatten(posted).items():
            field_def = self.spec.fields.get(name)
            if field_def is None:
                continue
            value = "Array" if isinstance(raw, Mapping) else php_string(raw)
            record[name] = field_def.normalize(value)

    def validate(self, record: Record, ctx: ModelContext) -> Validations:
        messages: list[tuple[str, str]] = []
        for name, field_def in self.spec.fields.items():
            for message in field_def.validate(record.get(name, ""), ctx):
                messages.append((name, message))
        for check in self.spec.cross_checks:
            messages.extend(check(record))
        result: Validations = {}
        for name, message in messages:
            key = f"{self.spec.key}.{name}"
            existing = result.get(key)
            if existing is None:
                result[key] = message
            elif isinstance(existing, list):
                if message not in existing:
                    existing.append(message)
            elif existing != message:
                result[key] = [existing, message]
        return result

    def computed(self, record: Record, ctx: ModelContext) -> dict[str, str]:
        return self.spec.computed(record, ctx) if self.spec.computed else {}

    def view(self, record: Record, ctx: ModelContext) -> dict[str, Any]:
        """The get* shape: list fields as option maps, nested containers nested."""
        flat: dict[str, Any] = {
            name: field_def.view(record.get(name, ""), ctx) for name, field_def in self.spec.fields.items()
        }
        flat.update(self.computed(record, ctx))
        return nest(flat)

    def row(self, record_uuid: str, record: Record, ctx: ModelContext) -> dict[str, Any]:
        """The search* shape: flat strings plus ``%field`` labels for list fields."""
        row: dict[str, Any] = {"uuid": record_uuid}
        for name, field_def in self.spec.fields.items():
            value = record.get(name, "")
            row[name] = value
            if isinstance(field_def, ListField):
                label = field_def.label(value, ctx)
                if label is not None:
                    row[f"%{name}"] = label
        row.update(self.computed(record, ctx))
        return row


def natural_key(value: Any) -> list[Any]:
    """PHP's SORT_NATURAL | SORT_FLAG_CASE."""
    text = str(value).lower()
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclass
class GridRequest:
    """What UIModelGrid reads from the request."""

    current: int = 1
    row_count: int = -1
    search_phrase: str = ""
    sort: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GridRequest:
        def as_int(name: str, default: int) -> int:
            try:
                return int(str(params.get(name, default)))
            except ValueError:
                return default

        sort = params.get("sort", {})
        return cls(
            current=max(as_int("current", 1), 1),
            row_count=as_int("rowCount", -1),
            search_phrase=str(params.get("searchPhrase", "") or ""),
            sort={str(k): str(v) for k, v in sort.items()} if isinstance(sort, Mapping) else {},
        )


def _sort_key(name: str) -> Callable[[dict[str, Any]], list[Any]]:
    def key(row: dict[str, Any]) -> list[Any]:
        return natural_key(row.get(name, ""))

    return key


def search_grid(
    rows: Iterable[dict[str, Any]], grid: GridRequest, default_sort: str | None
) -> dict[str, Any]:
    """Filter by search phrase, sort, then page: the UIModelGrid response."""
    tokens = [token.lower() for token in grid.search_phrase.split() if token]
    selected = [
        row
        for row in rows
        if all(any(token in str(value).lower() for value in row.values()) for token in tokens)
    ]
    sort_fields = list(grid.sort.items()) or ([(default_sort, "asc")] if default_sort else [])
    for name, direction in reversed(sort_fields):
        selected.sort(key=_sort_key(name), reverse=direction == "desc")
    total = len(selected)
    if grid.row_count > 0:
        offset = (grid.current - 1) * grid.row_count
        page = selected[offset : offset + grid.row_count]
    else:
        page = selected
    return {"total": total, "rowCount": len(page), "current": grid.current, "rows": page}


def move_before(records: Mapping[str, Record], ordered_uuids: list[str], selected: str, target: str) -> None:
    """moveRuleBefore's gap numbering (step 50), renumbering only where the gap is too small."""
    step = 50
    new_key: int | None = None
    previous: Record | None = None
    for record_uuid in ordered_uuids:
        record = records[record_uuid]
        if record_uuid == target:
            prev_sequence = float(previous["sequence"]) if previous is not None else 1.0
            distance = float(record["sequence"]) - prev_sequence
            if distance > 2:
                new_key = int(distance // 2 + prev_sequence)
                break
            new_key = 1 if previous is None else int(prev_sequence + step)
            record["sequence"] = str(new_key + step)
        elif (
            new_key is not None
            and previous is not None
            and float(record["sequence"]) < float(previous["sequence"])
        ):
            record["sequence"] = str(int(float(previous["sequence"]) + step))
        previous = record
    if new_key is not None:
        records[selected]["sequence"] = str(new_key)
