"""vnf_operator.metrics: names, labels, pre-initialisation, the typed API and the HTTP handlers."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vnf_operator import metrics as m
from vnf_operator.metrics import Metrics

pytestmark = pytest.mark.unit

# name -> (type, labels): the contract with dashboards and alerts (docs/observability.md).
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "vnfop_reconcile": ("counter", {"controller", "result"}),
    "vnfop_reconcile_errors": ("counter", {"controller"}),
    "vnfop_terminal_reconcile_errors": ("counter", {"controller"}),
    "vnfop_reconcile_time_seconds": ("histogram", {"controller"}),
    "vnfop_active_workers": ("gauge", {"controller"}),
    "vnfop_max_concurrent_reconciles": ("gauge", {"controller"}),
    "vnfop_workqueue_depth": ("gauge", {"name"}),
    "vnfop_status_writes": ("counter", {"controller", "result"}),
    "vnfop_last_reconcile_timestamp_seconds": ("gauge", {"controller"}),
    "vnfop_device_requests": ("counter", {"provider", "operation", "outcome"}),
    "vnfop_device_request_duration_seconds": ("histogram", {"provider", "operation"}),
    "vnfop_device_retries": ("counter", {"provider", "reason"}),
    "vnfop_planned_changes": ("counter", {"provider", "service", "kind"}),
    "vnfop_applied_changes": ("counter", {"provider", "service", "kind"}),
    "vnfop_drift_detected": ("counter", {"provider", "service"}),
    "vnfop_health_checks": ("counter", {"provider", "phase", "result"}),
    "vnfop_bootstrap": ("counter", {"provider", "result"}),
    "vnfop_appliances": ("gauge", {"condition", "status"}),
    "vnfop_build_info": ("gauge", {"version", "python", "kopf"}),
}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def metrics(clock: FakeClock, wall: FakeClock) -> Metrics:
    return Metrics(clock=clock, wall_clock=wall)


def value(mt: Metrics, name: str, **labels: str) -> float | None:
    return mt.registry.get_sample_value(name, labels)


def samples(mt: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(mt.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# -- names and labels ------------------------------------------------------------------------


def test_families_names_types_and_labels(metrics: Metrics) -> None:
    metrics.device_request("opnsense", "list", "success", 0.1)
    metrics.device_retry("opnsense", "timeout")
    metrics.planned_change("opnsense", "aliases", "create")
    metrics.applied_change("opnsense", "aliases", "create")
    metrics.drift("opnsense", "aliases")
    metrics.health_check("opnsense", "api", "success")
    metrics.bootstrap("opnsense", "success")
    metrics.set_workqueue_depth("vnf-operator", 3)
    metrics.set_max_concurrent_reconciles("vnfappliance", 4)
    metrics.status_write("vnfappliance", written=False)
    families = {f.name: f for f in metrics.registry.collect()}
    assert set(families) == set(EXPECTED)
    for name, (kind, labels) in EXPECTED.items():
        family = families[name]
        assert family.type == kind, name
        assert family.samples, f"{name} has no sample"
        for s in family.samples:
            assert set(s.labels) - {"le"} == labels, (name, s.labels)


def test_no_created_series_and_no_object_names(metrics: Metrics) -> None:
    metrics.device_request("opnsense", "list", "success", 0.1)
    text = generate_latest(metrics.registry).decode()
    assert "_created" not in text
    allowed = {"controller", "result", "name", "provider", "operation", "outcome", "reason", "service"}
    allowed |= {"kind", "phase", "condition", "status", "version", "python", "kopf", "le"}
    for family in metrics.registry.collect():
        for s in family.samples:
            assert set(s.labels) <= allowed, s
            assert "namespace" not in s.labels and "appliance" not in s.labels


def test_reconcile_series_are_pre_initialised_like_controller_runtime(
    metrics: Metrics, wall: FakeClock
) -> None:
    for controller in m.CONTROLLERS:
        for result in ("success", "error", "requeue", "requeue_after"):
            assert value(metrics, "vnfop_reconcile_total", controller=controller, result=result) == 0
        assert value(metrics, "vnfop_reconcile_errors_total", controller=controller) == 0
        assert value(metrics, "vnfop_terminal_reconcile_errors_total", controller=controller) == 0
        assert value(metrics, "vnfop_reconcile_time_seconds_count", controller=controller) == 0
        assert value(metrics, "vnfop_active_workers", controller=controller) == 0
        # "never reconciled" counts from the operator's start
        assert value(metrics, "vnfop_last_reconcile_timestamp_seconds", controller=controller) == wall.now


def test_appliance_gauge_starts_at_zero_for_every_condition_and_status(metrics: Metrics) -> None:
    for cond in m.APPLIANCE_CONDITIONS:
        for st in ("True", "False", "Unknown"):
            assert value(metrics, "vnfop_appliances", condition=cond, status=st) == 0


# -- reconciles ------------------------------------------------------------------------------


def test_observe_reconcile_counts_times_and_stamps(metrics: Metrics, wall: FakeClock) -> None:
    wall.now += 60
    metrics.observe_reconcile("vnfappliance", "success", 1.5)
    metrics.observe_reconcile("vnfappliance", "error", 0.2)
    metrics.observe_reconcile("vnfappliance", "error", 0.3, terminal=True)
    metrics.observe_reconcile("vnfappliance", "requeue_after", 0.1)
    assert value(metrics, "vnfop_reconcile_total", controller="vnfappliance", result="success") == 1
    assert value(metrics, "vnfop_reconcile_total", controller="vnfappliance", result="error") == 2
    assert value(metrics, "vnfop_reconcile_total", controller="vnfappliance", result="requeue_after") == 1
    assert value(metrics, "vnfop_reconcile_errors_total", controller="vnfappliance") == 2
    assert value(metrics, "vnfop_terminal_reconcile_errors_total", controller="vnfappliance") == 1
    assert value(metrics, "vnfop_reconcile_time_seconds_count", controller="vnfappliance") == 4
    assert value(metrics, "vnfop_reconcile_time_seconds_sum", controller="vnfappliance") == pytest.approx(2.1)
    assert value(metrics, "vnfop_reconcile_time_seconds_bucket", controller="vnfappliance", le="1.0") == 3
    assert value(metrics, "vnfop_last_reconcile_timestamp_seconds", controller="vnfappliance") == wall.now
    assert value(metrics, "vnfop_reconcile_total", controller="vnfprovider", result="success") == 0


def test_reconcile_context_success(metrics: Metrics, clock: FakeClock) -> None:
    with metrics.reconcile("vnfprovider"):
        assert value(metrics, "vnfop_active_workers", controller="vnfprovider") == 1
        clock.now += 2.5
    assert value(metrics, "vnfop_active_workers", controller="vnfprovider") == 0
    assert value(metrics, "vnfop_reconcile_total", controller="vnfprovider", result="success") == 1
    assert value(metrics, "vnfop_reconcile_time_seconds_sum", controller="vnfprovider") == 2.5


def test_reconcile_context_error_and_terminal(metrics: Metrics) -> None:
    with pytest.raises(RuntimeError), metrics.reconcile("vnfappliance"):
        raise RuntimeError("device said no")
    with pytest.raises(ValueError), metrics.reconcile("vnfappliance") as rec:
        rec.terminal = True
        raise ValueError("invalid spec")
    assert value(metrics, "vnfop_active_workers", controller="vnfappliance") == 0
    assert value(metrics, "vnfop_reconcile_total", controller="vnfappliance", result="error") == 2
    assert value(metrics, "vnfop_reconcile_errors_total", controller="vnfappliance") == 2
    assert value(metrics, "vnfop_terminal_reconcile_errors_total", controller="vnfappliance") == 1


def test_reconcile_context_caller_sets_the_result(metrics: Metrics) -> None:
    with pytest.raises(TimeoutError), metrics.reconcile("vnfappliance") as rec:
        rec.result = "requeue_after"  # a temporary error: kopf retries after a delay
        raise TimeoutError
    with metrics.reconcile("vnfappliance") as rec:
        rec.result = "requeue"
    assert value(metrics, "vnfop_reconcile_total", controller="vnfappliance", result="requeue_after") == 1
    assert value(metrics, "vnfop_reconcile_total", controller="vnfappliance", result="requeue") == 1
    assert value(metrics, "vnfop_reconcile_errors_total", controller="vnfappliance") == 0


async def test_reconcile_context_around_async_code_counts_concurrent_workers(metrics: Metrics) -> None:
    all_inside = asyncio.Event()
    release = asyncio.Event()
    entered = 0

    async def work() -> None:
        nonlocal entered
        with metrics.reconcile("vnfappliance"):
            entered += 1
            if entered == 3:
                all_inside.set()
            await release.wait()

    tasks = [asyncio.create_task(work()) for _ in range(3)]
    await all_inside.wait()
    assert value(metrics, "vnfop_active_workers", controller="vnfappliance") == 3
    release.set()
    await asyncio.gather(*tasks)
    assert value(metrics, "vnfop_active_workers", controller="vnfappliance") == 0
    assert value(metrics, "vnfop_reconcile_total", controller="vnfappliance", result="success") == 3


def test_a_new_controller_can_be_initialised(metrics: Metrics) -> None:
    metrics.init_controller("vnfsecret", max_concurrent=2)
    assert value(metrics, "vnfop_reconcile_total", controller="vnfsecret", result="requeue") == 0
    assert value(metrics, "vnfop_max_concurrent_reconciles", controller="vnfsecret") == 2


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda mt: mt.observe_reconcile("vnfappliance", "ok", 1.0),
        lambda mt: mt.observe_reconcile("vnfappliance", "success", 1.0, terminal=True),
        lambda mt: mt.observe_reconcile("", "success", 1.0),
        lambda mt: mt.device_request("opnsense", "list", "failed", 1.0),
        lambda mt: mt.device_request("", "list", "success", 1.0),
        lambda mt: mt.device_retry("opnsense", "because"),
        lambda mt: mt.planned_change("opnsense", "aliases", "replace"),
        lambda mt: mt.applied_change("opnsense", "aliases", "create", -1),
        lambda mt: mt.health_check("opnsense", "boot", "success"),
        lambda mt: mt.health_check("opnsense", "api", "ok"),
        lambda mt: mt.bootstrap("opnsense", "done"),
        lambda mt: mt.drift("opnsense", ""),
    ],
)
def test_invalid_label_values_raise_instead_of_minting_series(metrics: Metrics, call: Any) -> None:
    before = samples(metrics)
    with pytest.raises(ValueError):
        call(metrics)
    assert samples(metrics) == before


# -- domain ----------------------------------------------------------------------------------


def test_device_metrics(metrics: Metrics) -> None:
    metrics.device_request("opnsense", "list", "success", 0.02)
    metrics.device_request("opnsense", "list", "timeout", 10.0)
    metrics.device_request("opnsense", "create", "error", 0.5)
    metrics.device_retry("opnsense", "timeout")
    metrics.device_retry("opnsense", "timeout")
    assert (
        value(
            metrics, "vnfop_device_requests_total", provider="opnsense", operation="list", outcome="timeout"
        )
        == 1
    )
    assert (
        value(metrics, "vnfop_device_request_duration_seconds_count", provider="opnsense", operation="list")
        == 2
    )
    assert (
        value(metrics, "vnfop_device_request_duration_seconds_sum", provider="opnsense", operation="list")
        == 10.02
    )
    assert value(metrics, "vnfop_device_retries_total", provider="opnsense", reason="timeout") == 2


def test_changes_drift_health_bootstrap(metrics: Metrics) -> None:
    metrics.planned_changes_from("vyos", "routes", ["create", "create", "delete", "move"])
    metrics.applied_change("vyos", "routes", "create", 2)
    metrics.applied_change("vyos", "routes", "update", 0)
    metrics.drift("vyos", "routes")
    metrics.health_check("vyos", "network", "failure")
    metrics.bootstrap("vyos", "skipped")
    assert (
        value(metrics, "vnfop_planned_changes_total", provider="vyos", service="routes", kind="create") == 2
    )
    assert value(metrics, "vnfop_planned_changes_total", provider="vyos", service="routes", kind="move") == 1
    assert (
        value(metrics, "vnfop_applied_changes_total", provider="vyos", service="routes", kind="create") == 2
    )
    assert (
        value(metrics, "vnfop_applied_changes_total", provider="vyos", service="routes", kind="update") == 0
    )
    assert value(metrics, "vnfop_drift_detected_total", provider="vyos", service="routes") == 1
    assert (
        value(metrics, "vnfop_health_checks_total", provider="vyos", phase="network", result="failure") == 1
    )
    assert value(metrics, "vnfop_bootstrap_total", provider="vyos", result="skipped") == 1


def test_appliance_counts_are_rewritten_whole(metrics: Metrics) -> None:
    metrics.set_appliance_conditions(
        [
            {"Ready": "True", "Healthy": "True", "InSync": "True"},
            {"Ready": "False", "Stalled": "True", "InSync": "False"},
            {"Ready": "Unknown", "Reconciling": "True"},
            {},  # no status yet
        ]
    )
    v = lambda c, s: value(metrics, "vnfop_appliances", condition=c, status=s)  # noqa: E731
    assert (v("Ready", "True"), v("Ready", "False"), v("Ready", "Unknown")) == (1, 1, 2)
    # Reconciling/Stalled are abnormal-true: absent means False; other conditions: Unknown.
    assert (v("Reconciling", "True"), v("Reconciling", "False"), v("Reconciling", "Unknown")) == (1, 3, 0)
    assert (v("Stalled", "True"), v("Stalled", "False")) == (1, 3)
    assert (v("InSync", "True"), v("InSync", "False"), v("InSync", "Unknown")) == (1, 1, 2)
    assert v("Bootstrapped", "Unknown") == 4
    metrics.set_appliance_conditions([])
    assert v("Ready", "False") == 0 and v("Ready", "Unknown") == 0 and v("Reconciling", "False") == 0


def test_conditions_by_type() -> None:
    status = {
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Stalled", "status": "maybe"},
            {"status": "True"},
            "garbage",
        ]
    }
    assert m.conditions_by_type(status) == {"Ready": "True", "Stalled": "Unknown"}
    assert m.conditions_by_type(None) == {}
    assert m.conditions_by_type({}) == {}


def test_build_info_has_exactly_one_series(metrics: Metrics) -> None:
    metrics.set_build_info("1.2.3", "3.11.9", "1.45.2")
    builds = [s for s in next(f for f in metrics.registry.collect() if f.name == "vnfop_build_info").samples]
    assert len(builds) == 1
    assert builds[0].labels == {"version": "1.2.3", "python": "3.11.9", "kopf": "1.45.2"}
    assert builds[0].value == 1


def test_default_build_info_reads_installed_versions() -> None:
    from importlib import metadata

    mt = Metrics()
    (sample,) = next(f for f in mt.registry.collect() if f.name == "vnfop_build_info").samples
    assert sample.labels["kopf"] == metadata.version("kopf")
    assert sample.labels["version"] == metadata.version("vnf-operator")


def test_instances_do_not_share_state() -> None:
    a, b = Metrics(), Metrics()
    a.observe_reconcile("vnfappliance", "success", 1.0)
    assert value(b, "vnfop_reconcile_total", controller="vnfappliance", result="success") == 0
    assert m.default_metrics() is m.default_metrics()


# -- exposition ------------------------------------------------------------------------------


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "promtool is missing: the Debian package prometheus is installed by hack/install-deps.sh"
            )
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def test_exposition_passes_promtool_lint(metrics: Metrics) -> None:
    with metrics.reconcile("vnfappliance"):
        pass
    metrics.device_request("opnsense", "list", "success", 0.1)
    metrics.device_retry("opnsense", "rate_limited")
    metrics.planned_change("opnsense", "aliases", "update")
    metrics.applied_change("opnsense", "aliases", "update")
    metrics.drift("opnsense", "aliases")
    metrics.health_check("opnsense", "service", "success")
    metrics.bootstrap("opnsense", "failure")
    metrics.set_workqueue_depth("vnf-operator", 0)
    metrics.set_max_concurrent_reconciles("vnfappliance", 4)
    proc = subprocess.run(
        [_promtool(), "check", "metrics"],
        input=generate_latest(metrics.registry),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


async def _get(app: web.Application, path: str, accept: str = "") -> web.Response:
    headers = {"Accept": accept} if accept else {}
    request = make_mocked_request("GET", path, headers=headers, app=app)
    match = await app.router.resolve(request)
    response = await match.handler(request)
    assert isinstance(response, web.Response)
    return response


async def test_metrics_endpoint_serves_the_registry(metrics: Metrics) -> None:
    metrics.observe_reconcile("vnfappliance", "success", 0.5)
    response = await _get(m.make_metrics_app(metrics), "/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert isinstance(response.body, bytes)
    body = response.body.decode()
    assert 'vnfop_reconcile_total{controller="vnfappliance",result="success"} 1.0' in body


async def test_metrics_endpoint_negotiates_openmetrics(metrics: Metrics) -> None:
    response = await _get(m.make_metrics_app(metrics), "/metrics", accept="application/openmetrics-text")
    assert response.content_type == "application/openmetrics-text"
    assert isinstance(response.body, bytes)
    body = response.body.decode()
    assert body.rstrip().endswith("# EOF")


async def test_healthz(metrics: Metrics) -> None:
    response = await _get(m.make_metrics_app(metrics), "/healthz")
    assert response.status == 200
    assert response.text == "ok\n"
