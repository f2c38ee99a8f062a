"""What every scenario gets: the cluster, clients, settings; and the fleet's manifests."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.common import ProviderShape
from bench.harness import FarmProcess, Kube, OperatorProcess
from vnf_operator.testing.controlplane import ControlPlane

T = TypeVar("T")
SERVICE = "firewall_rules"
API_SECRET, CA_SECRET = "fw-api", "fw-ca"
RECONCILE_ANNOTATION = "vnf.operators.dev/reconcile-requested"
PROVIDER_NAME = "opnsense"
NOOP_TRIGGERS = ("provider", "appliances")


@dataclass
class Settings:
    latency_ms: float
    workers: int | None
    """VNF_WORKERS for the operator (None: the operator's default)."""
    default_workers: int
    edits: int
    timeout: float
    resync_seconds: float
    client_concurrency: int = 16
    noop_trigger: str = "provider"
    """How the no-op resync is started: one annotation on the VnfProvider, or one per appliance."""
    profile: str | None = None
    """Size label whose cold run is profiled with py-spy (None: no profile)."""

    @property
    def effective_workers(self) -> int:
        return self.workers if self.workers is not None else self.default_workers


@dataclass
class Ctx:
    plane: ControlPlane
    kube: Kube
    sa_kubeconfig: Path
    workdir: Path
    settings: Settings
    shape: ProviderShape
    provider: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    profile_dir: Path = Path(".")


def operator_for(ctx: Ctx, namespace: str, *, shard: tuple[int, int] | None = None) -> OperatorProcess:
    """An operator process (not started yet) for `namespace` with the run's settings; `shard`:
    (index, count) for `VNF_SHARD`."""
    suffix = f"-shard{shard[0]}" if shard else ""
    return OperatorProcess(
        ctx.sa_kubeconfig,
        ctx.workdir / f"operator-{namespace}{suffix}.log",
        workers=ctx.settings.workers,
        namespace=namespace,
        resync_seconds=ctx.settings.resync_seconds,
        extra_env={"VNF_SHARD": f"{shard[0]}/{shard[1]}"} if shard else None,
    )


def rules(m: int) -> list[dict[str, Any]]:
    """`m` distinct, valid OPNsense filter rules."""
    return [
        {
            "description": f"rule-{j:04d}",
            "action": "pass" if j % 3 else "block",
            "interface": "wan",
            "protocol": "TCP",
            "destination_port": str(10000 + j),
        }
        for j in range(m)
    ]


def appliance_name(i: int) -> str:
    return f"fw-{i:04d}"


def appliance(
    namespace: str, i: int, port: int, items: list[dict[str, Any]], resync_seconds: float | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": appliance_name(i), "namespace": namespace},
        "spec": {
            "providerRef": {"name": PROVIDER_NAME},
            "management": {"host": "127.0.0.1", "ports": {"api": port}},
            "credentialsSecretRef": {"name": API_SECRET},
            "tls": {"caSecretRef": {"name": CA_SECRET}},
            "services": {SERVICE: {"policy": "replaced", "items": items}},
        },
    }
    if resync_seconds is not None:
        # Per appliance: VNF_DEFAULT_RESYNC_SECONDS does not reach the engine (it resyncs every 300 s
        # unless spec.resyncInterval says otherwise), and a timed resync must not land in a measurement.
        body["spec"]["resyncInterval"] = f"{int(resync_seconds)}s"
    return body


async def gather_limited(limit: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    sem = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await job()

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def prepare_namespace(ctx: Ctx, namespace: str, farm: FarmProcess) -> None:
    """The namespace and its two Secrets (outside any measured window)."""
    kube = ctx.kube
    await kube.create(
        "namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    await kube.create(
        "secrets",
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": API_SECRET},
            "data": {"api_key": b64(farm.info["api_key"]), "api_secret": b64(farm.info["api_secret"])},
        },
    )
    await kube.create(
        "secrets",
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CA_SECRET},
            "data": {"ca.crt": b64(farm.info["ca_pem"])},
        },
    )
