"""Which dictionary an appliance uses (engine/providers.py, no I/O: the history stays in memory)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from vnf_operator.engine.providers import ProviderCache, ProviderEntry, load_entry

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = yaml.safe_load((REPO / "providers" / "opnsense.yaml").read_text())["spec"]


def provider(version: str, generation: int, *, invalid: bool = False) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["info"]["version"] = version
    spec["rollout"] = {"maxUnavailable": 2}
    if invalid:
        spec["services"]["firewall_rules"]["operations"]["list"]["http"] = {"method": "FETCH"}
    return {"metadata": {"name": "opn", "generation": generation}, "spec": spec}


def appliance(name: str, on: ProviderEntry | None = None, pin: str = "") -> dict[str, Any]:
    ref = {"name": "opn", **({"version": pin} if pin else {})}
    status = {"provider": {"name": "opn", "version": on.version, "revision": on.revision}} if on else {}
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"providerRef": ref}, "status": status}


async def test_appliances_keep_their_dictionary_until_admitted() -> None:
    cache = ProviderCache()
    v1 = cache.resolve(provider("1.0.0", 1))
    assert v1.loaded is not None and v1.version == "1.0.0" and len(v1.revision) == 10
    v2 = cache.resolve(provider("2.0.0", 2))
    assert v2.revision != v1.revision and v2.history is v1.history
    assert v2.history is not None

    old = appliance("a", on=v1)
    assert (await v2.for_appliance(old)).revision == v1.revision  # not moved yet
    assert (await v2.for_appliance(appliance("new"))).revision == v2.revision  # new: current one
    v2.history.admitted.setdefault(v2.revision, set()).add("ns/a")
    assert (await v2.for_appliance(old)).revision == v2.revision  # moved by the rollout


async def test_pins_and_invalid_changes() -> None:
    cache = ProviderCache()
    v1 = cache.resolve(provider("1.0.0", 1))
    v2 = cache.resolve(provider("2.0.0", 2))
    pinned = await v2.for_appliance(appliance("p", on=v2, pin="1.x"))
    assert (pinned.revision, pinned.version) == (v1.revision, "1.0.0")
    nothing = await v2.for_appliance(appliance("q", pin=">=3"))
    assert "'>=3' matches none of the known versions (1.0.0, 2.0.0)" in nothing.pin_problem

    broken = cache.resolve(provider("3.0.0", 3, invalid=True))
    assert broken.loaded is None
    assert (await broken.for_appliance(appliance("a", on=v2))).revision == v2.revision  # stays put
    assert (await broken.for_appliance(appliance("new"))).loaded is None  # nothing to fall back on


def test_rollout_is_not_part_of_the_dictionary() -> None:
    with_rollout = load_entry("opn", 1, provider("1.0.0", 1)["spec"])
    spec = provider("1.0.0", 1)["spec"]
    del spec["rollout"]
    assert with_rollout.loaded is not None and with_rollout.revision == load_entry("opn", 1, spec).revision
    bad = provider("1.0.0", 1)["spec"]
    bad["rollout"] = {"maxUnavailable": "lots"}
    problems = load_entry("opn", 1, bad).problems
    assert [p.path for p in problems] == ["spec.rollout"] and "lots" in problems[0].message


def test_resync_request_counts_only_new_values_after_the_first_look() -> None:
    cache = ProviderCache()
    assert not cache.resync_requested("p", "")  # first look: a starting operator syncs all anyway
    assert not cache.resync_requested("p", "")
    assert cache.resync_requested("p", "1")
    assert not cache.resync_requested("p", "1")
    assert cache.resync_requested("p", "")  # removing the annotation is a new value too
    cache.forget("p")
    assert not cache.resync_requested("p", "2")
