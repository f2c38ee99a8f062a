"""Loading VnfProvider objects into validated dictionaries, once per generation.

Each provider also has a bounded history of the dictionaries seen before the current one
(`ProviderHistory`, persisted by `engine/rollout.py`): an appliance resolves to the dictionary it is
on until the provider's rollout moves it, or to the version it pins (docs/lifecycle.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vnf_operator.core import rollout as ro
from vnf_operator.core.errors import DictionaryError, Problem
from vnf_operator.core.loader import load_provider_spec
from vnf_operator.core.status import summarize_provider
from vnf_operator.k8s.client import KubeError

if TYPE_CHECKING:
    from vnf_operator.core.loader import LoadedProvider
    from vnf_operator.engine.rollout import HistoryStore

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 50


@dataclass
class ProviderEntry:
    name: str
    generation: int
    loaded: LoadedProvider | None = None
    problems: tuple[Problem, ...] = ()
    revision: str = ""
    """Hash of the dictionary (`core.rollout.revision_of`)."""
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False)
    history: ProviderHistory | None = field(default=None, repr=False, compare=False)
    pin_problem: str = ""
    """Set on the entry `for_appliance` returns when the appliance's version pin fits nothing."""

    @property
    def version(self) -> str:
        return self.loaded.dictionary.info.version if self.loaded else ""

    def item(self) -> ro.HistoryItem:
        return ro.HistoryItem(
            ro.history_name(self.name, self.revision), self.revision, self.version, 0, self.generation
        )

    async def for_appliance(self, appliance: Mapping[str, Any]) -> ProviderEntry:
        """The dictionary this appliance uses: this one, or an older one it is on (not moved by the
        rollout yet) or pins. Without a history (tests, the webhook) always this one."""
        if self.history is None:
            return self
        history = self.history
        await history.ensure_loaded()
        if self.loaded is None:  # an invalid change: appliances on a good older one stay there
            older = history.entry(history.revision_on(appliance, self))
            return older if older is not None and older.loaded is not None else self
        spec = appliance.get("spec") or {}
        pin = str((spec.get("providerRef") or {}).get("version") or "")
        meta = appliance.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        choice = ro.choose_revision(
            current=self.item(),
            history=history.items(exclude=self.revision),
            on=history.revision_on(appliance, self),
            admitted=key in history.admitted.get(self.revision, set()),
            pin=pin,
        )
        if choice.problem:
            return dataclasses.replace(self, pin_problem=choice.problem)
        if choice.revision == self.revision:
            return self
        older = history.entry(choice.revision)
        return older if older is not None and older.loaded is not None else self


@dataclass
class ProviderHistory:
    """The dictionaries of one provider seen before the current one, and the rollout's admissions."""

    name: str
    store: HistoryStore | None = None
    admitted: dict[str, set[str]] = field(default_factory=dict)
    """Target revision -> appliances (`namespace/name`) the rollout moved to it."""
    _items: dict[str, ro.HistoryItem] = field(default_factory=dict)
    _specs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _entries: dict[str, ProviderEntry] = field(default_factory=dict)
    _persisted: set[str] = field(default_factory=set)
    _loaded: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def remember(self, entry: ProviderEntry) -> None:
        """Keep a dictionary that was current (in memory; `persist` stores it)."""
        if entry.loaded is None or not entry.revision:
            return
        known = self._items.get(entry.revision)
        number = known.number if known else self.next_number()
        self._items[entry.revision] = dataclasses.replace(entry.item(), number=number)
        self._specs[entry.revision] = entry.spec
        self._entries[entry.revision] = dataclasses.replace(entry, history=self)

    def next_number(self) -> int:
        return max((i.number for i in self._items.values()), default=0) + 1

    def items(self, *, exclude: str = "") -> list[ro.HistoryItem]:
        return sorted((i for r, i in self._items.items() if r != exclude), key=lambda i: i.number)

    def entry(self, revision: str) -> ProviderEntry | None:
        """The loaded dictionary of a stored revision (loaded on first use)."""
        if revision not in self._entries and revision in self._specs:
            item = self._items[revision]
            loaded = load_entry(self.name, item.generation, self._specs[revision])
            self._entries[revision] = dataclasses.replace(loaded, history=self)
        return self._entries.get(revision)

    def revision_on(self, appliance: Mapping[str, Any], current: ProviderEntry) -> str:
        """The revision the appliance's last reconcile used ("" when unknown). Statuses written
        before revisions were recorded name the provider generation instead."""
        used = (appliance.get("status") or {}).get("provider") or {}
        if used.get("name") != self.name:
            return ""
        if used.get("revision"):
            return str(used["revision"])
        generation = used.get("generation")
        if generation == current.generation:
            return current.revision
        found = [i.revision for i in self._items.values() if i.generation == generation]
        return found[0] if found else ""

    async def ensure_loaded(self) -> None:
        """Read the persisted history once (after a restart the older dictionaries come from there)."""
        if self._loaded or self.store is None:
            return
        async with self._lock:
            if self._loaded:
                return
            try:
                stored = await self.store.load(self.name)
            except KubeError as exc:
                log.warning("cannot read the history of VnfProvider %s: %s", self.name, exc)
                return
            for s in stored:
                self._items.setdefault(s.item.revision, s.item)
                self._specs.setdefault(s.item.revision, s.spec)
            self._loaded = True

    async def persist(self, provider: Mapping[str, Any], entry: ProviderEntry, in_use: set[str]) -> None:
        """Store the current dictionary, then prune the history."""
        if self.store is None or entry.loaded is None:
            return
        await self.ensure_loaded()
        self.remember(entry)
        item = self._items[entry.revision]
        if item.revision not in self._persisted:
            await self.store.save(
                provider, revision=entry.revision, version=entry.version, spec=entry.spec, number=item.number
            )
            self._persisted.add(item.revision)
        for gone in await self.store.prune(self.items(), {*in_use, entry.revision}):
            self._items.pop(gone, None)
            self._specs.pop(gone, None)
            self._entries.pop(gone, None)
            self._persisted.discard(gone)


@dataclass
class ProviderCache:
    _entries: dict[str, ProviderEntry] = field(default_factory=dict)
    _histories: dict[str, ProviderHistory] = field(default_factory=dict)
    store: HistoryStore | None = None
    """Persists provider history (set by the operator; None keeps it in memory only)."""
    _announced: dict[str, int] = field(default_factory=dict)
    _waiting: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)
    _resync_requests: dict[str, str] = field(default_factory=dict)

    def announce(self, name: str, generation: int) -> bool:
        """True once per provider generation: the provider reconciler then wakes its appliances.
        Kept apart from `resolve`, which appliances and the webhook call too."""
        if self._announced.get(name) == generation:
            return False
        self._announced[name] = generation
        return True

    def resync_requested(self, name: str, request: str) -> bool:
        """True when the provider's `reconcile-requested` annotation has a new value since the last
        look. Not on the first look: a starting operator reconciles every appliance anyway."""
        previous = self._resync_requests.get(name)
        self._resync_requests[name] = request
        return previous is not None and previous != request

    def wait_for(self, name: str, key: tuple[str, str, str]) -> None:
        """An appliance looked `name` up and it was missing: reconcile it when the provider comes."""
        self._waiting.setdefault(name, set()).add(key)

    def waiting(self, name: str) -> set[tuple[str, str, str]]:
        """The appliances waiting for `name` (forgotten here: the caller queues them)."""
        return self._waiting.pop(name, set())

    def history(self, name: str) -> ProviderHistory:
        if name not in self._histories:
            self._histories[name] = ProviderHistory(name, self.store)
        return self._histories[name]

    def resolve(self, body: Mapping[str, Any]) -> ProviderEntry:
        meta = body["metadata"]
        name, generation = meta["name"], int(meta.get("generation") or 0)
        entry = self._entries.get(name)
        if entry is not None and entry.generation == generation:
            return entry
        history = self.history(name)
        if entry is not None:
            history.remember(entry)  # appliances not moved yet keep using it
        entry = load_entry(name, generation, body.get("spec") or {})
        entry.history = history
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> ProviderEntry | None:
        return self._entries.get(name)

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)
        self._histories.pop(name, None)
        self._announced.pop(name, None)
        self._resync_requests.pop(name, None)


def load_entry(name: str, generation: int, spec: Mapping[str, Any]) -> ProviderEntry:
    """Validate a VnfProvider spec; `spec.rollout` is the operator's, not part of the dictionary."""
    dictionary = ro.dictionary_of(spec)
    revision = ro.revision_of(spec)
    problems: list[Problem] = []
    try:
        ro.max_unavailable(spec, 1)
    except ro.RolloutSpecError as exc:
        problems.append(Problem("spec.rollout", str(exc)))
    try:
        loaded = load_provider_spec(dictionary, name=name, source=f"VnfProvider/{name}")
    except DictionaryError as exc:
        return ProviderEntry(name, generation, problems=(*exc.problems, *problems), revision=revision)
    if problems:
        return ProviderEntry(name, generation, problems=tuple(problems), revision=revision)
    return ProviderEntry(name, generation, loaded=loaded, revision=revision, spec=dictionary)


def provider_status(
    body: Mapping[str, Any],
    entry: ProviderEntry,
    *,
    appliances: int,
    rollout: Mapping[str, Any] | None = None,
    paused: str = "",
) -> dict[str, Any]:
    """Status of a VnfProvider; `rollout` is `status.rollout`, `paused` the RolloutPaused message
    ("" when the rollout is not paused)."""
    previous = (body.get("status") or {}).get("conditions") or []
    problems = entry.problems[:MAX_REPORTED_ERRORS]
    services = sorted(entry.loaded.dictionary.services) if entry.loaded else []
    conditions = summarize_provider(
        valid=entry.loaded is not None,
        problems=[str(p) for p in problems],
        total_problems=len(entry.problems),
        generation=entry.generation,
        previous=previous,
        now=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    status: dict[str, Any] = {
        "observedGeneration": entry.generation,
        "conditions": conditions,
        "errors": [{"path": p.path, "message": p.message} for p in problems],
        "services": services,
        "version": entry.version,
        "revision": entry.revision,
        "appliances": appliances,
    }
    if rollout is not None:
        status["rollout"] = dict(rollout)
        conditions.append(_rollout_condition(previous, entry.generation, paused, rollout))
    return status


def _rollout_condition(
    previous: list[Mapping[str, Any]], generation: int, paused: str, rollout: Mapping[str, Any]
) -> dict[str, Any]:
    if paused:
        state, reason, message = "True", "FailuresDuringRollout", paused
    elif rollout.get("updated") == rollout.get("total"):
        state, reason = "False", "RolloutComplete"
        message = f"all {rollout.get('total', 0)} appliance(s) use revision {rollout.get('revision')}"
    else:
        state, reason = "False", "RollingOut"
        message = (
            f"{rollout.get('updated', 0)}/{rollout.get('total', 0)} appliance(s) moved to revision "
            f"{rollout.get('revision')}, at most {rollout.get('maxUnavailable')} not Ready at a time"
        )
    old = next((c for c in previous if c.get("type") == "RolloutPaused"), None)
    since = old.get("lastTransitionTime") if old is not None and old.get("status") == state else None
    return {
        "type": "RolloutPaused",
        "status": state,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
