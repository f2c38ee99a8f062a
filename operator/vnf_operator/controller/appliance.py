"""VnfAppliance and VnfOperation reconcilers: call the engine, patch status once, post events."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vnf_operator.controller.finalizers import (
    add_finalizer,
    has_finalizer,
    is_deleting,
    remove_finalizer,
    retry_after,
)
from vnf_operator.controller.queue import jittered
from vnf_operator.core import revisions as rv
from vnf_operator.core.status import write_needed
from vnf_operator.engine.appliance import Event, Outcome
from vnf_operator.engine.operations import execute_operation, finalize_appliance
from vnf_operator.k8s.client import KubeError, NotFound

if TYPE_CHECKING:
    from vnf_operator.controller.state import OperatorState
    from vnf_operator.engine.providers import ProviderEntry

log = logging.getLogger(__name__)
ABANDON = "vnf.operators.dev/abandon"
CLEANUP_RETRY_SECONDS = 30.0


def _provider_entry(state: OperatorState, body: Mapping[str, Any]) -> ProviderEntry | None:
    name = ((body.get("spec") or {}).get("providerRef") or {}).get("name", "")
    pbody = state.cache.providers.get(name)
    if pbody is None:
        # Looked up before the provider is known (kopf may list appliances first at start-up):
        # the provider's reconcile wakes this appliance, instead of its resync much later.
        meta = body.get("metadata") or {}
        state.providers.wait_for(name, ("appliance", meta.get("namespace", ""), meta.get("name", "")))
        return None
    return state.providers.resolve(pbody)


async def reconcile(state: OperatorState, namespace: str, name: str) -> Outcome | None:
    body = state.cache.appliances.get((namespace, name))
    if body is None:
        return None
    key = ("appliance", namespace, name)
    if is_deleting(body):
        await _finalize_deleted(state, body)
        return None
    if not has_finalizer(body):
        try:
            body = await add_finalizer(state.kube, "vnfappliances", body)
        except NotFound:
            return None
        except KubeError as exc:
            delay, level = retry_after(exc)
            log.log(level, "could not add the finalizer to %s/%s, retrying: %s", namespace, name, exc)
            state.queue.add_after(key, delay)
            return None
        state.cache.remember_appliance(body)
    assert state.runtime is not None
    started = time.monotonic()
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
    current = body.get("status") or {}
    patch = dict(outcome.status)
    # Flux's convention: the handled request is recorded, so `kubectl annotate` gets an answer.
    request = str((meta.get("annotations") or {}).get(rv.RECONCILE_REQUESTED) or "")
    if request and current.get("lastHandledReconcileAt") != request:
        patch["lastHandledReconcileAt"] = request
    now = datetime.now(UTC)
    written = write_needed(current, patch, now=now, heartbeat_seconds=state.status_heartbeat)
    state.metrics.status_write("vnfappliance", written=written)
    if written:
        try:
            await state.kube.patch_custom_status("vnfappliances", meta["name"], meta["namespace"], patch)
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


async def _finalize_deleted(state: OperatorState, body: Mapping[str, Any]) -> None:
    """A deleted appliance: clean up the device, then let the apiserver remove the object."""
    meta = body["metadata"]
    key = ("appliance", meta["namespace"], meta["name"])
    if not has_finalizer(body):  # cleaned up already; other finalizers are not ours to wait for
        return
    if not await finalize(state, dict(body)):
        state.queue.add_after(key, CLEANUP_RETRY_SECONDS)
        return
    try:
        await remove_finalizer(state.kube, "vnfappliances", body)
    except NotFound:
        return
    except KubeError as exc:
        delay, level = retry_after(exc)
        log.log(level, "could not remove the finalizer of %s/%s, retrying: %s", key[1], key[2], exc)
        state.queue.add_after(key, delay)


async def finalize(state: OperatorState, body: dict[str, Any]) -> bool:
    """Deletion: remove managed items (policy Delete) unless an admin abandoned the device.
    False when the cleanup failed (it is retried; annotate ABANDON to give up)."""
    spec = body.get("spec") or {}
    ann = body["metadata"].get("annotations") or {}
    if spec.get("deletionPolicy", "Delete") == "Orphan" or ann.get(ABANDON) == "true" or spec.get("paused"):
        return True
    assert state.runtime is not None
    error = await finalize_appliance(state.runtime, body, _provider_entry(state, body))
    if error is not None:
        message = f"{error}; retrying in {CLEANUP_RETRY_SECONDS:.0f}s (annotate {ABANDON}=true to give up)"
        await post_event(state, body, Event("Warning", "CleanupFailed", message))
        log.warning(
            "cleanup of %s/%s failed: %s", body["metadata"]["namespace"], body["metadata"]["name"], message
        )
        return False
    await post_event(state, body, Event("Normal", "CleanedUp", "managed items removed from the device"))
    await state.runtime.connections.invalidate(body["metadata"]["namespace"], body["metadata"]["name"])
    return True


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
    # Hold the appliance's queue key: its connections are not released (controller/idle.py), nor
    # does a reconcile of it run, while the operation talks to the device.
    appliance_key = ("appliance", namespace, appliance_name)
    while True:
        async with state.queue.holding(appliance_key) as held:
            if held:
                result = await execute_operation(
                    state.runtime, body, appliance, _provider_entry(state, appliance) if appliance else None
                )
                state.idle.touch(namespace, appliance_name)
                break
        await asyncio.sleep(0.2)  # a reconcile of the appliance is running: wait for it
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
