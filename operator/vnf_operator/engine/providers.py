"""Loading VnfProvider objects into validated dictionaries, once per generation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vnf_operator.core.errors import DictionaryError, Problem
from vnf_operator.core.loader import load_provider_spec
from vnf_operator.core.status import summarize_provider

if TYPE_CHECKING:
    from vnf_operator.core.loader import LoadedProvider

MAX_REPORTED_ERRORS = 50


@dataclass
class ProviderEntry:
    name: str
    generation: int
    loaded: LoadedProvider | None = None
    problems: tuple[Problem, ...] = ()
    changed: bool = True
    """True the first time this generation was resolved (its appliances need a reconcile)."""

    @property
    def version(self) -> str:
        return self.loaded.dictionary.info.version if self.loaded else ""


@dataclass
class ProviderCache:
    _entries: dict[str, ProviderEntry] = field(default_factory=dict)

    def resolve(self, body: Mapping[str, Any]) -> ProviderEntry:
        meta = body["metadata"]
        name, generation = meta["name"], int(meta.get("generation") or 0)
        entry = self._entries.get(name)
        if entry is not None and entry.generation == generation:
            entry.changed = False
            return entry
        entry = load_entry(name, generation, body.get("spec") or {})
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> ProviderEntry | None:
        return self._entries.get(name)

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)


def load_entry(name: str, generation: int, spec: Mapping[str, Any]) -> ProviderEntry:
    try:
        loaded = load_provider_spec(dict(spec), name=name, source=f"VnfProvider/{name}")
    except DictionaryError as exc:
        return ProviderEntry(name, generation, problems=exc.problems)
    return ProviderEntry(name, generation, loaded=loaded)


def provider_status(body: Mapping[str, Any], entry: ProviderEntry, *, appliances: int) -> dict[str, Any]:
    previous = (body.get("status") or {}).get("conditions") or []
    problems = entry.problems[:MAX_REPORTED_ERRORS]
    services = sorted(entry.loaded.dictionary.services) if entry.loaded else []
    return {
        "observedGeneration": entry.generation,
        "conditions": summarize_provider(
            valid=entry.loaded is not None,
            problems=[str(p) for p in problems],
            total_problems=len(entry.problems),
            generation=entry.generation,
            previous=previous,
        ),
        "errors": [{"path": p.path, "message": p.message} for p in problems],
        "services": services,
        "version": entry.version,
        "appliances": appliances,
    }
