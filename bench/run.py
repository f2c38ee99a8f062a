"""`make bench`: the operator against a real local apiserver and OPNsense simulators with latency.

    python -m bench.run                                  # sizes 10x10,100x50,1000x20, 20 ms latency
    python -m bench.run --quick                          # a small smoke run (5x5, Ansible at 5x5)
    python -m bench.run --sizes 20x10 --latency-ms 5 --scenarios cold,noop,change
    VNF_BENCH_SIZES=100x20 VNF_BENCH_LATENCY_MS=20 make bench

Starts its own control plane (kube-apiserver + etcd, as the integration tests do) in a temporary
directory, installs the CRDs, manifests and the OPNsense provider, and for every size runs one
simulator farm and one operator process (as its ServiceAccount, watching one namespace) through the
cold, no-op and change scenarios; then the Ansible comparison and the (skipped) two-shard scenario.
Writes bench/results/<stamp>.json and .md. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from bench.common import ProviderShape, Size, parse_sizes
from bench.context import NOOP_TRIGGERS, SERVICE, Ctx, Settings, operator_for, prepare_namespace
from bench.harness import REPO, FarmProcess, Kube, OperatorProcess, workdir
from bench.profile import PySpy
from bench.report import evaluate_goals, render_markdown
from bench.scenarios import ansible, change, cold, noop, shard
from vnf_operator.controller.state import OperatorState
from vnf_operator.testing.controlplane import ControlPlane

SCENARIOS = ("cold", "noop", "change", "ansible", "shard")
DEFAULT_SIZES = "10x10,100x50,1000x20"


def default_workers() -> int:
    for f in dataclasses.fields(OperatorState):
        if f.name == "workers":
            return int(f.default)  # type: ignore[arg-type]
    return 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--sizes",
        default=os.environ.get("VNF_BENCH_SIZES", DEFAULT_SIZES),
        help="fleets as APPLIANCESxRULES, comma separated (env VNF_BENCH_SIZES)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=float(os.environ.get("VNF_BENCH_LATENCY_MS", "20")),
        help="latency the simulators add to every device request (env VNF_BENCH_LATENCY_MS)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("VNF_BENCH_QUICK") == "1",
        help="small smoke run: sizes 5x5, Ansible side by side at 5x5",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ["VNF_BENCH_WORKERS"]) if os.environ.get("VNF_BENCH_WORKERS") else None,
        help="VNF_WORKERS of the operator (default: the operator's own default)",
    )
    p.add_argument(
        "--scenarios",
        default=os.environ.get("VNF_BENCH_SCENARIOS", ",".join(SCENARIOS)),
        help=f"subset of {','.join(SCENARIOS)}",
    )
    p.add_argument("--edits", type=int, default=20, help="edits in the change-latency scenario (at least 20)")
    p.add_argument(
        "--noop-trigger",
        choices=NOOP_TRIGGERS,
        default="provider",
        help="no-op resync started by one annotation on the VnfProvider, or one on every appliance",
    )
    p.add_argument("--ansible-size", default="20x20")
    p.add_argument("--ansible-forks", default="5,20")
    p.add_argument("--shard-size", default="100x20", help="fleet of the two-shard scenario")
    p.add_argument(
        "--profile",
        metavar="SIZE",
        default=os.environ.get("VNF_BENCH_PROFILE"),
        help="profile the operator with py-spy during the cold run of this size (e.g. 100x50)",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="longest wait for one scenario step (s)")
    p.add_argument(
        "--resync-seconds",
        type=float,
        default=3600.0,
        help="VNF_DEFAULT_RESYNC_SECONDS and spec.resyncInterval: long, so no timed resync runs inside a measurement",
    )
    p.add_argument("--out", default=str(REPO / "bench" / "results"))
    p.add_argument("--label", default="", help="suffix of the result file names")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, control plane state)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = "5x5"
        args.ansible_size = "5x5"
        args.shard_size = "5x5"
    if args.edits < 20:
        p.error("--edits must be at least 20")
    return args


def machine_meta() -> dict[str, Any]:
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": round(mem, 1),
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "kernel": platform.release(),
    }


def versions(plane: ControlPlane, apiserver: dict[str, Any]) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("vnf-operator", "kopf", "aiohttp", "httpx", "prometheus-client"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    out["kube-apiserver"] = str(apiserver.get("gitVersion", "?"))
    name = plane.binaries.name  # e.g. k8s-1.35.4-etcd-3.6.5
    if "etcd-" in name:
        out["etcd"] = name.split("etcd-", 1)[1]
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if git.returncode == 0:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        out["commit"] = git.stdout.strip() + ("-dirty" if dirty else "")
    return out


async def run_size(ctx: Ctx, size: Size, scenarios: set[str]) -> dict[str, Any]:
    namespace = f"bench-{size.label}"
    out: dict[str, Any] = {"size": size.label, "appliances": size.appliances, "rules": size.rules}
    t = time.monotonic()
    farm = await FarmProcess(size.appliances, ctx.settings.latency_ms, ctx.workdir).start()
    out["farm_start_s"] = time.monotonic() - t
    operator: OperatorProcess | None = None
    try:
        await prepare_namespace(ctx, namespace, farm)
        operator = operator_for(ctx, namespace).start()
        out["operator_startup_s"] = await operator.wait_started()
        out["operator_idle"] = operator.sample()
        bindir = await asyncio.to_thread(ansible.ensure_venv) if ctx.settings.profile == size.label else None
        profiles: dict[str, Any] = {}

        def spy(scenario: str) -> PySpy | None:
            if bindir is None or operator is None:
                return None
            out_file = ctx.profile_dir / f"profile-{size.label}-{scenario}.collapsed.txt"
            return PySpy(bindir / "py-spy", operator.pid, out_file)

        def unspy(scenario: str, recorder: PySpy | None) -> None:
            if recorder is not None:
                profiles[scenario] = {
                    "size": size.label,
                    **recorder.stop(),
                    "collapsed_stacks": rel(recorder.output),
                }

        recorder = spy("cold")
        print(f"[{size.label}] cold convergence ...", flush=True)
        out["cold"] = await cold.run(ctx, size, namespace, farm, operator)
        print(f"[{size.label}] cold: {out['cold']['wall_s']:.1f} s, ok={out['cold']['ok']}", flush=True)
        unspy("cold", recorder)
        if out["cold"]["ok"]:
            if "noop" in scenarios:
                print(f"[{size.label}] no-op resync ...", flush=True)
                recorder = spy("noop")
                out["noop"] = await noop.run(ctx, size, namespace, farm, operator)
                unspy("noop", recorder)
                print(f"[{size.label}] no-op: {out['noop']['wall_s']:.1f} s", flush=True)
            if "change" in scenarios:
                print(f"[{size.label}] change latency ({ctx.settings.edits} edits) ...", flush=True)
                out["change"] = await change.run(ctx, size, namespace, farm, operator)
                dev = out["change"].get("write_to_device_s") or {}
                print(f"[{size.label}] change: p50 {dev.get('p50')} p95 {dev.get('p95')}", flush=True)
        out["operator"] = operator.sample()
        if profiles:
            out["profile"] = profiles
        log = operator.log_tail(100_000)
        out["operator_log_tracebacks"] = log.count("Traceback")
    finally:
        if operator is not None:
            operator.stop()
        await farm.stop()
    return out


def rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def write_results(out_dir: Path, stamp: str, label: str, results: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"{stamp}{('-' + label) if label else ''}"
    results["goals"] = evaluate_goals(results)
    jpath, mpath = base.with_suffix(".json"), base.with_suffix(".md")
    jpath.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    mpath.write_text(render_markdown(results))
    return jpath, mpath


async def main_async(args: argparse.Namespace) -> int:
    scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    unknown = scenarios - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    sizes = parse_sizes(args.sizes)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    t_start = time.monotonic()
    wd = workdir()
    provider = yaml.safe_load((REPO / "providers" / "opnsense.yaml").read_text())
    shape = ProviderShape.from_dictionary(provider, SERVICE)
    settings = Settings(
        latency_ms=args.latency_ms,
        workers=args.workers,
        default_workers=default_workers(),
        edits=args.edits,
        timeout=args.timeout,
        resync_seconds=args.resync_seconds,
        profile=args.profile,
        noop_trigger=args.noop_trigger,
    )
    results: dict[str, Any] = {
        "meta": {
            "started": started,
            **machine_meta(),
            "latency_ms": args.latency_ms,
            "workers": settings.effective_workers,
            "provider_limits": {
                "requestsPerSecond": shape.requests_per_second,
                "burst": shape.burst,
                "maxConcurrency": shape.max_concurrency,
            },
            "sizes": [s.label for s in sizes],
            "scenarios": sorted(scenarios),
            "quick": args.quick,
            "argv": sys.argv[1:],
        },
        "sizes": [],
        "notes": [
            "2 cores shared by etcd, kube-apiserver, the simulator farm, the bench and the operator "
            "(and, while this ran, other work on the machine: see the load averages); repeated runs vary by 10-25 %.",
        ],
    }
    if args.profile:
        results["notes"].append(
            f"the {args.profile} cold and no-op runs ran under py-spy (sampling at 67 Hz): a few % slower than without"
        )
    plane = ControlPlane(wd / "cluster", die_with_parent=True)
    kube: Kube | None = None
    jpath = mpath = None
    try:
        print(f"starting the control plane in {wd} ...", flush=True)
        plane.start()
        plane.kubectl("apply", "--server-side", "-k", str(REPO / "manifests"))
        plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        plane.kubectl("apply", "--server-side", "-f", str(REPO / "providers" / "opnsense.yaml"))
        sa = plane.service_account_kubeconfig(
            "vnf-system", "vnf-operator", wd / "operator.kubeconfig", duration="12h"
        )
        kube = Kube(plane)
        await kube.warm_up(["vnfappliances", "vnfoperations"], "default")
        results["meta"]["versions"] = versions(plane, await kube.version())
        ctx = Ctx(
            plane=plane,
            kube=kube,
            sa_kubeconfig=sa,
            workdir=wd,
            settings=settings,
            shape=shape,
            provider=provider,
            notes=results["notes"],
            profile_dir=Path(args.out),
        )
        if scenarios & {"cold", "noop", "change"}:
            for size in sizes:
                try:
                    res = await run_size(ctx, size, scenarios)
                except Exception as exc:  # one size failing must not lose the others
                    res = {
                        "size": size.label,
                        "appliances": size.appliances,
                        "rules": size.rules,
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc()[-3000:],
                    }
                if "profile" in res:
                    results["profile"] = res.pop("profile")
                results["sizes"].append(res)
                jpath, mpath = write_results(Path(args.out), stamp, args.label, results)
        if "ansible" in scenarios:
            a_size = parse_sizes(args.ansible_size)[0]
            forks = [int(f) for f in args.ansible_forks.split(",")]
            print(f"[ansible {a_size.label}] operator and ansible-playbook --forks {forks} ...", flush=True)
            try:
                results["ansible"] = await ansible.run(ctx, a_size, forks)
            except Exception as exc:
                results["ansible"] = {
                    "size": a_size.label,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()[-3000:],
                }
        if "shard" in scenarios:
            s_size = parse_sizes(args.shard_size)[0]
            print(f"[shards {s_size.label}] one operator, then two shards ...", flush=True)
            try:
                results["shard"] = await shard.run(ctx, s_size)
            except Exception as exc:
                results["shard"] = {
                    "status": "error",
                    "size": s_size.label,
                    "reason": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()[-3000:],
                }
            if results["shard"]["status"] != "ran":
                print(results["shard"]["reason"], flush=True)
        results["meta"]["duration_s"] = time.monotonic() - t_start
        results["meta"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        jpath, mpath = write_results(Path(args.out), stamp, args.label, results)
    finally:
        if kube is not None:
            await kube.aclose()
        plane.stop()
        if args.keep:
            print(f"work directory kept: {wd}")
        else:
            shutil.rmtree(wd, ignore_errors=True)
    print(f"results: {jpath}\nreport:  {mpath}", flush=True)
    if mpath is not None:
        print(mpath.read_text())
    failed = [
        s["size"] for s in results["sizes"] if s.get("error") or not (s.get("cold") or {}).get("ok", False)
    ]
    return 1 if failed else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so every `finally` stops what it started


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)  # py-spy writes there before the first result
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
