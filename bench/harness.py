"""The benchmark's moving parts: the simulator farm process, a small Kubernetes client, the operator
process (with /proc accounting) and a watch-based view of the fleet's status.

Every request the benchmark itself sends to the apiserver is counted (`Kube.own`), so the
apiserver's `apiserver_request_total` can be split into the operator's share and the bench's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    apiserver_requests,
    counter_delta,
    metric_sum,
    proc_cpu_seconds,
    proc_status_kib,
    split_operator_requests,
)
from vnf_operator.testing.controlplane import ControlPlane, free_ports

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION = "vnf.operators.dev", "v1alpha1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def die_with_parent() -> Callable[[], None]:
    """preexec_fn: the child gets SIGTERM when the bench process dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return hook


# ------------------------------------------------------------------------------------------ farm


class FarmProcess:
    """`python -m bench.farm` as a subprocess, and a client of its control endpoints."""

    def __init__(self, count: int, latency_ms: float, workdir: Path) -> None:
        self.count = count
        self.latency_ms = latency_ms
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.http: httpx.AsyncClient | None = None

    async def start(self, start_timeout: float = 300.0) -> FarmProcess:
        info_file = self.workdir / f"farm-{os.getpid()}-{time.monotonic_ns()}.json"
        log = (self.workdir / "farm.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [
                sys.executable,
                "-m",
                "bench.farm",
                "--count",
                str(self.count),
                "--latency-ms",
                str(self.latency_ms),
                "--info-file",
                str(info_file),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        deadline = time.monotonic() + start_timeout
        while not info_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator farm exited early; see {self.workdir / 'farm.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("simulator farm did not start in time")
            await asyncio.sleep(0.1)
        self.info = json.loads(info_file.read_text())
        info_file.unlink()
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.info['control_port']}", timeout=120)
        return self

    @property
    def ports(self) -> list[int]:
        return list(self.info["ports"])

    async def stats(self) -> dict[str, Any]:
        assert self.http is not None
        r = await self.http.get("/stats")
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    async def reset_stats(self) -> None:
        assert self.http is not None
        (await self.http.delete("/stats")).raise_for_status()

    async def converged(self, rules: int, suffix: str = "") -> int:
        assert self.http is not None
        r = await self.http.get("/converged", params={"rules": rules, "suffix": suffix})
        return int(r.json()["converged"])

    async def rules(self, index: int) -> list[dict[str, Any]]:
        assert self.http is not None
        r = await self.http.get("/rules", params={"sim": index})
        result: list[dict[str, Any]] = r.json()
        return result

    async def wait_rule(
        self, index: int, description: str, field: str, value: str, wait_s: float
    ) -> float | None:
        """CLOCK_MONOTONIC time at which the device ran the rule with `field` == `value` (None: timeout)."""
        assert self.http is not None
        r = await self.http.get(
            "/wait",
            params={
                "sim": index,
                "description": description,
                "field": field,
                "value": value,
                "timeout": wait_s,
            },
            timeout=wait_s + 30,
        )
        body = r.json()
        return float(body["t"]) if body["found"] else None

    async def timeline(self, since: float = 0.0) -> list[list[Any]]:
        assert self.http is not None
        r = await self.http.get("/timeline", params={"since": since})
        result: list[list[Any]] = r.json()
        return result

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return read_proc(self.proc.pid)["cpu_seconds"]

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------------------------------ /proc


def read_proc(pid: int) -> dict[str, float]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        "cpu_seconds": proc_cpu_seconds(stat, CLK_TCK),
        "rss_mib": proc_status_kib(status, "VmRSS") / 1024,
        "peak_rss_mib": proc_status_kib(status, "VmHWM") / 1024,
        "threads": float(proc_status_kib(status, "Threads")),
        "fds": float(len(os.listdir(f"/proc/{pid}/fd"))),
    }


# ------------------------------------------------------------------------------------- kubernetes


class Kube:
    """Admin client of the local apiserver; counts its own requests as apiserver metrics label them."""

    def __init__(self, plane: ControlPlane) -> None:
        ctx = ssl.create_default_context(cafile=str(plane.pki.ca_cert))
        ctx.load_cert_chain(str(plane.pki.admin_cert), str(plane.pki.admin_key))
        self.http = httpx.AsyncClient(
            base_url=plane.server, verify=ctx, timeout=120, limits=httpx.Limits(max_connections=16)
        )
        self.own: dict[str, int] = {}

    def _count(self, key: str) -> None:
        self.own[key] = self.own.get(key, 0) + 1

    @staticmethod
    def path(plural: str, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if plural in ("secrets", "namespaces", "events") else f"/apis/{GROUP}/{VERSION}"
        ns = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")

    async def create(self, plural: str, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        self._count(f"POST {plural}")
        r = await self.http.post(self.path(plural, namespace), json=body)
        if r.status_code == 409:
            return {}
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    async def patch(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self._count(f"PATCH {plural}")
        r = await self.http.patch(
            self.path(plural, namespace, name),
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    async def list(self, plural: str, namespace: str) -> dict[str, Any]:
        self._count(f"LIST {plural}")
        r = await self.http.get(self.path(plural, namespace))
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    async def warm_up(self, plurals: Sequence[str], namespace: str, wait_s: float = 60.0) -> None:
        """LIST until the apiserver's watch cache of fresh CRDs stops answering 429 ("storage is
        (re)initializing"): else the operator's first watches back off for a second and that second
        lands in the first measurement."""
        deadline = time.monotonic() + wait_s
        for plural in plurals:
            while True:
                self._count(f"LIST {plural}")
                r = await self.http.get(self.path(plural, namespace), params={"limit": "1"})
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)

    async def metrics(self) -> dict[str, int]:
        """apiserver_request_total by `VERB resource[/subresource]`."""
        self._count("GET (non-resource)/metrics")
        r = await self.http.get("/metrics")
        r.raise_for_status()
        return apiserver_requests(r.text)

    async def version(self) -> dict[str, Any]:
        r = await self.http.get("/version")
        result: dict[str, Any] = r.json()
        return result

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class ApiWindow:
    """apiserver requests between `open` and `close`, minus the bench's own."""

    kube: Kube
    before: dict[str, int] = field(default_factory=dict)
    own_before: dict[str, int] = field(default_factory=dict)

    async def open(self) -> ApiWindow:
        self.before = await self.kube.metrics()
        self.own_before = dict(self.kube.own)
        return self

    async def close(self) -> dict[str, Any]:
        # The scrape that opened the window is counted by the one that closes it, not by itself.
        own = counter_delta(self.kube.own, self.own_before)
        after = await self.kube.metrics()
        total = counter_delta(after, self.before)
        rest = {k: v - own.get(k, 0) for k, v in total.items() if v - own.get(k, 0) > 0}
        operator, other = split_operator_requests(rest)
        return {
            "operator_total": sum(operator.values()),
            "operator": operator,
            "bench_own": own,
            "other": other,
            "apiserver_total": sum(total.values()),
        }


class Fleet:
    """List + watch of the VnfAppliances of one namespace; a condition variable wakes waiters."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.objects: dict[str, dict[str, Any]] = {}
        self.ready_since: dict[str, float] = {}
        self.cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._listed = asyncio.Event()

    @staticmethod
    def digest(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta, status = obj["metadata"], obj.get("status") or {}
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        return {
            "generation": meta.get("generation"),
            "observedGeneration": status.get("observedGeneration"),
            "ready": ready.get("status") == "True"
            and status.get("observedGeneration") == meta.get("generation"),
            "reason": ready.get("reason"),
            "lastSyncTime": status.get("lastSyncTime"),
            "spec": obj.get("spec"),
        }

    async def _update(self, obj: Mapping[str, Any], deleted: bool = False) -> None:
        name = obj["metadata"]["name"]
        async with self.cond:
            if deleted:
                self.objects.pop(name, None)
            else:
                d = self.digest(obj)
                self.objects[name] = d
                if d["ready"] and name not in self.ready_since:
                    self.ready_since[name] = time.monotonic()
            self.cond.notify_all()

    async def _run(self) -> None:
        while True:
            listing = await self.kube.list("vnfappliances", self.namespace)
            for item in listing.get("items", []):
                await self._update(item)
            rv = listing["metadata"]["resourceVersion"]
            self._listed.set()
            # A watch is counted by the apiserver when it ends; the fleet's watch ends after the
            # measurement window closes, so it is not in `Kube.own`.
            params = {
                "watch": "1",
                "resourceVersion": rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "3600",
            }
            try:
                async with self.kube.http.stream(
                    "GET", Kube.path("vnfappliances", self.namespace), params=params, timeout=None
                ) as r:
                    async for line in r.aiter_lines():
                        if not line:
                            continue
                        ev = json.loads(line)
                        if ev["type"] == "ERROR":
                            break
                        if ev["type"] == "BOOKMARK":
                            continue
                        await self._update(ev["object"], deleted=ev["type"] == "DELETED")
            except (httpx.HTTPError, json.JSONDecodeError):
                await asyncio.sleep(0.5)

    async def start(self) -> Fleet:
        """List and start watching; returns once the list is in (so it falls before any window)."""
        self._task = asyncio.create_task(self._run())
        await self._listed.wait()
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def wait(self, predicate: Callable[[dict[str, dict[str, Any]]], bool], wait_s: float) -> bool:
        async with self.cond:
            try:
                await asyncio.wait_for(self.cond.wait_for(lambda: predicate(self.objects)), wait_s)
                return True
            except TimeoutError:
                return False

    def count(self, predicate: Callable[[dict[str, Any]], bool]) -> int:
        return sum(1 for d in self.objects.values() if predicate(d))


# --------------------------------------------------------------------------------------- operator


class OperatorProcess:
    """`kopf run -m vnf_operator.controller.main` as the operator's ServiceAccount."""

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        *,
        workers: int | None,
        namespace: str,
        resync_seconds: float,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.workers = workers
        self.namespace = namespace
        self.resync_seconds = resync_seconds
        self.extra_env = dict(extra_env or {})
        self.metrics_port = free_ports(1)[0]
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self, prefix: Sequence[str] = ()) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "VNF_METRICS_PORT": str(self.metrics_port),
            "VNF_DEFAULT_RESYNC_SECONDS": str(self.resync_seconds),
            "VNF_LOG_LEVEL": os.environ.get("VNF_BENCH_OPERATOR_LOG_LEVEL", "WARNING"),
            **self.extra_env,
        }
        if self.workers is not None:
            env["VNF_WORKERS"] = str(self.workers)
        env.pop("VNF_NAMESPACE", None)
        kopf = str(Path(sys.executable).parent / "kopf")
        self.proc = subprocess.Popen(
            [
                *prefix,
                kopf,
                "run",
                "-m",
                "vnf_operator.controller.main",
                "--standalone",
                f"--namespace={self.namespace}",
            ],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def sample(self) -> dict[str, float]:
        return read_proc(self.pid)

    async def metrics_text(self) -> str:
        async with httpx.AsyncClient(timeout=30) as c:
            r = await c.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
            return r.text

    async def wait_idle(self, quiet_s: float = 3.0, wait_s: float = 120.0) -> float:
        """Until no appliance reconcile runs and none finished for `quiet_s` (a converged fleet can still
        have queued extra reconciles); returns the seconds waited."""
        start = time.monotonic()
        last_total, quiet_since = -1.0, time.monotonic()
        while time.monotonic() - start < wait_s:
            text = await self.metrics_text()
            total = metric_sum(text, "vnfop_reconcile_total", controller="vnfappliance")
            active = metric_sum(text, "vnfop_active_workers", controller="vnfappliance")
            now = time.monotonic()
            if total != last_total or active > 0:
                last_total, quiet_since = total, now
            elif now - quiet_since >= quiet_s:
                return now - start - quiet_s
            await asyncio.sleep(0.25)
        return time.monotonic() - start

    async def wait_started(self, wait_s: float = 60.0, settle_s: float = 1.0) -> float:
        """Until /metrics answers (the startup handler ran); returns the seconds it took."""
        deadline = time.monotonic() + wait_s
        async with httpx.AsyncClient(timeout=2) as c:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"operator exited with {self.proc.returncode}; see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(f"http://127.0.0.1:{self.metrics_port}/healthz")).status_code == 200:
                        started = time.monotonic() - self.started_at
                        await asyncio.sleep(settle_s)  # kopf opens its watches after the startup handler
                        return started
                await asyncio.sleep(0.1)
        raise RuntimeError(f"operator did not start in {wait_s}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def workdir(root: Path | None = None) -> Path:
    path = Path(tempfile.mkdtemp(prefix="vnf-bench-", dir=root))
    return path
