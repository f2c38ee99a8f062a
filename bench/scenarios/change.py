"""Scenario 3, change latency: edit one rule of one appliance in a converged fleet, one edit at a time.

Measured per edit: from just before the API write (a merge patch of the appliance's items) to the
moment the device *runs* the changed rule (the simulator's applied rule set, polled every 2 ms in
the farm process), and to the moment the appliance is Ready at the new generation again.
"""

from __future__ import annotations

import copy
import functools
import time
from typing import Any

from bench.common import Size, summary
from bench.context import SERVICE, Ctx, appliance_name, rules
from bench.harness import FarmProcess, Fleet, OperatorProcess


async def run(
    ctx: Ctx, size: Size, namespace: str, farm: FarmProcess, operator: OperatorProcess
) -> dict[str, Any]:
    n, m = size.appliances, size.rules
    idle_wait = await operator.wait_idle()
    fleet = await Fleet(ctx.kube, namespace).start()
    await fleet.wait(lambda objs: len(objs) >= n, 60)
    desired = {i: rules(m) for i in range(n)}
    device: list[float] = []
    ready: list[float] = []
    failures: list[str] = []
    cpu0 = operator.sample()["cpu_seconds"]
    for k in range(ctx.settings.edits):
        i = (k * 7919) % n  # spread the edits over the fleet
        j = k % m
        name = appliance_name(i)
        items = copy.deepcopy(desired[i])
        value = str(20000 + k)
        items[j]["destination_port"] = value
        desired[i] = items
        t0 = time.monotonic()
        obj = await ctx.kube.patch(
            "vnfappliances", namespace, name, {"spec": {"services": {SERVICE: {"items": items}}}}
        )
        generation = obj["metadata"]["generation"]
        seen = await farm.wait_rule(
            i, items[j]["description"], "destination_port", value, ctx.settings.timeout
        )
        if seen is None:
            failures.append(f"{name}: device never ran destination_port={value}")
            continue
        device.append(seen - t0)
        ok = await fleet.wait(functools.partial(_ready_at, name, generation), ctx.settings.timeout)
        if ok:
            ready.append(time.monotonic() - t0)
        else:
            failures.append(f"{name}: not Ready at generation {generation}")
    await fleet.stop()
    return {
        "ok": not failures and len(device) >= ctx.settings.edits,
        "edits": ctx.settings.edits,
        "waited_for_idle_s": idle_wait,
        "write_to_device_s": summary(device) if device else None,
        "write_to_ready_s": summary(ready) if ready else None,
        "samples_write_to_device_s": [round(x, 4) for x in device],
        "operator_cpu_s": operator.sample()["cpu_seconds"] - cpu0,
        "failures": failures[:10],
    }


def _ready_at(name: str, generation: int, objs: dict[str, dict[str, Any]]) -> bool:
    d = objs.get(name) or {}
    return bool(d.get("ready") and d.get("observedGeneration") == generation)
