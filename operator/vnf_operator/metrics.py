"""Prometheus metrics of the operator, served from kopf's own event loop.

Reconcile metrics mirror controller-runtime's names and labels under the ``vnfop_`` prefix
(``controller_runtime_reconcile_total`` becomes ``vnfop_reconcile_total``), so dashboards and
alerts written for Go operators port with a rename. Domain metrics describe the conversation
with the appliances. See docs/observability.md for the list, the alerts and the dashboard.

Cardinality rules: labels carry controller, provider, service, operation and enumerated
outcomes only; never an object's name or namespace (those belong in logs and events). Every
enumerated label value is checked, so a typo in a caller raises instead of minting a series.

This module imports neither kopf nor the engine: the controller calls it.
"""

from __future__ import annotations

import platform
import time
from collections import Counter as _Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final, Literal, get_args

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.aiohttp import make_aiohttp_handler

__all__ = [
    "APPLIANCE_CONDITIONS",
    "CONTROLLERS",
    "DEFAULT_METRICS_HOST",
    "DEFAULT_METRICS_PORT",
    "PREFIX",
    "BootstrapResult",
    "ChangeKind",
    "CheckResult",
    "ConditionStatus",
    "DeviceOutcome",
    "HealthPhase",
    "Metrics",
    "ReconcileResult",
    "ReconcileTracker",
    "RetryReason",
    "conditions_by_type",
    "default_metrics",
    "make_metrics_app",
    "start_metrics_server",
]

PREFIX: Final = "vnfop"

# The controller label values, controller-runtime style (lower-case kind).
CONTROLLERS: Final = ("vnfprovider", "vnfappliance", "vnfoperation")

# Inside the pod the metrics port must be reachable by Prometheus: all interfaces.
DEFAULT_METRICS_HOST: Final = "0.0.0.0"  # noqa: S104
DEFAULT_METRICS_PORT: Final = 9090

ReconcileResult = Literal["success", "error", "requeue", "requeue_after"]
DeviceOutcome = Literal["success", "error", "timeout", "unreachable", "auth_error"]
ChangeKind = Literal["create", "update", "delete", "move"]
HealthPhase = Literal["network", "api", "service"]  # the dictionary's health check phases
CheckResult = Literal["success", "failure"]
BootstrapResult = Literal["success", "failure", "skipped"]
RetryReason = Literal["timeout", "connection", "server_error", "rate_limited", "other"]
ConditionStatus = Literal["True", "False", "Unknown"]

RECONCILE_RESULTS: Final[tuple[str, ...]] = get_args(ReconcileResult)
DEVICE_OUTCOMES: Final[tuple[str, ...]] = get_args(DeviceOutcome)
CHANGE_KINDS: Final[tuple[str, ...]] = get_args(ChangeKind)
HEALTH_PHASES: Final[tuple[str, ...]] = get_args(HealthPhase)
CHECK_RESULTS: Final[tuple[str, ...]] = get_args(CheckResult)
BOOTSTRAP_RESULTS: Final[tuple[str, ...]] = get_args(BootstrapResult)
RETRY_REASONS: Final[tuple[str, ...]] = get_args(RetryReason)
CONDITION_STATUSES: Final[tuple[str, ...]] = get_args(ConditionStatus)

# Conditions counted in vnfop_appliances. Reconciling and Stalled are "abnormal-true" (kstatus):
# absent means False. For the others, absent means Unknown (API conventions).
APPLIANCE_CONDITIONS: Final = (
    "Ready",
    "Reconciling",
    "Stalled",
    "ProviderResolved",
    "Healthy",
    "Bootstrapped",
    "InSync",
)
_ABNORMAL_TRUE: Final = frozenset({"Reconciling", "Stalled"})

# From milliseconds to minutes: a reconcile talks to devices over the network.
RECONCILE_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0,
)  # fmt: skip
DEVICE_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


def _check(value: str, allowed: tuple[str, ...], label: str) -> str:
    if value not in allowed:
        raise ValueError(f"invalid {label} {value!r}: expected one of {', '.join(allowed)}")
    return value


def _name(value: str, label: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{label} label must be a non-empty string")
    return value


def conditions_by_type(status: Mapping[str, Any] | None) -> dict[str, str]:
    """``{type: status}`` of an object's ``status.conditions`` (malformed entries ignored)."""
    out: dict[str, str] = {}
    for cond in (status or {}).get("conditions") or ():
        if isinstance(cond, Mapping) and isinstance(cond.get("type"), str):
            value = cond.get("status")
            out[cond["type"]] = value if value in CONDITION_STATUSES else "Unknown"
    return out


@dataclass
class ReconcileTracker:
    """Handed out by :meth:`Metrics.reconcile`; the caller says how the reconcile ended.

    ``result`` defaults to ``success`` when the block returns and ``error`` when it raises,
    unless the caller set it (for example ``requeue_after`` before raising a temporary error).
    ``terminal`` marks an error that retrying will not fix (counted in the terminal errors too).
    """

    result: ReconcileResult | None = None
    terminal: bool = False


class Metrics:
    """All vnfop_* metrics, in a registry of their own (never the process-global one)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        controllers: Iterable[str] = CONTROLLERS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        build_info: bool = True,
    ) -> None:
        # `*_created` series double every counter and mean nothing to controller-runtime users.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._wall_clock = wall_clock
        r = self.registry
        p = PREFIX

        # controller-runtime compatible.
        self.reconcile_total = Counter(
            f"{p}_reconcile_total",
            "Total number of reconciliations per controller and result.",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            f"{p}_reconcile_errors_total",
            "Total number of reconciliation errors per controller.",
            ["controller"],
            registry=r,
        )
        self.terminal_reconcile_errors = Counter(
            f"{p}_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors (retrying will not help) per controller.",
            ["controller"],
            registry=r,
        )
        self.reconcile_time = Histogram(
            f"{p}_reconcile_time_seconds",
            "Length of time per reconciliation per controller.",
            ["controller"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.active_workers = Gauge(
            f"{p}_active_workers",
            "Number of currently used workers per controller.",
            ["controller"],
            registry=r,
        )
        self.max_concurrent_reconciles = Gauge(
            f"{p}_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller.",
            ["controller"],
            registry=r,
        )
        self.workqueue_depth = Gauge(
            f"{p}_workqueue_depth",
            "Current depth of the work queue.",
            ["name"],
            registry=r,
        )
        self.last_reconcile = Gauge(
            f"{p}_last_reconcile_timestamp_seconds",
            "Unix time of the last finished reconcile per controller (operator start until the first).",
            ["controller"],
            registry=r,
        )

        self.status_writes = Counter(
            f"{p}_status_writes_total",
            "Status patches per controller: written, or skipped because only times would change.",
            ["controller", "result"],
            registry=r,
        )

        # Domain.
        self.device_requests = Counter(
            f"{p}_device_requests_total",
            "Requests sent to appliances, by outcome.",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.device_request_duration = Histogram(
            f"{p}_device_request_duration_seconds",
            "Duration of requests to appliances.",
            ["provider", "operation"],
            buckets=DEVICE_BUCKETS,
            registry=r,
        )
        self.device_retries = Counter(
            f"{p}_device_retries_total",
            "Retried requests to appliances, by reason.",
            ["provider", "reason"],
            registry=r,
        )
        self.planned_changes = Counter(
            f"{p}_planned_changes_total",
            "Changes planned by diffing desired and actual items.",
            ["provider", "service", "kind"],
            registry=r,
        )
        self.applied_changes = Counter(
            f"{p}_applied_changes_total",
            "Changes applied to appliances.",
            ["provider", "service", "kind"],
            registry=r,
        )
        self.drift_detected = Counter(
            f"{p}_drift_detected_total",
            "Resyncs that found an appliance drifted from the desired state.",
            ["provider", "service"],
            registry=r,
        )
        self.health_checks = Counter(
            f"{p}_health_checks_total",
            "Health checks run against appliances.",
            ["provider", "phase", "result"],
            registry=r,
        )
        self.bootstraps = Counter(
            f"{p}_bootstrap_total",
            "Bootstrap runs against appliances.",
            ["provider", "result"],
            registry=r,
        )
        self.appliances = Gauge(
            f"{p}_appliances",
            "Number of VnfAppliances per condition type and status.",
            ["condition", "status"],
            registry=r,
        )
        self.build = Gauge(
            f"{p}_build_info",
            "Build information; the value is always 1.",
            ["version", "python", "kopf"],
            registry=r,
        )

        for controller in controllers:
            self.init_controller(controller)
        for cond in APPLIANCE_CONDITIONS:
            for st in CONDITION_STATUSES:
                self.appliances.labels(cond, st).set(0)
        if build_info:
            self.set_build_info()

    # -- reconciles -------------------------------------------------------------------------

    def init_controller(self, controller: str, *, max_concurrent: int | None = None) -> None:
        """Create every series of one controller at 0, as controller-runtime does."""
        _name(controller, "controller")
        for result in RECONCILE_RESULTS:
            self.reconcile_total.labels(controller, result)
        self.reconcile_errors.labels(controller)
        self.terminal_reconcile_errors.labels(controller)
        self.reconcile_time.labels(controller)
        self.active_workers.labels(controller).set(0)
        for result in ("written", "skipped"):
            self.status_writes.labels(controller, result)
        if max_concurrent is not None:
            self.set_max_concurrent_reconciles(controller, max_concurrent)
        # "Never reconciled" counts from the operator's start, so an operator whose watches never
        # delivered anything still trips VnfOperatorNoReconcileActivity.
        self.last_reconcile.labels(controller).set(self._wall_clock())

    def observe_reconcile(
        self, controller: str, result: ReconcileResult, seconds: float, *, terminal: bool = False
    ) -> None:
        """Record one finished reconcile."""
        _name(controller, "controller")
        _check(result, RECONCILE_RESULTS, "reconcile result")
        if terminal and result != "error":
            raise ValueError("only an error can be terminal")
        self.reconcile_total.labels(controller, result).inc()
        if result == "error":
            self.reconcile_errors.labels(controller).inc()
            if terminal:
                self.terminal_reconcile_errors.labels(controller).inc()
        self.reconcile_time.labels(controller).observe(max(seconds, 0.0))
        self.last_reconcile.labels(controller).set(self._wall_clock())

    @contextmanager
    def reconcile(self, controller: str) -> Iterator[ReconcileTracker]:
        """Time and count the enclosed reconcile and hold an active worker meanwhile.

        Works around sync and async code alike (it only brackets the block)::

            with metrics.reconcile("vnfappliance") as rec:
                outcome = await reconcile_appliance(...)
                if outcome.retry_after:
                    rec.result = "requeue_after"
        """
        _name(controller, "controller")
        tracker = ReconcileTracker()
        workers = self.active_workers.labels(controller)
        workers.inc()
        start = self._clock()
        raised = False
        try:
            yield tracker
        except BaseException:
            raised = True
            raise
        finally:
            workers.dec()
            default: ReconcileResult = "error" if raised else "success"
            result = tracker.result if tracker.result is not None else default
            self.observe_reconcile(
                controller, result, self._clock() - start, terminal=tracker.terminal and result == "error"
            )

    def set_max_concurrent_reconciles(self, controller: str, value: int) -> None:
        self.max_concurrent_reconciles.labels(_name(controller, "controller")).set(value)

    def set_workqueue_depth(self, name: str, depth: int) -> None:
        self.workqueue_depth.labels(_name(name, "name")).set(depth)

    def status_write(self, controller: str, *, written: bool) -> None:
        self.status_writes.labels(_name(controller, "controller"), "written" if written else "skipped").inc()

    # -- the conversation with appliances ----------------------------------------------------

    def device_request(self, provider: str, operation: str, outcome: DeviceOutcome, seconds: float) -> None:
        """One request (HTTP call or CLI command batch) to an appliance."""
        _name(provider, "provider")
        _name(operation, "operation")
        _check(outcome, DEVICE_OUTCOMES, "device outcome")
        self.device_requests.labels(provider, operation, outcome).inc()
        self.device_request_duration.labels(provider, operation).observe(max(seconds, 0.0))

    def device_retry(self, provider: str, reason: RetryReason) -> None:
        self.device_retries.labels(
            _name(provider, "provider"), _check(reason, RETRY_REASONS, "retry reason")
        ).inc()

    def planned_change(self, provider: str, service: str, kind: ChangeKind, count: int = 1) -> None:
        self._change(self.planned_changes, provider, service, kind, count)

    def applied_change(self, provider: str, service: str, kind: ChangeKind, count: int = 1) -> None:
        self._change(self.applied_changes, provider, service, kind, count)

    def planned_changes_from(self, provider: str, service: str, kinds: Iterable[ChangeKind]) -> None:
        """Count a whole plan: one entry per planned change."""
        for kind, n in _Tally(kinds).items():
            self.planned_change(provider, service, kind, n)

    def _change(self, counter: Counter, provider: str, service: str, kind: str, count: int) -> None:
        if count < 0:
            raise ValueError("a change count cannot be negative")
        labels = counter.labels(
            _name(provider, "provider"), _name(service, "service"), _check(kind, CHANGE_KINDS, "change kind")
        )
        if count:
            labels.inc(count)

    def drift(self, provider: str, service: str) -> None:
        """A resync found the service on an appliance different from the desired state."""
        self.drift_detected.labels(_name(provider, "provider"), _name(service, "service")).inc()

    def health_check(self, provider: str, phase: HealthPhase, result: CheckResult) -> None:
        self.health_checks.labels(
            _name(provider, "provider"),
            _check(phase, HEALTH_PHASES, "health phase"),
            _check(result, CHECK_RESULTS, "health result"),
        ).inc()

    def bootstrap(self, provider: str, result: BootstrapResult) -> None:
        self.bootstraps.labels(
            _name(provider, "provider"), _check(result, BOOTSTRAP_RESULTS, "bootstrap result")
        ).inc()

    # -- inventory ---------------------------------------------------------------------------

    def set_appliance_conditions(self, appliances: Iterable[Mapping[str, str]]) -> None:
        """Set vnfop_appliances from every appliance's ``{condition type: status}``.

        Call with all appliances at once (for example from the cache after each reconcile):
        every (condition, status) series is rewritten, zeros included, so none goes stale.
        """
        counts = {(c, s): 0 for c in APPLIANCE_CONDITIONS for s in CONDITION_STATUSES}
        for conds in appliances:
            for cond in APPLIANCE_CONDITIONS:
                value = conds.get(cond)
                if value not in CONDITION_STATUSES:
                    value = "False" if cond in _ABNORMAL_TRUE else "Unknown"
                counts[(cond, value)] += 1
        for (cond, st), n in counts.items():
            self.appliances.labels(cond, st).set(n)

    def set_build_info(
        self, version: str | None = None, python: str | None = None, kopf: str | None = None
    ) -> None:
        self.build.clear()
        self.build.labels(
            version or _dist_version("vnf-operator"),
            python or platform.python_version(),
            kopf or _dist_version("kopf"),
        ).set(1)


def _dist_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


_DEFAULT: Metrics | None = None


def default_metrics() -> Metrics:
    """The operator's process-wide :class:`Metrics`, created on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Metrics()
    return _DEFAULT


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_metrics_app(metrics: Metrics | None = None) -> web.Application:
    """An aiohttp application serving ``/metrics`` (Prometheus or OpenMetrics) and ``/healthz``."""
    m = metrics if metrics is not None else default_metrics()
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(m.registry))
    app.router.add_get("/healthz", _healthz)
    return app


async def start_metrics_server(
    host: str = DEFAULT_METRICS_HOST, port: int = DEFAULT_METRICS_PORT, metrics: Metrics | None = None
) -> web.AppRunner:
    """Serve the metrics from the running event loop (kopf's); stop with ``await runner.cleanup()``.

    Start it in ``@kopf.on.startup`` and clean it up in ``@kopf.on.cleanup``.
    """
    runner = web.AppRunner(make_metrics_app(metrics), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
