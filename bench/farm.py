"""A farm of OPNsense simulators: K instances (one device each) on one event loop in one process.

    python -m bench.farm --count 100 --latency-ms 20 --info-file /tmp/farm.json

Every instance listens on its own HTTPS port on 127.0.0.1 and holds one device's state; all share
one CA and one API key (so the fleet needs one CA Secret and one credentials Secret). A plain-HTTP
control server on 127.0.0.1 aggregates what the benchmark asks for, so it never has to make K
requests to K admin endpoints:

- ``GET /stats``: request counts by ``METHOD template`` summed over every instance, and per instance totals
- ``DELETE /stats``: reset every instance's counts
- ``POST /faults``: apply fault knobs (JSON) to every instance
- ``GET /rules?sim=I``: running (applied) filter rules of instance I
- ``GET /converged?rules=M&suffix=S``: how many instances run at least M rules (optionally ending in S)
- ``GET /wait?sim=I&description=D&field=F&value=V&timeout=T``: poll instance I every 2 ms until its
  running rule whose description ends with D has F == V; answers with the CLOCK_MONOTONIC time seen
  (comparable with the benchmark's time.monotonic(): one clock per machine)
- ``GET /cpu``: this process's CPU seconds
- ``GET /timeline?since=T``: (monotonic time, instance, method, template, status) of recent requests

The info file (mode 0600: it holds the API secret) gives the control port, the instances' ports,
the CA and the credentials. The process runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

from vnf_operator.testing.simulators.base import Credentials, SimulatorConfig
from vnf_operator.testing.simulators.faults import FaultConfig
from vnf_operator.testing.simulators.opnsense import OpnsenseSimulator
from vnf_operator.testing.simulators.tls import generate_tls_material


class Farm:
    def __init__(self, count: int, latency_ms: float) -> None:
        self.count = count
        self.latency_ms = latency_ms
        self.creds = Credentials(
            username="root",
            password=secrets.token_urlsafe(12),
            api_key=secrets.token_hex(16),
            api_secret=secrets.token_urlsafe(24),
        )
        self.tls = generate_tls_material()
        self.sims: list[OpnsenseSimulator] = []
        self.timeline: deque[tuple[float, int, str, str, int]] = deque(maxlen=200_000)

    def _timestamp(self, index: int, sim: OpnsenseSimulator) -> None:
        """Keep (monotonic time, instance, method, template, status) of every finished request."""
        record = sim.telemetry.record

        def timed(method: str, path: str, template: str, status: int) -> None:
            self.timeline.append((time.monotonic(), index, method, template, status))
            record(method, path, template, status)

        sim.telemetry.record = timed  # type: ignore[method-assign]

    async def start(self) -> None:
        for _ in range(self.count):
            config = SimulatorConfig(
                tls=False, ssh=False, credentials=self.creds, faults=FaultConfig(latency_ms=self.latency_ms)
            )
            sim = OpnsenseSimulator(config)
            sim.tls = self.tls  # one CA for the whole farm (a fresh key pair per instance costs ~ms each)
            self._timestamp(len(self.sims), sim)
            await sim.start()
            self.sims.append(sim)

    async def stop(self) -> None:
        for sim in self.sims:
            with contextlib.suppress(Exception):
                await sim.stop()

    # ------------------------------------------------------------------ control endpoints
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stats", self.stats)
        app.router.add_delete("/stats", self.reset)
        app.router.add_post("/faults", self.faults)
        app.router.add_get("/rules", self.rules)
        app.router.add_get("/converged", self.converged)
        app.router.add_get("/wait", self.wait)
        app.router.add_get("/cpu", self.cpu)
        app.router.add_get("/timeline", self.get_timeline)
        return app

    async def stats(self, request: web.Request) -> web.Response:
        totals: dict[str, int] = {}
        statuses: dict[str, int] = {}
        per_sim: list[int] = []
        for sim in self.sims:
            st = sim.telemetry.stats()
            per_sim.append(int(st["total"]))
            for k, v in st["requests"].items():
                totals[k] = totals.get(k, 0) + int(v)
            for k, v in st["statuses"].items():
                statuses[k] = statuses.get(k, 0) + int(v)
        return web.json_response(
            {
                "total": sum(per_sim),
                "requests": dict(sorted(totals.items())),
                "statuses": statuses,
                "per_sim": per_sim,
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        for sim in self.sims:
            sim.telemetry.reset()
        return web.json_response({"ok": True})

    async def faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        for sim in self.sims:
            sim.faults.update(body)
        return web.json_response({"ok": True})

    def _running(self, index: int) -> list[dict[str, Any]]:
        return [{"uuid": k, **v} for k, v in self.sims[index].running.filter_rules.items()]

    async def rules(self, request: web.Request) -> web.Response:
        return web.json_response(self._running(int(request.query["sim"])))

    async def converged(self, request: web.Request) -> web.Response:
        want = int(request.query.get("rules", "0"))
        suffix = request.query.get("suffix", "")
        done = 0
        for sim in self.sims:
            rules = sim.running.filter_rules.values()
            n = (
                sum(1 for r in rules if str(r.get("description", "")).endswith(suffix))
                if suffix
                else len(rules)
            )
            done += n >= want
        return web.json_response({"converged": done, "count": len(self.sims)})

    async def wait(self, request: web.Request) -> web.Response:
        index = int(request.query["sim"])
        description = request.query["description"]
        field, value = request.query["field"], request.query["value"]
        deadline = time.monotonic() + float(request.query.get("timeout", "30"))
        while time.monotonic() < deadline:
            for rule in self.sims[index].running.filter_rules.values():
                if str(rule.get("description", "")).endswith(description) and str(rule.get(field)) == value:
                    return web.json_response({"found": True, "t": time.monotonic()})
            await asyncio.sleep(0.002)
        return web.json_response({"found": False, "t": time.monotonic()})

    async def get_timeline(self, request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        return web.json_response([list(e) for e in self.timeline if e[0] >= since])

    async def cpu(self, request: web.Request) -> web.Response:
        t = os.times()
        return web.json_response({"cpu_seconds": t.user + t.system})


async def main_async(args: argparse.Namespace) -> None:
    farm = Farm(args.count, args.latency_ms)
    await farm.start()
    runner = web.AppRunner(farm.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    control_port = int(runner.addresses[0][1])
    info = {
        "control_port": control_port,
        "ports": [s.port for s in farm.sims],
        "ca_pem": farm.tls.ca_pem,
        "api_key": farm.creds.api_key,
        "api_secret": farm.creds.api_secret,
        "pid": os.getpid(),
    }
    path = Path(args.info_file)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(info))
    tmp.rename(path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await farm.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--info-file", required=True)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
