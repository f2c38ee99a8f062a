"""`make demo`: the main job end to end on this machine.

Starts the local control plane, installs the CRDs and manifests, starts a simulated OPNsense
(HTTPS, its own CA), applies a VnfProvider, Secrets and a VnfAppliance, runs the operator as its
own ServiceAccount until the appliance is Ready, then prints `kubectl get vnf` and the device's
resulting firewall configuration. Everything it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from vnf_operator.testing.controlplane import ControlPlane
from vnf_operator.testing.simulators import SIMULATORS
from vnf_operator.testing.simulators.base import Credentials, SimulatorConfig

REPO = Path(__file__).resolve().parents[3]
console = Console(width=140)

RULES = [
    {
        "description": "allow-ssh",
        "action": "pass",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "22",
    },
    {
        "description": "allow-https",
        "action": "pass",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "443",
    },
    {
        "description": "block-telnet",
        "action": "block",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "23",
    },
]


class SimulatorThread:
    """Runs a simulator's aiohttp server on its own event loop in a thread."""

    def __init__(self, vendor: str, config: SimulatorConfig) -> None:
        self.sim = SIMULATORS[vendor](config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        self.thread.start()
        return str(asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(30))

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def step(text: str) -> None:
    console.print(f"[bold cyan]==>[/] {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", default=str(REPO / ".state" / "demo"))
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)

    step("starting the local control plane (kube-apiserver + etcd built from Go modules)")
    t0 = time.monotonic()
    plane = ControlPlane(state / "cluster", die_with_parent=True)
    operator: subprocess.Popen[bytes] | None = None
    sim: SimulatorThread | None = None
    try:
        plane.start()
        console.print(f"    apiserver {plane.server} ready in {time.monotonic() - t0:.1f}s")
        kubectl = plane.kubectl
        step(
            "installing CRDs, namespace, RBAC and the operator's ServiceAccount (kubectl apply -k manifests/)"
        )
        kubectl("apply", "--server-side", "-k", str(REPO / "manifests"))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        plane.reset_discovery_cache()

        step("starting a simulated OPNsense appliance (HTTPS with its own CA)")
        api_key, api_secret = secrets.token_hex(16), secrets.token_urlsafe(24)
        creds = Credentials(
            username="root", password=secrets.token_urlsafe(12), api_key=api_key, api_secret=api_secret
        )
        sim = SimulatorThread("opnsense", SimulatorConfig(tls=True, credentials=creds, ssh=False))
        base_url = sim.start()
        port = sim.sim.port
        console.print(f"    OPNsense simulator at {base_url}")

        step("applying the provider dictionary, the Secrets and a VnfAppliance")
        kubectl("apply", "--server-side", "-f", str(REPO / "providers" / "opnsense.yaml"))
        kubectl("create", "namespace", "demo", check=False)
        kubectl(
            "create",
            "secret",
            "generic",
            "edge-fw-api",
            "-n",
            "demo",
            "--from-literal=api_key=" + api_key,
            "--from-literal=api_secret=" + api_secret,
        )
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as ca:
            ca.write(sim.sim.tls_ca_pem or "")
        kubectl("create", "secret", "generic", "edge-fw-ca", "-n", "demo", f"--from-file=ca.crt={ca.name}")
        os.unlink(ca.name)
        appliance = {
            "apiVersion": "vnf.operators.dev/v1alpha1",
            "kind": "VnfAppliance",
            "metadata": {"name": "edge-fw", "namespace": "demo"},
            "spec": {
                "providerRef": {"name": "opnsense"},
                "management": {"host": "127.0.0.1", "ports": {"api": port}},
                "credentialsSecretRef": {"name": "edge-fw-api"},
                "tls": {"caSecretRef": {"name": "edge-fw-ca"}},
                "services": {"firewall_rules": {"policy": "replaced", "items": RULES}},
            },
        }
        kubectl("apply", "--server-side", "-f", "-", input=json.dumps(appliance))

        step("running the operator as ServiceAccount vnf-system/vnf-operator until the appliance is Ready")
        sa_kubeconfig = plane.service_account_kubeconfig(
            "vnf-system", "vnf-operator", state / "operator.kubeconfig"
        )
        log_path = state / "operator.log"
        env = {**os.environ, "KUBECONFIG": str(sa_kubeconfig), "VNF_METRICS_PORT": "0"}
        operator = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "kopf"),
                "run",
                "-m",
                "vnf_operator.controller.main",
                "--all-namespaces",
                "--standalone",
            ],
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        t1 = time.monotonic()
        wait = kubectl(
            "wait",
            "--for=condition=Ready",
            "vnfappliance/edge-fw",
            "-n",
            "demo",
            f"--timeout={int(args.timeout)}s",
            check=False,
        )
        if wait.returncode != 0:
            console.print("[red]the appliance did not become Ready[/]; its status:")
            console.print(kubectl("get", "vnfappliance", "edge-fw", "-n", "demo", "-o", "yaml").stdout)
            console.print("operator log tail:\n" + log_path.read_text(errors="replace")[-3000:])
            return 1
        console.print(f"    Ready after {time.monotonic() - t1:.1f}s")

        step("kubectl get vnf -A")
        console.print(kubectl("get", "vnf", "-A").stdout)
        step("the appliance's status")
        obj = json.loads(kubectl("get", "vnfappliance", "edge-fw", "-n", "demo", "-o", "json").stdout)
        console.print(yaml.safe_dump(obj["status"], sort_keys=False))
        step("the device's resulting firewall configuration (as the simulated OPNsense holds it)")
        print_rules(sim.sim.dump_state())
        return 0
    finally:
        if operator is not None and operator.poll() is None:
            os.killpg(operator.pid, signal.SIGTERM)
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(operator.pid, signal.SIGKILL)
        if sim is not None:
            sim.stop()
        plane.stop()


def print_rules(state: dict[str, Any]) -> None:
    rules = _find_rules(state)
    table = Table(title="OPNsense firewall rules (applied)")
    cols = ["uuid", "sequence", "action", "interface", "protocol", "destination_port", "description"]
    for c in cols:
        table.add_column(c)
    for r in rules:
        table.add_row(*[str(r.get(c, "")) for c in cols])
    console.print(table)


def _find_rules(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The applied (running) filter rules from the simulator's state dump."""
    rules = (state.get("running") or {}).get("filter_rules") or []
    if isinstance(rules, dict):
        return [{"uuid": k, **v} for k, v in rules.items()]
    return [r for r in rules if isinstance(r, dict)]


if __name__ == "__main__":
    raise SystemExit(main())
