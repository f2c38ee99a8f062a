"""Revision history (ControllerRevisions) and device backups (Secrets) of appliances.

`RevisionStore` keeps one ControllerRevision per desired state an appliance applied in sync, owned by
the appliance, at most `history` of them (the current and last good revision are never pruned). It
remembers what it listed per appliance: one replica owns an appliance (sharding), and every write
goes through the store, so a LIST per reconcile is not needed. The data of a revision is read only
when it is applied again (rollback).

`BackupStore` keeps device configuration backups in Secrets owned by the appliance, in a fixed
number of slots (the oldest is overwritten), and restores one on request.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from vnf_operator.core import revisions as rv
from vnf_operator.core.errors import VnfError
from vnf_operator.engine.secrets import SecretReader
from vnf_operator.engine.session import Session
from vnf_operator.k8s.client import KubeError, NotFound

log = logging.getLogger(__name__)


class RevisionError(VnfError):
    """The revision history could not be read or written."""


@runtime_checkable
class RevisionApi(Protocol):
    async def list_controller_revisions(
        self, namespace: str, *, label_selector: str = ""
    ) -> list[dict[str, Any]]: ...

    async def get_controller_revision(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def create_controller_revision(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    async def patch_controller_revision(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def delete_controller_revision(self, namespace: str, name: str) -> None: ...


@runtime_checkable
class BackupApi(SecretReader, Protocol):
    """What backups need of the Kubernetes client: Secret reads and writes, and listing by label."""

    async def list_secrets(self, namespace: str, *, label_selector: str = "") -> list[dict[str, Any]]: ...

    async def patch_custom(
        self, plural: str, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def delete_secret(self, namespace: str, name: str) -> None: ...


def _uid(appliance: Mapping[str, Any]) -> str:
    return str((appliance.get("metadata") or {}).get("uid") or "")


class RevisionStore:
    def __init__(self, api: RevisionApi, *, history: int = rv.DEFAULT_HISTORY) -> None:
        self.api = api
        self.history = max(history, 1)
        self._known: dict[str, list[rv.RevisionInfo]] = {}

    def forget(self, appliance: Mapping[str, Any]) -> None:
        self._known.pop(_uid(appliance), None)

    async def list(self, appliance: Mapping[str, Any], *, refresh: bool = False) -> list[rv.RevisionInfo]:
        uid = _uid(appliance)
        if not refresh and uid in self._known:
            return list(self._known[uid])
        ns = appliance["metadata"]["namespace"]
        try:
            objs = await self.api.list_controller_revisions(
                ns, label_selector=f"{rv.APPLIANCE_UID_LABEL}={uid}"
            )
        except KubeError as exc:
            raise RevisionError(
                f"cannot list the revisions of {ns}/{appliance['metadata']['name']}: {exc}"
            ) from None
        found = [i for i in (rv.RevisionInfo.from_object(o) for o in objs) if i is not None]
        self._known[uid] = sorted(found, key=lambda r: r.number)
        return list(self._known[uid])

    def _remember(self, appliance: Mapping[str, Any], info: rv.RevisionInfo) -> None:
        known = [r for r in self._known.get(_uid(appliance), []) if r.name != info.name]
        self._known[_uid(appliance)] = sorted([*known, info], key=lambda r: r.number)

    async def load(self, appliance: Mapping[str, Any], rev: rv.RevisionInfo) -> dict[str, Any]:
        """The desired state a revision recorded."""
        ns = appliance["metadata"]["namespace"]
        try:
            obj = await self.api.get_controller_revision(ns, rev.name)
        except NotFound:
            self.forget(appliance)
            raise RevisionError(
                f"revision {rev.number} (ControllerRevision {ns}/{rev.name}) is gone"
            ) from None
        except KubeError as exc:
            raise RevisionError(f"cannot read revision {rev.number}: {exc}") from None
        data = obj.get("data")
        if not isinstance(data, dict):
            raise RevisionError(f"revision {rev.number} (ControllerRevision {ns}/{rev.name}) has no data")
        return rv.desired_state(data)

    async def record(
        self, appliance: Mapping[str, Any], state: Mapping[str, Any], digest: str, *, keep: Iterable[int] = ()
    ) -> rv.RevisionInfo:
        """The revision of `state`, created when new (then old ones are pruned); a failure mark on an
        existing one is cleared (it synced and passed the health gate this time)."""
        ns = appliance["metadata"]["namespace"]
        revisions = await self.list(appliance)
        existing = rv.by_hash(revisions, digest)
        try:
            if existing is not None:
                if existing.failed:
                    existing = await self._annotate(appliance, existing, _cleared())
                return existing
            body = rv.controller_revision(appliance, state, digest, rv.next_number(revisions))
            try:
                created = await self.api.create_controller_revision(ns, body)
            except KubeError as exc:
                if exc.status != 409:
                    raise
                # Left over from an earlier appliance of the same name, or our cache is stale.
                other = await self.api.get_controller_revision(ns, body["metadata"]["name"])
                owners = (other.get("metadata") or {}).get("ownerReferences") or []
                if any(o.get("uid") == _uid(appliance) for o in owners):
                    await self.list(appliance, refresh=True)
                    info = rv.RevisionInfo.from_object(other)
                    if info is None:
                        raise
                    self._remember(appliance, info)
                    return info
                await self.api.delete_controller_revision(ns, body["metadata"]["name"])
                created = await self.api.create_controller_revision(ns, body)
            info = rv.RevisionInfo.from_object(created) or rv.RevisionInfo(
                body["metadata"]["name"], body["revision"], digest
            )
            self._remember(appliance, info)
            await self._prune(appliance, keep={*keep, info.number})
            return info
        except KubeError as exc:
            raise RevisionError(
                f"cannot record the revision of {ns}/{appliance['metadata']['name']}: {exc}"
            ) from None

    async def mark_failed(
        self, appliance: Mapping[str, Any], rev: rv.RevisionInfo, message: str, request: str
    ) -> rv.RevisionInfo:
        gen = int(appliance["metadata"].get("generation") or 0)
        marks: dict[str, str | None] = {
            rv.FAILED_ANNOTATION: message[:2000] or "unhealthy after apply",
            rv.FAILED_GENERATION_ANNOTATION: str(gen),
            rv.FAILED_REQUEST_ANNOTATION: request,
        }
        try:
            return await self._annotate(appliance, rev, marks)
        except KubeError as exc:
            raise RevisionError(f"cannot mark revision {rev.number} as failed: {exc}") from None

    async def _annotate(
        self, appliance: Mapping[str, Any], rev: rv.RevisionInfo, annotations: Mapping[str, str | None]
    ) -> rv.RevisionInfo:
        ns = appliance["metadata"]["namespace"]
        obj = await self.api.patch_controller_revision(
            ns, rev.name, {"metadata": {"annotations": dict(annotations)}}
        )
        info = rv.RevisionInfo.from_object(obj) or rev
        self._remember(appliance, info)
        return info

    async def _prune(self, appliance: Mapping[str, Any], keep: Iterable[int]) -> None:
        ns = appliance["metadata"]["namespace"]
        revisions = await self.list(appliance)
        doomed = rv.prune(revisions, self.history, keep)
        for rev in doomed:
            await self.api.delete_controller_revision(ns, rev.name)
        gone = {d.name for d in doomed}
        self._known[_uid(appliance)] = [r for r in revisions if r.name not in gone]


def _cleared() -> dict[str, str | None]:
    return {
        rv.FAILED_ANNOTATION: None,
        rv.FAILED_GENERATION_ANNOTATION: None,
        rv.FAILED_REQUEST_ANNOTATION: None,
    }


# --------------------------------------------------------------------------- backups

BACKUP_KEY = "config"
META_KEY = "meta"
"""JSON {created, reason, generation}: one value, so that its parts (a timestamp, a reason shown in
status) are not themselves Secret values that any scan of status or events would flag."""
BACKUP_OPERATION = "backup"
RESTORE_OPERATION = "restore"


def backup_service(session: Session, operation: str) -> str | None:
    """The service of the provider that declares the custom operation `backup` / `restore`."""
    for name, svc in session.dictionary.services.items():
        if operation in svc.operations:
            return name
    return None


def _backup_meta(data: Mapping[str, Any]) -> dict[str, Any]:
    """created/reason/generation of a backup Secret (`data` still base64)."""
    try:
        info = json.loads(base64.b64decode(data.get(META_KEY, "")).decode(errors="replace") or "{}")
    except ValueError:
        info = {}
    return info if isinstance(info, dict) else {}


class BackupStore:
    def __init__(self, api: BackupApi, *, keep: int = rv.DEFAULT_BACKUPS) -> None:
        self.api = api
        self.keep = max(keep, 1)

    async def list(self, appliance: Mapping[str, Any]) -> list[rv.BackupInfo]:
        meta = appliance["metadata"]
        objs = await self.api.list_secrets(
            meta["namespace"],
            label_selector=f"{rv.APPLIANCE_UID_LABEL}={_uid(appliance)},{rv.KIND_LABEL}=backup",
        )
        out: list[rv.BackupInfo] = []
        for o in objs:
            m = o.get("metadata") or {}
            data = o.get("data") or {}
            info = _backup_meta(data)
            created, reason = str(info.get("created") or ""), str(info.get("reason") or "")
            name = str(m.get("name", ""))
            out.append(rv.BackupInfo(name, created or str(m.get("creationTimestamp", "")), reason))
        return out

    async def prune(self, appliance: Mapping[str, Any], keep: int) -> Sequence[rv.BackupInfo]:
        """Delete the backups beyond the newest `keep`; the ones left, newest first. Slots keep the
        count bounded by themselves; this only matters after `keep` went down (it needs the
        `delete` verb on Secrets: without it the extra backups stay, with a warning)."""
        ns = appliance["metadata"]["namespace"]
        backups = await self.list(appliance)
        gone: set[str] = set()
        for b in rv.backups_to_prune(backups, keep):
            try:
                await self.api.delete_secret(ns, b.name)  # a Secret already gone counts as deleted
            except KubeError as exc:
                log.warning("cannot delete backup %s/%s beyond keep=%d: %s", ns, b.name, keep, exc)
                continue
            gone.add(b.name)
        return rv.newest_first(b for b in backups if b.name not in gone)

    async def take(
        self, session: Session, appliance: Mapping[str, Any], why: str, *, keep: int | None = None
    ) -> str | None:
        """Download the device configuration with the provider's `backup` operation and store it,
        then prune to the newest `keep` (default: the store's). None when the provider declares no
        backup. The backup is secret material: never logged."""
        keep = max(keep or self.keep, 1)
        service = backup_service(session, BACKUP_OPERATION)
        if service is None:
            return None
        parsed = await session.run(service, BACKUP_OPERATION)
        config = parsed.captured.get(BACKUP_KEY) if parsed.captured else None
        if config is None:
            config = parsed.data
        if not isinstance(config, str) or not config.strip():
            raise RevisionError(f"services.{service}.operations.backup returned no configuration text")
        meta = appliance["metadata"]
        name = rv.backup_slot(meta["name"], await self.list(appliance), keep)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        await self.api.apply_secret(
            meta["namespace"],
            name,
            {
                BACKUP_KEY: config,
                META_KEY: json.dumps(
                    {"created": now, "reason": why, "generation": int(meta.get("generation") or 0)},
                    sort_keys=True,
                ),
            },
            owner=rv.owner_reference(appliance),
            labels={
                rv.APPLIANCE_UID_LABEL: _uid(appliance),
                rv.APPLIANCE_LABEL: rv.label_value(meta["name"]),
                rv.KIND_LABEL: "backup",
                "app.kubernetes.io/managed-by": "vnf-operator",
            },
        )
        await self.prune(appliance, keep)
        return name

    async def restore(self, session: Session, appliance: Mapping[str, Any], name: str) -> str:
        """Send backup `name` to the device with the provider's `restore` operation (`params.config`)."""
        service = backup_service(session, RESTORE_OPERATION)
        if service is None:
            raise RevisionError(
                f"provider {session.provider.name} declares no `restore` operation: cannot restore {name}"
            )
        known = {b.name for b in await self.list(appliance)}
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise RevisionError(f"backup {name!r} is not a backup of this appliance (backups: {have})")
        data = await self.api.get_secret(appliance["metadata"]["namespace"], name)
        await session.run(service, RESTORE_OPERATION, params={BACKUP_KEY: data.get(BACKUP_KEY, "")})
        return name

    async def done(self, appliance: Mapping[str, Any]) -> None:
        """The restore request is handled: remove its annotation (it is a one-shot request)."""
        meta = appliance["metadata"]
        patch = {"metadata": {"annotations": {rv.RESTORE_BACKUP: None}}}
        try:
            await self.api.patch_custom("vnfappliances", meta["name"], meta["namespace"], patch)
        except KubeError as exc:
            log.warning("could not remove annotation %s: %s", rv.RESTORE_BACKUP, exc)
