"""manifests/monitoring: alert rules (promtool check + unit tests), PrometheusRule, ServiceMonitor, dashboard.

promtool comes from the Debian package `prometheus` (hack/install-deps.sh installs it). Without
it these tests skip on a developer machine and fail in CI (CI is set).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from vnf_operator import metrics as m

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"
RULES = MONITORING / "rules" / "vnf-operator.rules.yaml"
RULE_TESTS = MONITORING / "rules" / "vnf-operator.rules.test.yaml"
DASHBOARD = MONITORING / "grafana" / "vnf-operator.json"
ALERTS = {
    "VnfApplianceNotReady",
    "VnfDriftPersisting",
    "VnfDeviceErrorRateHigh",
    "VnfOperatorNoReconcileActivity",
    "VnfOperatorDown",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "promtool is missing: the Debian package prometheus is installed by hack/install-deps.sh"
            )
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def run_promtool(*args: str, cwd: Path) -> None:
    proc = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(RULES)["groups"] for r in g["rules"] if "alert" in r]


def exposed_metric_names() -> set[str]:
    """Every sample name the operator can expose, with counter and histogram suffixes."""
    names: set[str] = set()
    for family in m.Metrics(build_info=False).registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\bvnfop_[a-z0-9_]+", expr))


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the rules -------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    run_promtool("check", "rules", str(RULES), cwd=RULES.parent)


def test_promtool_unit_tests() -> None:
    run_promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)


def test_the_alerts_are_the_documented_ones() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "for" in rule, rule["alert"]
    doc = (REPO / "docs" / "observability.md").read_text(encoding="utf-8")
    for alert in ALERTS:
        assert alert in doc, f"{alert} is not documented in docs/observability.md"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fires == ALERTS, f"alerts without a firing test: {ALERTS - fires}"
    assert quiet == ALERTS, f"alerts without a must-not-fire test: {ALERTS - quiet}"


def test_alerts_use_only_metrics_the_operator_exposes() -> None:
    exposed = exposed_metric_names()
    for rule in alert_rules():
        used = metric_names_in(rule["expr"])
        assert used <= exposed, f"{rule['alert']}: unknown metrics {used - exposed}"
    assert "vnfop_appliances" in exposed and "vnfop_last_reconcile_timestamp_seconds" in exposed


def test_prometheusrule_groups_are_the_rules_file() -> None:
    rule = load_yaml(MONITORING / "prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == load_yaml(RULES)["groups"]


def test_prometheusrule_is_the_generators_output() -> None:
    gen = _module(MONITORING / "generate.py", "monitoring_generate")
    assert (MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8") == gen.render(), (
        "run: python manifests/monitoring/generate.py"
    )


# -- scraping --------------------------------------------------------------------------------


def _manifest(kind: str, name: str) -> dict[str, Any]:
    for path in sorted((REPO / "manifests").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == kind and doc["metadata"]["name"] == name:
                return doc
    pytest.fail(f"no {kind} {name} in manifests/*.yaml")


def test_servicemonitor_selects_the_metrics_service() -> None:
    monitor = load_yaml(MONITORING / "servicemonitor.yaml")
    service = _manifest("Service", "vnf-operator-metrics")
    assert service["metadata"]["namespace"] == "vnf-system"
    assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert "metrics" in {p["name"] for p in service["spec"]["ports"]}


def test_operator_pod_exposes_the_default_metrics_port() -> None:
    """The Service's targetPort `metrics` must be the port start_metrics_server listens on by default."""
    deployment = _manifest("Deployment", "vnf-operator")
    ports = {
        p["name"]: p["containerPort"]
        for c in deployment["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    }
    assert ports.get("metrics") == m.DEFAULT_METRICS_PORT


def test_kustomization_lists_existing_files() -> None:
    kustomization = load_yaml(MONITORING / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (MONITORING / resource).is_file(), resource
    for generator in kustomization["configMapGenerator"]:
        for file in generator["files"]:
            assert (MONITORING / file).is_file(), file


def test_kustomize_build() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    proc = subprocess.run(
        [kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(proc.stdout))
    assert kinds == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]


# -- the dashboard ---------------------------------------------------------------------------


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "vnf-operator"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "provider"}
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_uses_only_exposed_metrics_and_covers_them() -> None:
    exposed = exposed_metric_names()
    used: set[str] = set()
    for title, expr in dashboard_exprs():
        names = metric_names_in(expr)
        assert names, f"{title}: {expr}"
        assert names <= exposed, f"{title}: unknown metrics {names - exposed}"
        used |= names
    for required in (
        "vnfop_reconcile_total",
        "vnfop_reconcile_errors_total",
        "vnfop_reconcile_time_seconds_bucket",
        "vnfop_device_requests_total",
        "vnfop_device_request_duration_seconds_bucket",
        "vnfop_appliances",
        "vnfop_drift_detected_total",
        "vnfop_planned_changes_total",
        "vnfop_applied_changes_total",
    ):
        assert required in used, f"the dashboard does not show {required}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel query, Grafana variables replaced by sample values."""
    rules = []
    for i, (_, expr) in enumerate(dashboard_exprs()):
        concrete = expr.replace("$__rate_interval", "5m").replace("$provider", ".*")
        assert "$" not in concrete, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    run_promtool("check", "rules", str(path), cwd=tmp_path)
