"""Run the real operator (`kopf run`) as a subprocess, as its own ServiceAccount.

A subprocess rather than an in-thread runner: it is what a Deployment runs, it can be killed
with SIGKILL mid-apply, and its output is collected for the suite-wide secret-leak check.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


class OperatorProcess:
    standalone: bool = True
    """False: kopf peering instead (pass `--peering=NAME --priority=N` to start())."""

    def __init__(self, kubeconfig: Path, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "VNF_WORKERS": "8",
            "VNF_METRICS_PORT": "0",
            "VNF_DEFAULT_RESYNC_SECONDS": "300",
            **self.env,
        }
        env.pop("VNF_NAMESPACE", None)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "kopf"),
                "run",
                "-m",
                "vnf_operator.controller.main",
                "--all-namespaces",
                *(["--standalone"] if self.standalone else []),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.3, what: str = "condition"
) -> Any:
    """Poll until `predicate()` is truthy (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def get_json(kubectl: Callable[..., Any], *args: str) -> dict[str, Any]:
    proc = kubectl("get", *args, "-o", "json", check=False)
    if proc.returncode != 0:
        return {}
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def condition(obj: Mapping[str, Any], ctype: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return {}
