"""A real Prometheus scrapes the running operator, and PromQL finds the operator's series."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, wait_for

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def metrics_port(operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    proc = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("op-metrics") / "operator.log",
        env={"VNF_METRICS_PORT": str(port)},
    ).start()
    yield port
    proc.stop()


@pytest.fixture(scope="module")
def prometheus(metrics_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (make deps installs Debian's prometheus package)")
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: vnf-operator\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(work / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
    except OSError:
        return []
    result: list[dict[str, Any]] = body.get("data", {}).get("result", [])
    return result


def test_prometheus_scrapes_the_operator(prometheus: str, kubectl: Any, namespace: str) -> None:
    # Something to reconcile: an appliance whose provider does not exist.
    appliance = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": "scraped", "namespace": namespace},
        "spec": {"providerRef": {"name": "nowhere"}, "management": {"host": "127.0.0.1"}},
    }
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(appliance))
    up = wait_for(lambda: query(prometheus, 'up{job="vnf-operator"} == 1'), timeout=60, what="target up")
    assert up[0]["metric"]["job"] == "vnf-operator"
    series = wait_for(
        lambda: query(prometheus, 'vnfop_reconcile_total{controller="vnfappliance",result="success"} > 0'),
        timeout=60,
        what="reconcile counter scraped",
    )
    assert series[0]["metric"]["controller"] == "vnfappliance"
    # Pre-initialised labels exist even at zero, as controller-runtime does.
    assert query(prometheus, 'vnfop_reconcile_total{controller="vnfoperation",result="error"}')
    assert query(prometheus, "vnfop_build_info")
    not_ready = wait_for(
        lambda: query(prometheus, 'vnfop_appliances{condition="Ready",status="False"} > 0'),
        timeout=60,
        what="appliance condition gauge",
    )
    assert float(not_ready[0]["value"][1]) >= 1
