"""VnfProvider reconciler: validate the dictionary, report it, roll it out to the appliances using it.

A changed dictionary reaches its appliances progressively (docs/lifecycle.md, "Provider versions"):
each pass admits the next batch allowed by `spec.rollout.maxUnavailable` (`core.rollout.plan`),
queues those appliances, and polls itself until every appliance is on the new revision. Appliances
not admitted yet keep resolving to the dictionary they are on (`ProviderEntry.for_appliance`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vnf_operator.core import revisions as rv
from vnf_operator.core import rollout as ro
from vnf_operator.engine.providers import ProviderEntry, provider_status
from vnf_operator.k8s.client import KubeError, NotFound

if TYPE_CHECKING:
    from vnf_operator.controller.state import OperatorState

log = logging.getLogger(__name__)

ROLLOUT_POLL = float(os.environ.get("VNF_ROLLOUT_POLL_SECONDS", "2"))
"""While a rollout is under way the provider is reconciled again this often (no API calls unless its
status changed: it reads the appliance cache)."""


async def reconcile(state: OperatorState, name: str) -> None:
    body = state.cache.providers.get(name)
    users = list(state.cache.appliances_of_provider(name))
    if body is None:
        state.providers.forget(name)
        for key in users:
            state.queue.add(key)
        return
    entry = state.providers.resolve(body)
    changed = state.providers.announce(name, entry.generation)
    for key in state.providers.waiting(name):
        state.queue.add(key)
    request = str(((body.get("metadata") or {}).get("annotations") or {}).get(rv.RECONCILE_REQUESTED) or "")
    if state.providers.resync_requested(name, request):
        # One annotation re-checks a whole fleet (after an out-of-band change, or to measure it).
        log.info("VnfProvider %s: reconcile of its %d appliance(s) requested", name, len(users))
        for key in users:
            state.queue.add(key)
    rollout: dict[str, Any] | None = None
    paused = ""
    in_progress = False
    if entry.loaded is not None and entry.history is not None:
        try:
            rollout, paused, in_progress, others = await _roll_out(state, body, entry)
        except KubeError as exc:
            log.warning("rollout of VnfProvider %s: cannot store its history, retrying: %s", name, exc)
            state.queue.add_after(("provider", "", name), 5.0)
            return
        if changed:  # appliances outside the rollout (new, pinned) pick the change up now
            for key in others:
                state.queue.add(key)
    elif changed:
        for key in users:
            state.queue.add(key)
    status = provider_status(body, entry, appliances=len(users), rollout=rollout, paused=paused)
    if state.shard.leads_cluster_objects and _differs(body.get("status") or {}, status):
        try:
            await state.kube.patch_custom_status("vnfproviders", name, None, status)
        except NotFound:
            return
        except KubeError as exc:
            log.warning("could not patch status of VnfProvider %s: %s", name, exc)
            state.queue.add_after(("provider", "", name), 5.0)
            return
    if in_progress:
        state.queue.add_after(("provider", "", name), ROLLOUT_POLL)


async def _roll_out(
    state: OperatorState, body: Mapping[str, Any], entry: ProviderEntry
) -> tuple[dict[str, Any], str, bool, list[tuple[str, str, str]]]:
    """One rollout pass: (status.rollout, paused message, still in progress, appliances outside it)."""
    history = entry.history
    assert history is not None
    await history.ensure_loaded()
    stored = {i.revision for i in history.items()}
    members: list[ro.Member] = []
    others: list[tuple[str, str, str]] = []
    in_use: set[str] = set()
    pinned = 0
    for key in state.cache.appliances_of_provider(entry.name):
        appliance = state.cache.appliances.get((key[1], key[2])) or {}
        on = history.revision_on(appliance, entry)
        if on:
            in_use.add(on)
        pin = str(((appliance.get("spec") or {}).get("providerRef") or {}).get("version") or "")
        if pin and not ro.version_matches(pin, entry.version):
            pinned += 1
            others.append(key)
            continue
        if on != entry.revision and on not in stored:
            others.append(key)  # new, or on a dictionary no longer kept: takes the current one
            continue
        members.append(_member(f"{key[1]}/{key[2]}", on, appliance))
    await history.persist(body, entry, in_use)

    budget = ro.max_unavailable(body.get("spec") or {}, len(members))
    admitted = history.admitted.setdefault(entry.revision, set())
    ack = ro.Acknowledgement.from_status(body.get("status") or {})
    first = ro.plan(entry.revision, members, admitted=admitted, budget=budget, acknowledged=ack.appliances)
    token = str(((body.get("metadata") or {}).get("annotations") or {}).get(ro.RESUME_ANNOTATION) or "")
    ack = ack.update(token, entry.revision, first.failed)
    result = ro.plan(entry.revision, members, admitted=admitted, budget=budget, acknowledged=ack.appliances)
    for member in result.admit:
        namespace, _, appliance_name = member.partition("/")
        admitted.add(member)
        state.queue.add(("appliance", namespace, appliance_name))
    if result.admit:
        log.info(
            "VnfProvider %s: moving %s to version %s (revision %s)",
            entry.name,
            ", ".join(result.admit),
            entry.version,
            entry.revision,
        )
    rollout = {
        **result.status(),
        "version": entry.version,
        "pinned": pinned,
        "paused": result.paused,
        "acknowledged": ack.as_status(),
    }
    paused = ro.paused_message(result, entry.version) if result.paused else ""
    return rollout, paused, not result.complete, others


def _member(key: str, on: str, appliance: Mapping[str, Any]) -> ro.Member:
    generation = (appliance.get("metadata") or {}).get("generation")
    status = appliance.get("status") or {}
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    settled = status.get("observedGeneration") == generation
    return ro.Member(key, on, ready=settled and ready.get("status") == "True", settled=settled)


def _differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(conds: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conds]

    return {k: v for k, v in old.items() if k != "conditions"} != {
        k: v for k, v in new.items() if k != "conditions"
    } or strip(old.get("conditions", [])) != strip(new.get("conditions", []))
