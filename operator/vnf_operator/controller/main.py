"""kopf wiring: settings, watches and the work queue. No reconcile logic lives here.

kopf watches the three kinds (and Secrets, for credential rotation and the Secret cache) and
feeds keys into one work queue; a bounded pool of workers runs the reconcilers in `appliance.py`
and `provider.py`. kopf has only event handlers, so it never patches our objects (no finalizers,
no last-handled annotations): the queue manages our finalizer (`finalizers.py`) and deletion.

Run: `kopf run -m vnf_operator.controller.main --all-namespaces`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, cast

import kopf

from vnf_operator.controller import appliance as appliance_rc
from vnf_operator.controller import memory, webhook
from vnf_operator.controller import provider as provider_rc
from vnf_operator.controller.finalizers import (
    KOPF_FINALIZER,
    add_finalizer,
    has_finalizer,
    is_deleting,
    remove_finalizer,
    retry_after,
)
from vnf_operator.controller.state import OperatorState, secret_watch_enabled
from vnf_operator.k8s.client import GROUP, VERSION, KubeError, NotFound, decode_secret_data
from vnf_operator.logging import configure_logging, log_context

log = logging.getLogger(__name__)
STATE: OperatorState | None = None
WEBHOOK: Any = None  # the admission webhook's aiohttp runner, when VNF_WEBHOOK_PORT is set


class _NoDiffBase(kopf.DiffBaseStorage):
    """kopf deep-copies every event's body into a "diff base" for change handlers; we have none
    (only event handlers), so that copy was pure cost on every event of a large fleet."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _state() -> OperatorState:
    if STATE is None:  # kopf runs startup handlers before any event handler
        raise RuntimeError("operator state not initialised")
    return STATE


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, logger: Any, **_: Any) -> None:
    global STATE, WEBHOOK
    # kopf has no deletion handlers: a finalizer name no object carries keeps it from ever adding or
    # removing ours (finalizers.py); its annotations carry our group's name, should it write any.
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = _NoDiffBase()
    # Silent watch failures (kopf#585, #957): bound every watch request and reconnect.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    # kopf's own "handler succeeded" events would drown ours.
    settings.posting.level = 40  # logging.ERROR
    settings.scanning.disabled = True
    # kopf keeps a worker per object, holding its last raw body, until this long after its last
    # event (default 5 s): a burst of events on a large fleet held every body twice. Our handlers
    # only copy the body into the cache, so the worker can go at once.
    settings.batching.idle_timeout = float(os.environ.get("VNF_KOPF_IDLE_SECONDS", "0.5"))
    fmt = os.environ.get("VNF_LOG_FORMAT", "text")
    configure_logging(os.environ.get("VNF_LOG_LEVEL", "INFO"), "json" if fmt == "json" else "text")
    memory.limit_arenas()  # before any worker thread exists
    memory.small_tls_read_buffers()
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


PROVIDER_DELETION_RECHECK_SECONDS = 30.0
"""A provider in use is checked again this often (and at once when one of its appliances goes)."""

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
            if state.shard.leads_cluster_objects:
                await _provider_finalizer(state, name)
        elif kind == "operation":
            await appliance_rc.run_operation(state, namespace, name)
        else:
            try:
                outcome = await appliance_rc.reconcile(state, namespace, name)
            finally:
                state.idle.touch(namespace, name)
            if outcome is not None and outcome.transient_failure:
                rec.result = "requeue_after"


INTERN_MAX = 64
"""Strings up to this length in cached bodies are interned (keys, enum-like values, names)."""


def _slim(obj: Any) -> dict[str, Any]:
    """The body to keep: without managedFields (nothing reads them), its short strings interned.

    A thousand appliances of 20 rules each held ~29 MiB of bodies, more than half of it the same
    keys and values ("description", "pass", "wan"...) in a copy per body; interned, ~12 MiB.
    """
    body: dict[str, Any] = _interned({k: v for k, v in obj.items() if k != "metadata"})
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    body["metadata"] = _interned(meta)
    return body


def _interned(node: Any) -> Any:
    if isinstance(node, dict):
        return {sys.intern(k) if isinstance(k, str) else k: _interned(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_interned(v) for v in node]
    if isinstance(node, str) and len(node) <= INTERN_MAX:
        return sys.intern(node)
    return node


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
    body = _slim(event["object"])
    key = ("appliance", body["metadata"]["namespace"], body["metadata"]["name"])
    if event["type"] != "DELETED" and not state.shard.owns(key[1], key[2]):
        return
    if event["type"] == "DELETED":
        used = state.cache.forget_appliance(key[1], key[2])
        state.idle.forget(key[1], key[2])
        if state.secret_cache is not None:
            state.secret_cache.discard_unwanted(key[1], used)
        state.queue.forget(key)
        # A provider whose deletion waits for its last user may go now.
        provider = ((body.get("spec") or {}).get("providerRef") or {}).get("name", "")
        if is_deleting(state.cache.providers.get(provider) or {}):
            state.queue.add(("provider", "", provider))
        return
    if state.cache.remember_appliance(body):
        state.queue.add(key)


@kopf.on.event(GROUP, VERSION, "vnfoperations")
async def operation_event(event: kopf.RawEvent, **_: Any) -> None:
    state = _state()
    body = _slim(event["object"])
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


async def secret_event(event: kopf.RawEvent, **_: Any) -> None:
    """Keep the Secret cache current; re-reconcile the appliances that use a changed Secret."""
    state = _state()
    obj = event["object"]
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    cache = state.secret_cache
    if cache is not None:
        if not cache.tracks(namespace, name):  # no appliance uses it: not even decoded
            return
        data = None if event["type"] == "DELETED" else decode_secret_data(obj)
        if not cache.observe(namespace, name, data):
            return  # unchanged (a watch restart lists every Secret again)
    for key in state.cache.appliances_using_secret(namespace, name):
        state.queue.add(key)


if secret_watch_enabled():  # without it (no list/watch on Secrets) every reconcile reads them
    kopf.on.event("", "v1", "secrets")(secret_event)


async def _provider_finalizer(state: OperatorState, name: str) -> None:
    """Shard 0 only: a provider keeps our finalizer while appliances use it."""
    body = state.cache.providers.get(name)
    if body is None:
        return
    key = ("provider", "", name)
    try:
        if not is_deleting(body):
            if not has_finalizer(body):
                state.cache.providers[name] = await add_finalizer(state.kube, "vnfproviders", body)
            return
        if not has_finalizer(body):
            return
        # Ask the apiserver, not the cache: with sharding this replica sees only its own appliances.
        everyone = await state.kube.list_custom("vnfappliances")
        users = sorted(
            f"{a['metadata']['namespace']}/{a['metadata']['name']}"
            for a in everyone
            if ((a.get("spec") or {}).get("providerRef") or {}).get("name") == name
        )
        if users:
            shown = ", ".join(users[:5]) + (f" (+{len(users) - 5} more)" if len(users) > 5 else "")
            log.info(
                "VnfProvider %s is still used by %d appliance(s), its deletion waits: %s",
                name,
                len(users),
                shown,
            )
            state.queue.add_after(key, PROVIDER_DELETION_RECHECK_SECONDS)
            return
        await remove_finalizer(state.kube, "vnfproviders", body)
    except NotFound:
        return
    except KubeError as exc:
        delay, level = retry_after(exc)
        log.log(level, "finalizer of VnfProvider %s: %s, retrying", name, exc)
        state.queue.add_after(key, delay)


@kopf.on.probe(id="queue")
async def queue_probe(**_: Any) -> dict[str, int]:
    state = _state()
    return {"depth": state.queue.depth, "active": state.queue.active}


def main() -> None:  # pragma: no cover - convenience for `python -m`
    with contextlib.suppress(KeyboardInterrupt):
        kopf.run(clusterwide=os.environ.get("VNF_NAMESPACE") is None, namespaces=[])
