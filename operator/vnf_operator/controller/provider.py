"""VnfProvider reconciler: validate the dictionary, report it, wake the appliances using it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from vnf_operator.engine.providers import provider_status
from vnf_operator.k8s.client import KubeError, NotFound

if TYPE_CHECKING:
    from vnf_operator.controller.state import OperatorState

log = logging.getLogger(__name__)


async def reconcile(state: OperatorState, name: str) -> None:
    body = state.cache.providers.get(name)
    users = list(state.cache.appliances_of_provider(name))
    if body is None:
        state.providers.forget(name)
        for key in users:
            state.queue.add(key)
        return
    entry = state.providers.resolve(body)
    status = provider_status(body, entry, appliances=len(users))
    if state.shard.leads_cluster_objects and _differs(body.get("status") or {}, status):
        try:
            await state.kube.patch_custom_status("vnfproviders", name, None, status)
        except NotFound:
            return
        except KubeError as exc:
            log.warning("could not patch status of VnfProvider %s: %s", name, exc)
            state.queue.add_after(("provider", "", name), 5.0)
            return
    if entry.changed:
        for key in users:
            state.queue.add(key)


def _differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(conds: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conds]

    return {k: v for k, v in old.items() if k != "conditions"} != {
        k: v for k, v in new.items() if k != "conditions"
    } or strip(old.get("conditions", [])) != strip(new.get("conditions", []))
