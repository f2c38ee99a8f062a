"""Scenario 2, no-op resync: the converged fleet, nothing changed, every appliance reconciled once.

Triggered as an operator would re-check a fleet: one new `vnf.operators.dev/reconcile-requested`
value on the VnfProvider, which queues every appliance using it (`--noop-trigger appliances`
annotates each appliance instead, 1000 PATCHes the bench itself pays for). Done when every appliance
shows a new `status.lastSyncTime` (second granularity: the trigger waits until the clock is past
every previous value).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from bench.common import Size, percentile, split_reads_writes
from bench.context import PROVIDER_NAME, RECONCILE_ANNOTATION, Ctx, appliance_name, gather_limited
from bench.harness import ApiWindow, FarmProcess, Fleet, OperatorProcess
from bench.scenarios.cold import counter_delta_f, operator_counters


async def run(
    ctx: Ctx, size: Size, namespace: str, farm: FarmProcess, operator: OperatorProcess
) -> dict[str, Any]:
    n = size.appliances
    idle_wait = await operator.wait_idle()
    fleet = await Fleet(ctx.kube, namespace).start()
    await fleet.wait(lambda objs: len(objs) >= n, 60)
    await asyncio.sleep(1.1)  # so that a new lastSyncTime differs from every previous one
    baseline = {name: d["lastSyncTime"] for name, d in fleet.objects.items()}
    await farm.reset_stats()
    op_before = operator_counters(await operator.metrics_text())
    window = await ApiWindow(ctx.kube).open()
    cpu0, farm_cpu0 = operator.sample()["cpu_seconds"], farm.cpu_seconds()
    stamp = str(time.time_ns())
    patch = {"metadata": {"annotations": {RECONCILE_ANNOTATION: stamp}}}
    if ctx.settings.noop_trigger == "provider":
        triggers = [functools.partial(ctx.kube.patch, "vnfproviders", "", PROVIDER_NAME, patch)]
    else:
        triggers = [
            functools.partial(ctx.kube.patch, "vnfappliances", namespace, appliance_name(i), patch)
            for i in range(n)
        ]
    seen: dict[str, float] = {}

    def resynced(objs: dict[str, dict[str, Any]]) -> bool:
        now = time.monotonic()
        for name, d in objs.items():
            if name not in seen and d["lastSyncTime"] != baseline.get(name) and d["ready"]:
                seen[name] = now
        return len(seen) >= n

    t0 = time.monotonic()
    await gather_limited(ctx.settings.client_concurrency, triggers)
    patched = time.monotonic() - t0
    ok = await fleet.wait(resynced, ctx.settings.timeout)
    wall = time.monotonic() - t0
    stats = await farm.stats()
    api = await window.close()
    sample = operator.sample()
    op_after = operator_counters(await operator.metrics_text())
    await fleet.stop()
    reads, writes = split_reads_writes(stats["requests"])
    after = sorted(t - t0 for t in seen.values())
    return {
        "ok": ok,
        "waited_for_idle_s": idle_wait,
        "appliances_resynced": len(seen),
        "wall_s": wall,
        "trigger": ctx.settings.noop_trigger,
        "annotate_s": patched,
        "resynced_after_s": {
            "p50": percentile(after, 50) if after else None,
            "p95": percentile(after, 95) if after else None,
        },
        "device_requests": {
            "total": stats["total"],
            "reads": reads,
            "writes": writes,
            "per_appliance": stats["total"] / n,
            "by_template": stats["requests"],
        },
        "operator_counters": counter_delta_f(op_after, op_before),
        "apiserver": api,
        "apiserver_per_appliance": api["operator_total"] / n,
        "operator_cpu_s": sample["cpu_seconds"] - cpu0,
        "operator_cpu_ms_per_appliance": 1000 * (sample["cpu_seconds"] - cpu0) / n,
        "operator_peak_rss_mib": sample["peak_rss_mib"],
        "farm_cpu_s": farm.cpu_seconds() - farm_cpu0,
    }
