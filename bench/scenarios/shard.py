"""Scenario 5, two shards: cold convergence of one fleet by two operator processes (`VNF_SHARD=0/2`,
`1/2`), next to one operator on the same fleet size.

Runs only when the operator can shard (`vnf_operator.controller.sharding`, or `kopf run --shard`);
otherwise it is skipped with the line below.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Size, split_reads_writes
from bench.context import Ctx, appliance, gather_limited, operator_for, prepare_namespace, rules
from bench.harness import ApiWindow, FarmProcess, Fleet, OperatorProcess
from bench.scenarios import cold

NOT_IMPLEMENTED = "not implemented: sharding not yet in the operator"


def shard_supported() -> bool:
    if importlib.util.find_spec("vnf_operator.controller.sharding") is not None:
        return True
    kopf = str(Path(sys.executable).parent / "kopf")
    out = subprocess.run([kopf, "run", "--help"], capture_output=True, text=True, check=False)
    return "--shard" in out.stdout


async def _two_shards(ctx: Ctx, size: Size) -> dict[str, Any]:
    n, m = size.appliances, size.rules
    namespace = f"bench-shards-{size.label}"
    farm = await FarmProcess(n, ctx.settings.latency_ms, ctx.workdir).start()
    shards: list[OperatorProcess] = []
    try:
        await prepare_namespace(ctx, namespace, farm)
        for i in range(2):
            shards.append(operator_for(ctx, namespace, shard=(i, 2)).start())
        for op in shards:
            await op.wait_started()
        fleet = await Fleet(ctx.kube, namespace).start()
        await farm.reset_stats()
        window = await ApiWindow(ctx.kube).open()
        cpu0 = [op.sample()["cpu_seconds"] for op in shards]
        manifests = [
            appliance(namespace, i, port, rules(m), ctx.settings.resync_seconds)
            for i, port in enumerate(farm.ports[:n])
        ]
        t0 = time.monotonic()
        await gather_limited(
            ctx.settings.client_concurrency,
            [functools.partial(ctx.kube.create, "vnfappliances", namespace, body) for body in manifests],
        )
        ok = await fleet.wait(lambda objs: len(fleet.ready_since) >= n, ctx.settings.timeout)
        wall = time.monotonic() - t0
        stats = await farm.stats()
        api = await window.close()
        samples = [op.sample() for op in shards]
        await fleet.stop()
        for op in shards:  # a reconcile is counted after its events are posted, i.e. after Ready shows
            await op.wait_idle(quiet_s=1.0, wait_s=60.0)
        reconciled = [cold.operator_counters(await op.metrics_text())["reconciles"] for op in shards]
        reads, writes = split_reads_writes(stats["requests"])
        return {
            "ok": ok,
            "wall_s": wall,
            "appliances_ready": len(fleet.ready_since),
            "device_requests": {"total": stats["total"], "reads": reads, "writes": writes},
            "reconciles_per_shard": reconciled,
            "operator_cpu_s_per_shard": [s["cpu_seconds"] - c for s, c in zip(samples, cpu0, strict=True)],
            "operator_peak_rss_mib_per_shard": [s["peak_rss_mib"] for s in samples],
            "apiserver": api,
        }
    finally:
        for op in shards:
            op.stop()
        await farm.stop()


async def run(ctx: Ctx | None = None, size: Size | None = None) -> dict[str, Any]:
    if not shard_supported():
        return {"status": "skipped", "reason": NOT_IMPLEMENTED}
    if ctx is None or size is None:
        return {"status": "skipped", "reason": "no size given"}
    single = await cold.with_one_operator(ctx, size, f"bench-single-{size.label}")
    two = await _two_shards(ctx, size)
    return {
        "status": "ran",
        "size": size.label,
        "workers_per_shard": ctx.settings.effective_workers,
        "one_operator": {
            "ok": single["ok"],
            "wall_s": single["wall_s"],
            "device_requests": single["device_requests"]["total"],
            "operator_cpu_s": single["operator_cpu_s"],
            "lower_bound_s": single["lower_bound"]["minimum_requests"]["fleet_s"],
        },
        "two_shards": two,
        "speedup": single["wall_s"] / two["wall_s"] if two["wall_s"] else None,
    }
