"""kopf wiring: settings, watches and the work queue. No reconcile logic lives here.

kopf watches the three kinds (and Secrets, for credential rotation) and feeds keys into one
work queue; a bounded pool of workers runs the reconcilers in `appliance.py` and `provider.py`.
Deletion goes through kopf's finalizer machinery (`on.delete`).

Run: `kopf run -m vnf_operator.controller.main --all-namespaces`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import kopf

from vnf_operator.controller import appliance as appliance_rc
from vnf_operator.controller import provider as provider_rc
from vnf_operator.controller import webhook
from vnf_operator.controller.state import OperatorState
from vnf_operator.k8s.client import GROUP, VERSION
from vnf_operator.logging import configure_logging, log_context

STATE: OperatorState | None = None
WEBHOOK: Any = None  # the admission webhook's aiohttp runner, when VNF_WEBHOOK_PORT is set


def _state() -> OperatorState:
    if STATE is None:  # kopf runs startup handlers before any event handler
        raise RuntimeError("operator state not initialised")
    return STATE


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, logger: Any, **_: Any) -> None:
    global STATE, WEBHOOK
    # Our finalizer and annotations carry our group's name, not kopf's.
    settings.persistence.finalizer = f"{GROUP}/cleanup"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled")
    # Silent watch failures (kopf#585, #957): bound every watch request and reconnect.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    # kopf's own "handler succeeded" events would drown ours.
    settings.posting.level = 40  # logging.ERROR
    settings.scanning.disabled = True
    fmt = os.environ.get("VNF_LOG_FORMAT", "text")
    configure_logging(os.environ.get("VNF_LOG_LEVEL", "INFO"), "json" if fmt == "json" else "text")
    STATE = OperatorState.from_env()
    await STATE.start()
    STATE.tasks.append(asyncio.create_task(STATE.queue.run(STATE.workers, _reconcile)))
    WEBHOOK = await webhook.start_from_env(STATE.cache.providers, STATE.providers)
    logger.info(
        "vnf-operator started with %d workers, shard %d/%d",
        STATE.workers,
        STATE.shard.index,
        STATE.shard.count,
    )


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if WEBHOOK is not None:
        await WEBHOOK.cleanup()
    if STATE is not None:
        await STATE.stop()


CONTROLLERS = {"provider": "vnfprovider", "operation": "vnfoperation", "appliance": "vnfappliance"}


async def _reconcile(key: tuple[str, str, str]) -> None:
    kind, namespace, name = key
    state = _state()
    with (
        state.metrics.reconcile(CONTROLLERS[kind]) as rec,
        log_context(namespace=namespace or None, appliance=name if kind == "appliance" else None),
    ):
        if kind == "provider":
            await provider_rc.reconcile(state, name)
        elif kind == "operation":
            await appliance_rc.run_operation(state, namespace, name)
        else:
            outcome = await appliance_rc.reconcile(state, namespace, name)
            if outcome is not None and outcome.transient_failure:
                rec.result = "requeue_after"


@kopf.on.event(GROUP, VERSION, "vnfproviders")
async def provider_event(event: kopf.RawEvent, **_: Any) -> None:
    state = _state()
    body: dict[str, Any] = dict(event["object"])
    name = body["metadata"]["name"]
    if event["type"] == "DELETED":
        state.cache.providers.pop(name, None)
    else:
        state.cache.providers[name] = body
    state.queue.add(("provider", "", name))


@kopf.on.event(GROUP, VERSION, "vnfappliances")
async def appliance_event(event: kopf.RawEvent, **_: Any) -> None:
    state = _state()
    body: dict[str, Any] = dict(event["object"])
    key = ("appliance", body["metadata"]["namespace"], body["metadata"]["name"])
    if not state.shard.owns(key[1], key[2]):
        return
    if event["type"] == "DELETED":
        state.cache.forget_appliance(key[1], key[2])
        state.queue.forget(key)
        return
    if state.cache.remember_appliance(body):
        state.queue.add(key)


@kopf.on.event(GROUP, VERSION, "vnfoperations")
async def operation_event(event: kopf.RawEvent, **_: Any) -> None:
    state = _state()
    body: dict[str, Any] = dict(event["object"])
    if event["type"] == "DELETED":
        return
    phase = (body.get("status") or {}).get("phase")
    key = ("operation", body["metadata"]["namespace"], body["metadata"]["name"])
    target = ((body.get("spec") or {}).get("applianceRef") or {}).get("name", "")
    if not state.shard.owns(key[1], target):
        return
    state.cache.operations[(key[1], key[2])] = body
    if phase in (None, "Pending") or appliance_rc.operation_expired(body):
        state.queue.add(key)


@kopf.on.event("", "v1", "secrets")
async def secret_event(event: kopf.RawEvent, **_: Any) -> None:
    """Credential rotation: re-reconcile the appliances that reference a changed Secret."""
    state = _state()
    meta = event["object"]["metadata"]
    for key in state.cache.appliances_using_secret(meta["namespace"], meta["name"]):
        state.queue.add(key)


def _owned(name: str, namespace: str | None, **_: Any) -> bool:
    return STATE is None or STATE.shard.owns(namespace or "", name)


@kopf.on.delete(GROUP, VERSION, "vnfappliances", when=_owned)
async def appliance_deleted(body: kopf.Body, **_: Any) -> None:
    await appliance_rc.finalize(_state(), dict(body))


def _leader(**_: Any) -> bool:
    return STATE is None or STATE.shard.leads_cluster_objects


@kopf.on.delete(GROUP, VERSION, "vnfproviders", when=_leader)
async def provider_deleted(name: str, **_: Any) -> None:
    """A provider in use is not removed from under its appliances: deletion waits until none uses it."""
    # Ask the apiserver, not the cache: with sharding this replica sees only its own appliances.
    everyone = await _state().kube.list_custom("vnfappliances")
    users = sorted(
        f"{a['metadata']['namespace']}/{a['metadata']['name']}"
        for a in everyone
        if ((a.get("spec") or {}).get("providerRef") or {}).get("name") == name
    )
    if users:
        shown = ", ".join(users[:5]) + (f" (+{len(users) - 5} more)" if len(users) > 5 else "")
        raise kopf.TemporaryError(
            f"VnfProvider {name} is still used by {len(users)} appliance(s): {shown}", delay=30
        )


@kopf.on.probe(id="queue")
async def queue_probe(**_: Any) -> dict[str, int]:
    state = _state()
    return {"depth": state.queue.depth, "active": state.queue.active}


def main() -> None:  # pragma: no cover - convenience for `python -m`
    with contextlib.suppress(KeyboardInterrupt):
        kopf.run(clusterwide=os.environ.get("VNF_NAMESPACE") is None, namespaces=[])
