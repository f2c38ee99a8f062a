"""What the operator process holds between events: caches, the queue, clients, settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vnf_operator.controller.idle import DEFAULT_IDLE_SECONDS, IdleConnections
from vnf_operator.controller.queue import WorkQueue
from vnf_operator.controller.sharding import Shard
from vnf_operator.core.rollout import DEFAULT_HISTORY as DEFAULT_PROVIDER_HISTORY
from vnf_operator.engine.providers import ProviderCache
from vnf_operator.engine.rollout import HistoryStore, history_namespace
from vnf_operator.engine.runtime import Runtime
from vnf_operator.engine.secrets import OUTPUTS_SUFFIX, SecretCache
from vnf_operator.k8s.client import KubeClient, load_credentials
from vnf_operator.metrics import Metrics, conditions_by_type, default_metrics, start_metrics_server

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
ANNOTATION_PREFIX = "vnf.operators.dev/"
# Annotations that change what a reconcile does; any other metadata change is not a trigger.
TRIGGER_ANNOTATIONS = (
    f"{ANNOTATION_PREFIX}reconcile-requested",
    f"{ANNOTATION_PREFIX}rollback-to",
    f"{ANNOTATION_PREFIX}abandon",
    f"{ANNOTATION_PREFIX}restore-backup",
)


def _trigger_signature(body: Mapping[str, Any]) -> tuple[Any, ...]:
    meta = body.get("metadata", {})
    ann = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        meta.get("deletionTimestamp"),
        tuple(ann.get(a) for a in TRIGGER_ANNOTATIONS),
    )


def secret_names(spec: Mapping[str, Any]) -> set[str]:
    """Every Secret an appliance spec references (credentials, bootstrap, CA, host keys, reach)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if (k.endswith("SecretRef") or k.endswith("SecretKeyRef")) and isinstance(v, Mapping):
                    if isinstance(v.get("name"), str):
                        names.add(v["name"])
                elif k != "services":
                    walk(v)

    walk(spec)
    return names


def secret_watch_enabled() -> bool:
    """`VNF_SECRET_WATCH=false`: no list/watch of Secrets (RBAC `get` only), so no Secret cache;
    rotation is then noticed at the next resync (docs/security.md)."""
    return os.environ.get("VNF_SECRET_WATCH", "true").strip().lower() not in ("0", "false", "no", "off")


@dataclass
class Cache:
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    appliances: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    operations: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _signatures: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    _secrets: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _secret_users: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    """(namespace, Secret) → the appliances referencing it: rotation and the Secret cache."""

    def remember_appliance(self, body: Mapping[str, Any]) -> bool:
        """Store the latest body; True when the change needs a reconcile (not our own status patch)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self.appliances[key] = dict(body)
        self._index_secrets(key, secret_names(body.get("spec") or {}))
        sig = _trigger_signature(body)
        changed = self._signatures.get(key) != sig
        self._signatures[key] = sig
        return changed

    def _index_secrets(self, key: tuple[str, str], names: set[str]) -> None:
        old = self._secrets.get(key, set())
        if old == names:
            return
        for secret in old - names:
            users = self._secret_users.get((key[0], secret), set())
            users.discard(key[1])
            if not users:
                self._secret_users.pop((key[0], secret), None)
        for secret in names - old:
            self._secret_users.setdefault((key[0], secret), set()).add(key[1])
        self._secrets[key] = names

    def forget_appliance(self, namespace: str, name: str) -> set[str]:
        """Forget it; returns the Secrets it used (its bootstrap outputs included)."""
        used = self._secrets.get((namespace, name), set()) | {name + OUTPUTS_SUFFIX}
        self._index_secrets((namespace, name), set())
        for d in (self.appliances, self._signatures, self._secrets):
            d.pop((namespace, name), None)
        return used

    def wants_secret(self, namespace: str, secret: str) -> bool:
        """An appliance references it, or it holds an appliance's bootstrap outputs."""
        if (namespace, secret) in self._secret_users:
            return True
        owner = secret.removesuffix(OUTPUTS_SUFFIX)
        return owner != secret and (namespace, owner) in self.appliances

    def appliances_of_provider(self, provider: str) -> Iterator[Key]:
        for (ns, name), body in self.appliances.items():
            if ((body.get("spec") or {}).get("providerRef") or {}).get("name") == provider:
                yield ("appliance", ns, name)

    def appliances_using_secret(self, namespace: str, secret: str) -> Iterator[Key]:
        for name in sorted(self._secret_users.get((namespace, secret), ())):
            yield ("appliance", namespace, name)


@dataclass
class OperatorState:
    kube: KubeClient
    workers: int = 128
    default_resync: float = 300.0
    status_heartbeat: float = 900.0
    """A status that would change only its times is written at most this often (core.status)."""
    cache: Cache = field(default_factory=Cache)
    queue: WorkQueue[Key] = field(default_factory=WorkQueue)
    providers: ProviderCache = field(default_factory=ProviderCache)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    runtime: Runtime | None = None
    secret_cache: SecretCache | None = None
    idle: IdleConnections = field(default_factory=IdleConnections)
    metrics: Metrics = field(default_factory=default_metrics)
    metrics_port: int = 9090
    shard: Shard = field(default_factory=Shard)
    _metrics_runner: Any = None

    @classmethod
    def from_env(cls) -> OperatorState:
        return cls(
            kube=KubeClient(load_credentials()),
            workers=int(os.environ.get("VNF_WORKERS", "128")),
            default_resync=float(os.environ.get("VNF_DEFAULT_RESYNC_SECONDS", "300")),
            status_heartbeat=float(os.environ.get("VNF_STATUS_HEARTBEAT_SECONDS", "900")),
            metrics_port=int(os.environ.get("VNF_METRICS_PORT", "9090")),
            shard=Shard.parse(os.environ.get("VNF_SHARD")),
        )

    async def start(self) -> None:
        if secret_watch_enabled():
            self.secret_cache = SecretCache(self.kube, self.cache.wants_secret)
        self.runtime = Runtime(self.kube, self.metrics, self.secret_cache)
        self.runtime.reconciler.default_resync = self.default_resync
        # Older provider dictionaries outlive restarts (rollouts in progress, version pins).
        self.providers.store = HistoryStore(
            self.kube,
            namespace=history_namespace(),
            keep=int(os.environ.get("VNF_PROVIDER_HISTORY_LIMIT", str(DEFAULT_PROVIDER_HISTORY))),
        )
        for controller in ("vnfprovider", "vnfappliance", "vnfoperation"):
            self.metrics.init_controller(controller, max_concurrent=self.workers)
        self.metrics.set_build_info()
        if self.metrics_port > 0:  # 0 disables the endpoint (several operators on one host in tests)
            self._metrics_runner = await start_metrics_server(port=self.metrics_port, metrics=self.metrics)
        self.tasks.append(asyncio.create_task(self._gauges()))
        # Idle device connections were held for the life of the process (controller/idle.py).
        self.idle.idle_seconds = float(
            os.environ.get("VNF_CONNECTION_IDLE_SECONDS", str(DEFAULT_IDLE_SECONDS))
        )
        self.tasks.append(asyncio.create_task(self.idle.run(self.queue, self.runtime.connections)))

    async def _gauges(self) -> None:
        """Refresh the queue and appliance-condition gauges; cheap, and off the reconcile path."""
        while True:
            self.metrics.set_workqueue_depth("vnfappliance", self.queue.depth)
            self.metrics.set_appliance_conditions(
                conditions_by_type(body.get("status")) for body in self.cache.appliances.values()
            )
            await asyncio.sleep(5)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.runtime is not None:
            await self.runtime.aclose()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        await self.kube.aclose()
