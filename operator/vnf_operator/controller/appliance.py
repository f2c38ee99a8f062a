"""VnfAppliance and VnfOperation reconcilers: call the engine, patch status once, post events."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import kopf

from vnf_operator.controller.queue import jittered
from vnf_operator.engine.appliance import Event, Outcome
from vnf_operator.engine.operations import execute_operation, finalize_appliance
from vnf_operator.k8s.client import KubeError, NotFound

if TYPE_CHECKING:
    from vnf_operator.controller.state import OperatorState
    from vnf_operator.engine.providers import ProviderEntry

log = logging.getLogger(__name__)
ABANDON = "vnf.operators.dev/abandon"


def _provider_entry(state: OperatorState, body: Mapping[str, Any]) -> ProviderEntry | None:
    name = ((body.get("spec") or {}).get("providerRef") or {}).get("name", "")
    pbody = state.cache.providers.get(name)
    return state.providers.resolve(pbody) if pbody is not None else None


async def reconcile(state: OperatorState, namespace: str, name: str) -> Outcome | None:
    body = state.cache.appliances.get((namespace, name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    assert state.runtime is not None
    started = time.monotonic()
    key = ("appliance", namespace, name)
    try:
        outcome = await state.runtime.reconciler.reconcile(body, _provider_entry(state, body))
    except KubeError as exc:  # the apiserver is unavailable (reading a Secret): not a bug, retry
        log.warning("reconcile of %s/%s needs the apiserver, retrying: %s", namespace, name, exc)
        state.queue.add_after(key, 5.0)
        return None
    await _write(state, body, outcome)
    if outcome.requeue_after is not None:
        delay = outcome.requeue_after if outcome.transient_failure else jittered(outcome.requeue_after)
        state.queue.add_after(key, delay)
    log.debug(
        "reconciled %s/%s in %.3fs (shard %d)", namespace, name, time.monotonic() - started, state.shard.index
    )
    return outcome


async def _write(state: OperatorState, body: Mapping[str, Any], outcome: Outcome) -> None:
    meta = body["metadata"]
    try:
        await state.kube.patch_custom_status("vnfappliances", meta["name"], meta["namespace"], outcome.status)
    except NotFound:
        return
    except KubeError as exc:
        log.warning("status patch of %s/%s failed, retrying: %s", meta["namespace"], meta["name"], exc)
        # The device work is done; without this the status would wait for the next resync.
        state.queue.add_after(("appliance", meta["namespace"], meta["name"]), 5.0)
    for ev in outcome.events:
        await post_event(state, body, ev)


async def post_event(state: OperatorState, body: Mapping[str, Any], ev: Event) -> None:
    meta = body["metadata"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": body.get("apiVersion", "vnf.operators.dev/v1alpha1"),
            "kind": body.get("kind", "VnfAppliance"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": ev.type,
        "reason": ev.reason,
        "message": ev.message[:1000],
        "source": {"component": "vnf-operator"},
        "reportingComponent": "vnf-operator",
        "reportingInstance": "vnf-operator",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await state.kube.create_event(meta["namespace"], event)
    except KubeError as exc:
        log.warning("could not post event %s: %s", ev.reason, exc)


async def finalize(state: OperatorState, body: dict[str, Any]) -> None:
    """Deletion: remove managed items (policy Delete) unless an admin abandoned the device."""
    spec = body.get("spec") or {}
    ann = body["metadata"].get("annotations") or {}
    if spec.get("deletionPolicy", "Delete") == "Orphan" or ann.get(ABANDON) == "true" or spec.get("paused"):
        return
    assert state.runtime is not None
    error = await finalize_appliance(state.runtime, body, _provider_entry(state, body))
    if error is not None:
        await post_event(state, body, Event("Warning", "CleanupFailed", error))
        raise kopf.TemporaryError(
            f"cleanup failed, retrying (annotate {ABANDON}=true to give up): {error}", delay=30
        )
    await post_event(state, body, Event("Normal", "CleanedUp", "managed items removed from the device"))
    await state.runtime.connections.invalidate(body["metadata"]["namespace"], body["metadata"]["name"])


def operation_expired(body: Mapping[str, Any]) -> bool:
    status = body.get("status") or {}
    ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
    done = status.get("completionTime")
    if ttl is None or not done:
        return False
    finished = time.mktime(time.strptime(done, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    return time.time() >= finished + float(ttl)


async def run_operation(state: OperatorState, namespace: str, name: str) -> None:
    body = state.cache.operations.get((namespace, name))
    if body is None:
        return
    status = body.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        if operation_expired(body):
            await state.kube.delete_custom("vnfoperations", name, namespace)
        else:
            ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
            if ttl is not None:
                state.queue.add_after(("operation", namespace, name), float(ttl) + 1)
        return
    appliance_name = ((body.get("spec") or {}).get("applianceRef") or {}).get("name", "")
    appliance = state.cache.appliances.get((namespace, appliance_name))
    assert state.runtime is not None
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        await state.kube.patch_custom_status(
            "vnfoperations", name, namespace, {"phase": "Running", "startTime": now}
        )
    except KubeError as exc:
        log.warning("could not mark VnfOperation %s/%s running: %s", namespace, name, exc)
        return
    result = await execute_operation(
        state.runtime, body, appliance, _provider_entry(state, appliance) if appliance else None
    )
    result["startTime"] = now
    result["completionTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["observedGeneration"] = int(body["metadata"].get("generation") or 0)
    try:
        await state.kube.patch_custom_status("vnfoperations", name, namespace, result)
    except NotFound:
        return
    except KubeError as exc:
        log.warning("could not record the result of VnfOperation %s/%s: %s", namespace, name, exc)
        return
    ttl = (body.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is not None:
        state.queue.add_after(("operation", namespace, name), float(ttl) + 1)
