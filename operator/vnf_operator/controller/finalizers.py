"""Our finalizer, managed by the operator itself rather than by kopf.

kopf decides per event whether an object needs its finalizer by matching its deletion handlers,
filters included. With sharding, a shard whose filter does not match an appliance removed the
finalizer the owning shard had just added, and the two shards fought over every object; and kopf
patched a last-handled-configuration annotation onto every object it handled. So kopf gets no
deletion handlers and a finalizer name nothing carries (`KOPF_FINALIZER`), which it never adds or
removes; the work queue adds and removes `FINALIZER` (the name kopf used to manage, so objects
created by older versions keep their cleanup): on appliances the owning shard, on providers shard 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from vnf_operator.k8s.client import GROUP, KubeClient, KubeError

FINALIZER = f"{GROUP}/cleanup"
KOPF_FINALIZER = f"{GROUP}/kopf-unused"
"""kopf's setting: a finalizer no object carries, so kopf never touches ours."""


def finalizers_of(body: Mapping[str, Any]) -> list[str]:
    return [str(f) for f in (body.get("metadata") or {}).get("finalizers") or []]


def has_finalizer(body: Mapping[str, Any]) -> bool:
    return FINALIZER in finalizers_of(body)


def is_deleting(body: Mapping[str, Any]) -> bool:
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def _patch(body: Mapping[str, Any], finalizers: list[str]) -> dict[str, Any]:
    """A merge patch of the whole list, guarded by the resourceVersion it was computed from: a
    concurrent change of the list (another controller's finalizer) makes it fail with 409, not lose
    that change."""
    meta: dict[str, Any] = {"finalizers": finalizers or None}
    rv = (body.get("metadata") or {}).get("resourceVersion")
    if rv:
        meta["resourceVersion"] = rv
    return {"metadata": meta}


async def add_finalizer(kube: KubeClient, plural: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Add ours (once in an object's life); returns the patched object."""
    meta = body["metadata"]
    patch = _patch(body, [*finalizers_of(body), FINALIZER])
    return await kube.patch_custom(plural, meta["name"], meta.get("namespace"), patch)


async def remove_finalizer(kube: KubeClient, plural: str, body: Mapping[str, Any]) -> None:
    meta = body["metadata"]
    patch = _patch(body, [f for f in finalizers_of(body) if f != FINALIZER])
    await kube.patch_custom(plural, meta["name"], meta.get("namespace"), patch)


def retry_after(exc: KubeError) -> tuple[float, int]:
    """Delay and log level after a failed finalizer patch: a conflict (409, the object changed since
    it was read) is routine and retried at once with the newer body; anything else is worth a warning."""
    return (1.0, logging.DEBUG) if exc.status == 409 else (5.0, logging.WARNING)
