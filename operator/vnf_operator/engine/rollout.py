"""Provider dictionary history in ControllerRevisions (docs/lifecycle.md, "Provider versions").

Every dictionary revision of a VnfProvider the operator has seen is kept as a ControllerRevision
owned by the VnfProvider (garbage collected with it) in the operator's namespace, so appliances not
moved by a rollout yet, and appliances pinned to an older version, keep their dictionary across
operator restarts. At most `keep` per provider; a revision an appliance still uses is never pruned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vnf_operator.core import rollout as ro
from vnf_operator.engine.revisions import RevisionApi
from vnf_operator.k8s.client import KubeError

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "vnf-system"


def history_namespace(env: Mapping[str, str] | None = None) -> str:
    """Where provider history lives: VNF_PROVIDER_HISTORY_NAMESPACE, else the operator's own
    namespace (POD_NAMESPACE, from the downward API), else vnf-system."""
    env = os.environ if env is None else env
    return env.get("VNF_PROVIDER_HISTORY_NAMESPACE") or env.get("POD_NAMESPACE") or DEFAULT_NAMESPACE


@dataclass(frozen=True)
class StoredDictionary:
    item: ro.HistoryItem
    spec: dict[str, Any]


def _item(obj: Mapping[str, Any]) -> ro.HistoryItem | None:
    meta = obj.get("metadata") or {}
    ann = meta.get("annotations") or {}
    revision = ann.get(ro.REVISION_ANNOTATION)
    if not revision:
        return None
    data = obj.get("data") or {}
    return ro.HistoryItem(
        name=str(meta.get("name") or ""),
        revision=str(revision),
        version=str(ann.get(ro.VERSION_ANNOTATION) or ""),
        number=int(obj.get("revision") or 0),
        generation=int(data.get("generation") or 0) if isinstance(data, Mapping) else 0,
    )


class HistoryStore:
    """ControllerRevision I/O for provider dictionaries."""

    def __init__(self, api: RevisionApi, *, namespace: str, keep: int = ro.DEFAULT_HISTORY) -> None:
        self.api = api
        self.namespace = namespace
        self.keep = max(keep, 1)

    async def load(self, provider: str) -> list[StoredDictionary]:
        objs = await self.api.list_controller_revisions(
            self.namespace, label_selector=f"{ro.PROVIDER_LABEL}={provider}"
        )
        out: list[StoredDictionary] = []
        for obj in objs:
            item = _item(obj)
            data = obj.get("data") or {}
            if item is not None and isinstance(data, Mapping) and isinstance(data.get("spec"), Mapping):
                out.append(StoredDictionary(item, dict(data["spec"])))
        return sorted(out, key=lambda s: s.item.number)

    async def save(
        self,
        provider: Mapping[str, Any],
        *,
        revision: str,
        version: str,
        spec: Mapping[str, Any],
        number: int,
    ) -> ro.HistoryItem:
        """Store one dictionary revision (idempotent: an existing one is kept as it is)."""
        meta = provider["metadata"]
        name = ro.history_name(meta["name"], revision)
        generation = int(meta.get("generation") or 0)
        body = {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {ro.PROVIDER_LABEL: meta["name"], "app.kubernetes.io/managed-by": "vnf-operator"},
                "annotations": {ro.REVISION_ANNOTATION: revision, ro.VERSION_ANNOTATION: version},
                "ownerReferences": [
                    {
                        "apiVersion": "vnf.operators.dev/v1alpha1",
                        "kind": "VnfProvider",
                        "name": meta["name"],
                        "uid": meta.get("uid", ""),
                    }
                ],
            },
            "data": {"spec": ro.dictionary_of(spec), "generation": generation},
            "revision": number,
        }
        try:
            await self.api.create_controller_revision(self.namespace, body)
        except KubeError as exc:
            if exc.status != 409:
                raise
        return ro.HistoryItem(name, revision, version, number, generation)

    async def prune(self, history: Iterable[ro.HistoryItem], in_use: Iterable[str]) -> list[str]:
        """Delete the oldest revisions beyond `keep` that no appliance uses; their revisions."""
        gone: list[str] = []
        for item in ro.prune(list(history), self.keep, in_use):
            await self.api.delete_controller_revision(self.namespace, item.name)  # a 404 is ignored
            gone.append(item.revision)
        return gone
