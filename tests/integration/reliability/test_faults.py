"""Device faults: the operator converges through them, with no duplicate, no lost item, no spin.

Each scenario gets its own simulated OPNsense with one fault knob turned (docs: the simulator's
/_sim/faults): 10 % 5xx, 5 % hangs past the client's read timeout, 429 bursts with Retry-After,
5 % dropped connections, 2 s latency on every request, a reboot in the middle of the apply, and
all of them at once. All scenarios run side by side against one operator. Each run:

1. two foreign rules exist on the device (made by someone else: they must survive `replaced`);
2. faults on; an appliance with N rules is applied; it must become Ready;
3. an edit (two rules removed, one changed, one added) is applied; Ready again;
4. faults off; the device must hold each desired rule exactly once, in config.xml and in the
   running (applied) rule set, with the right values, and both foreign rules;
5. the operator must not spin: device requests are bounded, and after convergence the device
   sees (almost) nothing for a quiet period; transient failures are counted in
   `vnfop_device_requests_total{outcome="unreachable"}` and retries are logged with their delay.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, condition
from tests.integration.reliability import lab

pytestmark = pytest.mark.integration

RETRY_LOG = re.compile(r"retrying after transient error \(attempt \d+ of \d+, in ([0-9.]+)s\)")
QUIET_SECONDS = 5.0
QUIET_MAX_REQUESTS = 2

SCENARIOS: dict[str, dict[str, Any]] = {
    "5xx 10%": {"error_rate": 0.10},
    "timeouts 5%": {"timeout_rate": 0.05, "hang_s": 30},
    "429 bursts + Retry-After": {
        "rate_limit_burst": 4,
        "rate_limit_requests": 3,
        "rate_limit_window_s": 1,
        "retry_after_s": 1,
    },
    "drops 5%": {"drop_rate": 0.05},
    "latency 2s": {"latency_ms": 2000},  # 1 s in the reduced run (see reduced())
    "restart mid-apply": {},
    "all at once": {
        "error_rate": 0.10,
        "timeout_rate": 0.05,
        "hang_s": 30,
        "drop_rate": 0.05,
        "latency_ms": 500,
        "rate_limit_burst": 3,
    },
}
RESTARTS = {"restart mid-apply", "all at once"}


def reduced() -> dict[str, dict[str, Any]]:
    """`make test` sizes: the same faults, with 1 s instead of 2 s of latency per request."""
    out = {k: dict(v) for k, v in SCENARIOS.items()}
    out["latency 2s"]["latency_ms"] = 1000
    return {("latency 1s" if k == "latency 2s" else k): v for k, v in out.items()}


@dataclass
class Run:
    scenario: str
    name: str
    device: lab.Device
    knobs: dict[str, Any]
    desired: list[dict[str, Any]]
    foreign: dict[str, str] = field(default_factory=dict)
    restart_at_creates: int | None = None
    restarted: threading.Event = field(default_factory=threading.Event)

    def edit(self) -> None:
        """Remove two rules, change one, add one (deletes, an update and a create under faults)."""
        rules = [dict(r) for r in self.desired[2:]]
        rules[0]["destination_port"] = "8443"
        rules.append({**rules[-1], "description": f"{self.name}-added", "destination_port": "9999"})
        self.desired = rules


@dataclass
class Outcome:
    converged: bool
    checks: list[lab.DeviceCheck]
    requests: dict[str, int]
    notes: list[str]


def _restart_watcher(runs: list[Run], stop: threading.Event) -> None:
    """Reboot a device once its N-th create arrived: the apply is cut in the middle."""
    while not stop.is_set():
        for run in runs:
            if run.restart_at_creates is None or run.restarted.is_set():
                continue
            with contextlib.suppress(Exception):
                if run.device.count("POST", "/api/firewall/filter/addRule") >= run.restart_at_creates:
                    run.device.restart()
                    run.restarted.set()
        stop.wait(0.05)


def run_scenarios(
    kubectl: Any,
    ns: str,
    operator: OperatorProcess,
    provider: str,
    *,
    rules: int,
    scenarios: dict[str, dict[str, Any]],
    seed: int,
    timeout: float,
) -> dict[str, Outcome]:
    rng = random.Random(seed)
    runs: list[Run] = []
    devices = []
    try:
        for i, (scenario, knobs) in enumerate(scenarios.items()):
            device = lab.Device(scenario).start()
            devices.append(device)
            name = f"fw{i}"
            run = Run(scenario, name, device, dict(knobs), lab.make_rules(rules, prefix=name))
            run.foreign = device.add_foreign_rules([f"foreign {name} a", f"foreign {name} b"])
            if scenario in RESTARTS:
                run.restart_at_creates = rng.randint(2, max(2, rules - 2))
            runs.append(run)
        objs: list[dict[str, Any]] = []
        for run in runs:
            run.device.reset_stats()
            if run.knobs:
                run.device.set_faults(seed=rng.randrange(2**31), **run.knobs)
            objs += lab.secret_objects(ns, run.name, run.device)
            objs.append(lab.appliance_object(ns, run.name, run.device, run.desired, provider=provider))
        stop = threading.Event()
        watcher = threading.Thread(target=_restart_watcher, args=(runs, stop), daemon=True)
        watcher.start()
        try:
            lab.apply(kubectl, objs)
            names = [r.name for r in runs]
            lab.wait_ready(kubectl, ns, names, timeout=timeout)
            for run in runs:
                run.edit()
            lab.apply(
                kubectl,
                [lab.appliance_object(ns, r.name, r.device, r.desired, provider=provider) for r in runs],
            )
            objs_after = lab.wait_ready(kubectl, ns, names, timeout=timeout)
        finally:
            stop.set()
            watcher.join(5)
        outcomes: dict[str, Outcome] = {}
        for run in runs:
            run.device.clear_faults()
        quiet_before = {r.name: r.device.total_requests() for r in runs}
        time.sleep(QUIET_SECONDS)  # an observation window, not a timing assertion
        for run in runs:
            stats = run.device.stats()
            check = lab.check_device(run.device, ns, run.name, run.desired, foreign=run.foreign)
            notes = []
            if run.restart_at_creates is not None:
                notes.append("restarted" if run.restarted.is_set() else "restart never triggered")
            obj = objs_after[run.name]
            assert condition(obj, "InSync").get("status") == "True", lab.summary({run.name: obj})
            outcomes[run.scenario] = Outcome(
                converged=True,
                checks=[check],
                requests={
                    "total": int(stats["total"]),
                    "quiet": int(stats["total"]) - quiet_before[run.name],
                    **{f"fault:{k}": int(v) for k, v in stats["faults"].items()},
                },
                notes=notes,
            )
        return outcomes
    finally:
        for d in devices:
            d.stop()


def request_budget(rules: int) -> int:
    """Generous ceiling on device requests for two converging applies of `rules` rules.

    The fault-free minimum is about 2 x (3 health + list + changes + commit + verify list) ≈ 2N+14;
    retries (at most 5 attempts per request) and requeued reconciles stay far below 10x that.
    A spinning operator (a tight retry or requeue loop) blows through it within seconds.
    """
    return 10 * (2 * rules + 14)


def assert_outcomes(outcomes: dict[str, Outcome], rules: int) -> None:
    problems = []
    for scenario, out in outcomes.items():
        for check in out.checks:
            if not check.ok:
                problems.append(f"[{scenario}] {check}")
        if out.requests["total"] > request_budget(rules):
            problems.append(f"[{scenario}] {out.requests['total']} device requests: the operator spins")
        if out.requests["quiet"] > QUIET_MAX_REQUESTS:
            problems.append(
                f"[{scenario}] {out.requests['quiet']} device requests in the {QUIET_SECONDS:g}s after "
                "convergence: the operator keeps polling"
            )
        if "restart never triggered" in out.notes:
            problems.append(f"[{scenario}] the device restart was never triggered")
    assert not problems, "\n".join(problems)


@pytest.fixture
def ns(kubectl: Any, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    yield namespace
    lab.purge(kubectl, namespace)


def test_converges_through_device_faults(
    kubectl: Any, ns: str, operator: OperatorProcess, opnsense_providers: dict[str, str]
) -> None:
    rules = 6
    provider = opnsense_providers["fast"]
    outcomes = run_scenarios(
        kubectl,
        ns,
        operator,
        provider,
        rules=rules,
        scenarios=reduced(),
        seed=20240607,
        timeout=240,
    )
    for scenario, out in outcomes.items():
        lab.record_row(
            lab.ScenarioRow(
                f"fault: {scenario}",
                runs=1,
                converged=int(out.converged and all(c.ok for c in out.checks)),
                duplicates=sum(c.duplicate_count for c in out.checks),
                lost=sum(len(c.lost) + len(c.unapplied) for c in out.checks),
                leaked=0,
                notes=f"{out.requests['total']} requests",
            )
        )
    assert_outcomes(outcomes, rules)
    # Every injected fault really happened, and the operator saw (and counted) the failures.
    injected = {
        s: {k: v for k, v in o.requests.items() if k.startswith("fault:") and v} for s, o in outcomes.items()
    }
    for scenario, knobs in reduced().items():
        if any(k in knobs for k in ("error_rate", "timeout_rate", "drop_rate", "rate_limit_burst")):
            assert injected[scenario], f"[{scenario}] no fault was injected: {outcomes[scenario].requests}"
    # The operator's metrics count the device requests it made (by provider, operation, outcome).
    samples = lab.scrape_metrics(operator.metrics_port)  # type: ignore[attr-defined]
    counted = lab.metric_sum(samples, "vnfop_device_requests_total", provider=provider)
    assert counted > 0, "device requests are not visible in vnfop_device_requests_total"
    # Backoff is visible: retries are logged with their delay, and a Retry-After of 1 s was waited out.
    delays = [float(d) for d in RETRY_LOG.findall(operator.output())]
    assert delays, "no retry with backoff was logged"
    assert any(d >= 1.0 for d in delays), "no Retry-After (1 s) was honoured"
    leaked = lab.leaked_in_namespace(kubectl, ns, operator.output())
    assert leaked == 0


def test_retries_are_counted_in_metrics(
    kubectl: Any, ns: str, operator: OperatorProcess, opnsense_providers: dict[str, str]
) -> None:
    provider = opnsense_providers["fast"]
    with lab.Device("retries") as device:
        device.set_faults(error_rate=0.3, seed=7)
        lab.apply(
            kubectl,
            [
                *lab.secret_objects(ns, "fw", device),
                lab.appliance_object(ns, "fw", device, lab.make_rules(3, "m"), provider=provider),
            ],
        )
        lab.wait_ready(kubectl, ns, ["fw"], timeout=120)
        assert (
            device.count("GET", "/api/firewall/filter/searchRule", status=500)
            + device.count("POST", "/api/firewall/filter/addRule", status=500)
            > 0
        ), "no fault was injected"
    samples = lab.scrape_metrics(operator.metrics_port)  # type: ignore[attr-defined]
    assert lab.metric_sum(samples, "vnfop_device_retries_total", provider=provider) > 0


def test_failed_commit_is_not_lost(
    kubectl: Any, ns: str, operator: OperatorProcess, opnsense_providers: dict[str, str]
) -> None:
    """Every rule is written, then the commit (`apply`) fails until retries run out.

    The rules sit in config.xml but not in the running rule set. The next reconcile must still
    commit them: a plan that is empty against config.xml is not proof that they were applied.
    """
    rules = lab.make_rules(4, prefix="c")
    with lab.Device("commit") as device:
        device.set_faults(latency_ms=100)
        objs = [
            *lab.secret_objects(ns, "fw", device),
            lab.appliance_object(ns, "fw", device, rules, provider=opnsense_providers["fast"]),
        ]
        lab.apply(kubectl, objs)
        lab.wait_until(
            lambda: device.count("POST", "/api/firewall/filter/addRule", status=200) >= len(rules) or None,
            timeout=60,
            what="every create on the device",
            interval=0.02,
        )
        device.set_faults(error_rate=1.0)  # the commit in flight and its retries all fail
        lab.wait_until(
            lambda: device.count("POST", "/api/firewall/filter/apply", status=500) >= 5 or None,
            timeout=60,
            what="the commit failing on every attempt (1 + 4 retries)",
            interval=0.05,
        )
        device.clear_faults()
        lab.wait_ready(kubectl, ns, ["fw"], timeout=180)
        check = lab.check_device(device, ns, "fw", rules)
        lab.record_check(
            "fault: commit fails after writes", check, if_unapplied="rules staged, never applied"
        )
        assert check.ok, str(check)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_device_faults(
    kubectl: Any,
    operator: OperatorProcess,
    opnsense_providers: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    """Full size: 30 rules per appliance, every scenario 5 times with fresh seeds."""
    rules, runs = 30, 5
    totals = {s: lab.ScenarioRow(f"fault: {s}") for s in SCENARIOS}
    failures: list[str] = []
    for i in range(runs):
        ns = f"t-{uuid.uuid4().hex[:10]}"
        kubectl("create", "namespace", ns)
        seed = random.randrange(2**31)
        try:
            outcomes = run_scenarios(
                kubectl,
                ns,
                operator,
                opnsense_providers["fast"],
                rules=rules,
                scenarios=SCENARIOS,
                seed=seed,
                timeout=900,
            )
        except AssertionError as exc:
            failures.append(f"run {i} (seed {seed}): {exc}")
            for row in totals.values():
                row.runs += 1
            lab.purge(kubectl, ns)
            continue
        leaked = lab.leaked_in_namespace(kubectl, ns, operator.output())
        for scenario, out in outcomes.items():
            row = totals[scenario]
            row.runs += 1
            row.converged += int(out.converged and all(c.ok for c in out.checks))
            row.duplicates += sum(c.duplicate_count for c in out.checks)
            row.lost += sum(len(c.lost) + len(c.unapplied) for c in out.checks)
            row.leaked += leaked
        try:
            assert_outcomes(outcomes, rules)
        except AssertionError as exc:
            failures.append(f"run {i} (seed {seed}): {exc}")
        lab.purge(kubectl, ns)
    for row in totals.values():
        lab.record_row(row)
    assert all(row.leaked == 0 for row in totals.values()), "a secret leaked (see the table)"
    assert not failures, "\n".join(failures)
