"""Scenario 4, side by side with Ansible: the same fleet converged by a playbook and by the operator.

ansible-core comes from PyPI into its own venv (~/.cache/vnf-operator/bench-venv); the playbook is
bench/ansible/playbook.yml (list, create the missing rules one `uri` call each, apply). Each run gets
fresh, empty simulators with the same injected latency.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.ansible.inventory import inventory, write_inventory
from bench.common import Size
from bench.context import Ctx, rules
from bench.harness import REPO, FarmProcess
from bench.scenarios import cold

BENCH_VENV = Path(os.environ.get("VNF_BENCH_VENV", Path.home() / ".cache" / "vnf-operator" / "bench-venv"))
PLAYBOOK = REPO / "bench" / "ansible" / "playbook.yml"


def ensure_venv() -> Path:
    """The bench venv with ansible-core (and py-spy), created on first use; returns its bin dir."""
    bindir = BENCH_VENV / "bin"
    if not (bindir / "ansible-playbook").exists() or not (bindir / "py-spy").exists():
        if not (bindir / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run(
            [str(bindir / "python"), "-m", "pip", "install", "--quiet", "ansible-core", "py-spy"], check=True
        )
    return bindir


def ansible_version(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "ansible"), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


async def run_playbook(ctx: Ctx, size: Size, forks: int, bindir: Path) -> dict[str, Any]:
    farm = await FarmProcess(size.appliances, ctx.settings.latency_ms, ctx.workdir).start()
    try:
        ca_file = ctx.workdir / "farm-ca.pem"
        ca_file.write_text(farm.info["ca_pem"])
        inv = write_inventory(
            ctx.workdir / f"inventory-{forks}.json",
            inventory(
                farm.ports,
                api_key=farm.info["api_key"],
                api_secret=farm.info["api_secret"],
                ca_file=str(ca_file),
                rules=rules(size.rules),
                python=str(bindir / "python"),
            ),
        )
        env = {
            **os.environ,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(ctx.workdir / "ansible-tmp"),
            "ANSIBLE_HOME": str(ctx.workdir / "ansible-home"),
            "ANSIBLE_PYTHON_INTERPRETER": str(bindir / "python"),
        }
        log = ctx.workdir / f"ansible-forks{forks}.log"
        farm_cpu0 = farm.cpu_seconds()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            str(bindir / "ansible-playbook"),
            "-i",
            str(inv),
            str(PLAYBOOK),
            "--forks",
            str(forks),
            env=env,
            cwd=str(ctx.workdir),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        rc = await proc.wait()
        wall = time.monotonic() - t0
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ansible_cpu = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
        converged = await farm.converged(size.rules)
        stats = await farm.stats()
        inv.unlink()
        return {
            "forks": forks,
            "ok": rc == 0 and converged == size.appliances,
            "returncode": rc,
            "wall_s": wall,
            "devices_converged": converged,
            "device_requests": stats["total"],
            "device_requests_by_template": stats["requests"],
            "ansible_cpu_s": ansible_cpu,
            "farm_cpu_s": farm.cpu_seconds() - farm_cpu0,
            "log_tail": log.read_text(errors="replace")[-1500:] if rc != 0 else "",
        }
    finally:
        await farm.stop()


async def run_operator(ctx: Ctx, size: Size) -> dict[str, Any]:
    return await cold.with_one_operator(ctx, size, f"bench-ansible-{size.label}")


async def run(ctx: Ctx, size: Size, forks: list[int]) -> dict[str, Any]:
    bindir = await asyncio.to_thread(ensure_venv)
    out: dict[str, Any] = {
        "size": size.label,
        "ansible_core": ansible_version(bindir),
        "playbook": "bench/ansible/playbook.yml",
    }
    out["operator"] = await run_operator(ctx, size)
    op_wall = out["operator"]["wall_s"]
    out["ansible"] = []
    for f in forks:
        res = await run_playbook(ctx, size, f, bindir)
        res["operator_speedup"] = res["wall_s"] / op_wall if op_wall else None
        out["ansible"].append(res)
    return out
