"""Scenario 1, cold convergence: N appliances x M rules from empty devices to every appliance Ready."""

from __future__ import annotations

import functools
import time
from typing import Any

from bench.common import (
    Size,
    chain_seconds,
    counter_delta,
    fleet_lower_bound,
    metric_sum,
    minimum_requests,
    percentile,
    split_reads_writes,
)
from bench.context import (
    Ctx,
    appliance,
    appliance_name,
    gather_limited,
    operator_for,
    prepare_namespace,
    rules,
)
from bench.harness import ApiWindow, FarmProcess, Fleet, OperatorProcess


def operator_counters(text: str) -> dict[str, float]:
    return {
        "device_requests": metric_sum(text, "vnfop_device_requests_total"),
        "device_retries": metric_sum(text, "vnfop_device_retries_total"),
        "reconciles": metric_sum(text, "vnfop_reconcile_total", controller="vnfappliance"),
        "reconcile_errors": metric_sum(text, "vnfop_reconcile_errors_total", controller="vnfappliance"),
        "requeue_after": metric_sum(
            text, "vnfop_reconcile_total", controller="vnfappliance", result="requeue_after"
        ),
        "status_written": metric_sum(text, "vnfop_status_writes_total", result="written"),
        "status_skipped": metric_sum(text, "vnfop_status_writes_total", result="skipped"),
    }


def lower_bound(ctx: Ctx, appliances: int, per_appliance_requests: float) -> dict[str, float]:
    s = ctx.shape
    per_app = chain_seconds(
        round(per_appliance_requests), ctx.settings.latency_ms / 1000, s.requests_per_second, s.burst
    )
    return {
        "per_appliance_s": per_app,
        "fleet_s": fleet_lower_bound(appliances, ctx.settings.effective_workers, per_app),
    }


async def run(
    ctx: Ctx, size: Size, namespace: str, farm: FarmProcess, operator: OperatorProcess
) -> dict[str, Any]:
    n, m = size.appliances, size.rules
    fleet = await Fleet(ctx.kube, namespace).start()
    await farm.reset_stats()
    op_before = operator_counters(await operator.metrics_text())
    window = await ApiWindow(ctx.kube).open()
    cpu0, farm_cpu0 = operator.sample()["cpu_seconds"], farm.cpu_seconds()
    items = rules(m)
    manifests = [
        appliance(namespace, i, port, items, ctx.settings.resync_seconds)
        for i, port in enumerate(farm.ports[:n])
    ]

    t0 = time.monotonic()
    await gather_limited(
        ctx.settings.client_concurrency,
        [functools.partial(ctx.kube.create, "vnfappliances", namespace, body) for body in manifests],
    )
    created = time.monotonic() - t0
    ok = await fleet.wait(lambda objs: len(fleet.ready_since) >= n, ctx.settings.timeout)
    wall = time.monotonic() - t0
    ready_after = sorted(t - t0 for t in fleet.ready_since.values())

    stats = await farm.stats()
    timeline = await farm.timeline(since=t0)
    api = await window.close()
    sample = operator.sample()
    op_after = operator_counters(await operator.metrics_text())
    converged = await farm.converged(m)
    await fleet.stop()

    minimum_one = minimum_requests(ctx.shape, items_on_device=0, changes=m)
    minimum_total = minimum_one["total"] * n
    reads, writes = split_reads_writes(stats["requests"])
    per_app_actual = stats["total"] / n
    lb_min = lower_bound(ctx, n, minimum_one["total"])
    lb_actual = lower_bound(ctx, n, per_app_actual)
    expected_by_template = expected_templates(n, m)
    extras = {k: v for k, v in counter_delta(stats["requests"], expected_by_template).items() if v}
    result: dict[str, Any] = {
        "ok": ok and converged == n,
        "appliances_ready": len(fleet.ready_since),
        "devices_converged": converged,
        "wall_s": wall,
        "create_s": created,
        "ready_after_s": {
            "p50": percentile(ready_after, 50) if ready_after else None,
            "p95": percentile(ready_after, 95) if ready_after else None,
            "max": ready_after[-1] if ready_after else None,
        },
        "device_requests": {
            "total": stats["total"],
            "reads": reads,
            "writes": writes,
            "per_appliance": per_app_actual,
            "by_template": stats["requests"],
            "statuses": stats["statuses"],
            "minimum_per_appliance": minimum_one,
            "minimum_total": minimum_total,
            "extra_total": stats["total"] - minimum_total,
            "extra_by_template": extras,
            "is_minimum": stats["total"] == minimum_total,
        },
        "phases": phases(timeline, fleet.ready_since, t0, n),
        "operator_counters": counter_delta_f(op_after, op_before),
        "apiserver": api,
        "apiserver_per_appliance": api["operator_total"] / n,
        "operator_cpu_s": sample["cpu_seconds"] - cpu0,
        "operator_rss_mib": sample["rss_mib"],
        "operator_peak_rss_mib": sample["peak_rss_mib"],
        "operator_fds": sample["fds"],
        "farm_cpu_s": farm.cpu_seconds() - farm_cpu0,
        "lower_bound": {
            "workers": ctx.settings.effective_workers,
            "latency_ms": ctx.settings.latency_ms,
            "requests_per_second_per_appliance": ctx.shape.requests_per_second,
            "burst": ctx.shape.burst,
            "minimum_requests": lb_min,
            "actual_requests": lb_actual,
        },
        "ratio_to_lower_bound": wall / lb_min["fleet_s"] if lb_min["fleet_s"] else None,
        "ratio_to_lower_bound_actual_requests": wall / lb_actual["fleet_s"] if lb_actual["fleet_s"] else None,
    }
    if not result["ok"]:
        not_ready = {k: v["reason"] for k, v in fleet.objects.items() if not v["ready"]}
        result["not_ready_sample"] = dict(list(not_ready.items())[:10])
        result["operator_log_tail"] = operator.log_tail(2000)
    return result


def phases(
    timeline: list[list[Any]], ready_since: dict[str, float], t0: float, n: int
) -> dict[str, dict[str, float] | None]:
    """Where an appliance's time goes: create → first device request → last device request → Ready."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for t, index, *_ in timeline:
        first.setdefault(int(index), float(t))
        last[int(index)] = float(t)
    to_first = [first[i] - t0 for i in first]
    on_device = [last[i] - first[i] for i in first]
    after_last = [
        ready_since[appliance_name(i)] - last[i] for i in last if appliance_name(i) in ready_since and i < n
    ]

    def stats(xs: list[float]) -> dict[str, float] | None:
        return {"p50": percentile(xs, 50), "p95": percentile(xs, 95), "max": max(xs)} if xs else None

    return {
        "create_to_first_device_request_s": stats(to_first),
        "first_to_last_device_request_s": stats(on_device),
        "last_device_request_to_ready_seen_s": stats(after_last),
    }


def expected_templates(n: int, m: int) -> dict[str, int]:
    """The minimum as simulator stats keys (OPNsense provider, one empty device per appliance)."""
    return {
        "GET /api/core/firmware/status": n,  # healthChecks.firmware_status
        "GET /api/firewall/filter/searchRule": 2 * n,  # healthChecks.filter_readable + the list
        "POST /api/firewall/filter/addRule": n * m,
        "POST /api/firewall/filter/apply": n,
    }


def counter_delta_f(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}


async def with_one_operator(ctx: Ctx, size: Size, namespace: str) -> dict[str, Any]:
    """Cold convergence of a fresh fleet in `namespace` by one operator process of its own (the
    baseline the Ansible and two-shard scenarios compare against)."""
    farm = await FarmProcess(size.appliances, ctx.settings.latency_ms, ctx.workdir).start()
    operator: OperatorProcess | None = None
    try:
        await prepare_namespace(ctx, namespace, farm)
        operator = operator_for(ctx, namespace).start()
        startup = await operator.wait_started()
        result = await run(ctx, size, namespace, farm, operator)
        result["operator_startup_s"] = startup
        return result
    finally:
        if operator is not None:
            operator.stop()
        await farm.stop()
