"""The reliability lab: simulated OPNsense devices, appliances, device-state checks, metrics.

Shared by every module of tests/integration/reliability. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import secrets
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition
from tests.leakcheck import find_leaks, record_output, register_test_secret

from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators.base import Credentials, SimulatorConfig

T = TypeVar("T")
Kubectl = Callable[..., Any]

REPO = Path(__file__).resolve().parents[3]
OPNSENSE_YAML = REPO / "providers" / "opnsense.yaml"
IOSXE_YAML = REPO / "providers" / "cisco-iosxe.yaml"
API = objects.API


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ providers


def opnsense_provider(name: str = "opnsense", *, read_timeout: float | None = None) -> dict[str, Any]:
    """The shipped OPNsense dictionary, optionally renamed and with a shorter read timeout.

    The shipped `readTimeout: 60` makes each simulated hang cost a minute; the fault tests use a
    few seconds (what a user would also do for a fast appliance) so timeouts fit in a test run.
    """
    doc: dict[str, Any] = yaml.safe_load(OPNSENSE_YAML.read_text())
    doc["metadata"] = {"name": name}
    if read_timeout is not None:
        for conn in doc["spec"]["connections"].values():
            conn["readTimeout"] = read_timeout
            conn["connectTimeout"] = min(float(conn.get("connectTimeout") or 5), read_timeout)
    return doc


# ------------------------------------------------------------------------------ devices


class Simulated:
    """A vendor simulator in a thread of its own: start/stop, its loop, faults, reboots."""

    def __init__(self, vendor: str, config: SimulatorConfig) -> None:
        self.thread = SimulatorThread(vendor, config)
        self._started = False

    def start(self) -> Self:
        self.thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            with contextlib.suppress(Exception):
                self.thread.stop()
            self._started = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.thread.sim.port)

    @property
    def ca_pem(self) -> str:
        pem = self.thread.sim.tls_ca_pem
        assert pem is not None
        return pem

    def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the simulator's event loop (its state is not thread-safe)."""

        async def call() -> T:
            return fn()

        result: T = self.thread.call(call())
        return result

    def set_faults(self, **knobs: Any) -> None:
        self.run(lambda: self.thread.sim.faults.update(knobs))

    def restart(self) -> None:
        """Reboot the appliance: open connections drop, unsaved state is lost, the ports stay."""
        self.thread.call(self.thread.sim.restart())


class Device(Simulated):
    """One simulated OPNsense (HTTPS, its own CA, random API credentials) in a thread."""

    def __init__(self, label: str = "opnsense") -> None:
        self.label = label
        self.api_key = register_test_secret(secrets.token_hex(16))
        self.api_secret = register_test_secret("S3cret-" + secrets.token_urlsafe(24))
        creds = Credentials(
            username="root",
            password=register_test_secret(secrets.token_urlsafe(16)),
            api_key=self.api_key,
            api_secret=self.api_secret,
        )
        super().__init__("opnsense", SimulatorConfig(tls=True, credentials=creds, ssh=False))

    def clear_faults(self) -> None:
        self.set_faults(
            latency_ms=0,
            error_rate=0,
            timeout_rate=0,
            drop_rate=0,
            rate_limit_burst=0,
            rate_limit_requests=0,
        )

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.run(self.thread.sim.dump_state)
        return result

    def stats(self) -> dict[str, Any]:
        def snap() -> dict[str, Any]:
            data = self.thread.sim.telemetry.stats()
            data["faults"] = dict(self.thread.sim.faults.counts)
            return data

        return self.run(snap)

    def total_requests(self) -> int:
        return int(self.stats()["total"])

    def count(self, method: str, path: str, *, status: int | None = None) -> int:
        """Requests to exactly this path (faulted ones included: they carry no route template)."""

        def n() -> int:
            log = self.thread.sim.telemetry.request_log
            return sum(
                1
                for r in log
                if r.method == method and r.path == path and (status is None or r.status == status)
            )

        return self.run(n)

    def request_log(self) -> list[dict[str, Any]]:
        return self.run(lambda: [r.as_dict() for r in self.thread.sim.telemetry.request_log])

    def reset_stats(self) -> None:
        self.run(self.thread.sim.telemetry.reset)

    def rules(self, where: str = "config") -> list[dict[str, Any]]:
        rows = self.state()[where]["filter_rules"]
        return list(rows.values()) if isinstance(rows, dict) else list(rows)

    def add_foreign_rules(self, descriptions: Iterable[str]) -> dict[str, str]:
        """Rules made by someone else (through the API, then applied): uuid -> description."""
        made: dict[str, str] = {}
        ctx = self.thread.sim.client_ssl_context()
        with httpx.Client(
            base_url=f"https://127.0.0.1:{self.port}/api", verify=ctx, auth=(self.api_key, self.api_secret)
        ) as client:
            for i, descr in enumerate(descriptions):
                rule = {
                    "description": descr,
                    "interface": "lan",
                    "action": "pass",
                    "protocol": "TCP",
                    "destination_port": str(60000 + i),
                }
                resp = client.post("/firewall/filter/addRule", json={"rule": rule})
                resp.raise_for_status()
                made[resp.json()["uuid"]] = descr
            client.post("/firewall/filter/apply", json={}).raise_for_status()
        return made


class IosXeDevice(Simulated):
    """One simulated Cisco IOS-XE (SSH CLI + RESTCONF over HTTPS, random password) in a thread.

    Its running-config is edited live; `write memory` copies it to startup-config; a restart
    drops every connection and reloads startup-config (unsaved changes are gone).
    """

    username = "netops"

    def __init__(self) -> None:
        self.password = register_test_secret("Ios-" + secrets.token_urlsafe(18))
        creds = Credentials(username=self.username, password=self.password)
        super().__init__("iosxe", SimulatorConfig(tls=True, credentials=creds))

    def commands(self, label: str) -> int:
        """Successful CLI lines whose first two words are `label` (e.g. "ip route")."""
        log = self.thread.sim.telemetry.request_log
        return self.run(
            lambda: sum(1 for r in log if r.method == "SSH" and r.path == label and r.status == 0)
        )

    def routes(self, where: str = "running") -> list[tuple[str, str]]:
        """Static routes as (prefix/len, next hop), one per next hop, in running- or startup-config."""

        def read() -> list[tuple[str, str]]:
            config = getattr(self.thread.sim, where)
            return [
                (str(ipaddress.IPv4Network(f"{prefix}/{mask}")), hop)
                for (prefix, mask), hops in config.routes.items()
                for hop in hops
            ]

        return self.run(read)

    def objects(self, ns: str, name: str, services: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Secrets (credentials, CA, pinned host key) and a cisco-iosxe VnfAppliance."""
        sim = self.thread.sim
        assert sim.ssh_port is not None
        known_hosts = f"[127.0.0.1]:{sim.ssh_port} {sim.ssh_host_public_key}\n"
        return [
            objects.secret(ns, f"{name}-creds", {"username": self.username, "password": self.password}),
            objects.secret(ns, f"{name}-ca", {"ca.crt": self.ca_pem}),
            objects.secret(ns, f"{name}-known-hosts", {"known_hosts": known_hosts}),
            objects.appliance(
                ns, name, "cisco-iosxe",
                ports={"cli": sim.ssh_port, "restconf": sim.port},
                credentials=f"{name}-creds",
                ca=f"{name}-ca",
                services=services,
                ssh={"knownHostsSecretRef": {"name": f"{name}-known-hosts"}},
                deletionPolicy="Orphan",
            ),
        ]  # fmt: skip


def iosxe_provider() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(IOSXE_YAML.read_text())
    return doc


# ------------------------------------------------------------------------------ objects


def make_rules(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [
        {
            "description": f"{prefix}-{i:03d}",
            "action": "pass" if i % 3 else "block",
            "interface": "wan",
            "protocol": "TCP",
            "destination_port": str(1000 + i),
        }
        for i in range(n)
    ]


def secret_objects(ns: str, name: str, device: Device) -> list[dict[str, Any]]:
    return objects.opnsense_secrets(ns, name, api_key=device.api_key, api_secret=device.api_secret,
                                    ca_pem=device.ca_pem)  # fmt: skip


def appliance_object(
    ns: str,
    name: str,
    device: Device | None,
    rules: Sequence[Mapping[str, Any]],
    *,
    provider: str = "opnsense",
    policy: str = "replaced",
    **spec: Any,
) -> dict[str, Any]:
    # Orphan: deleting the test's objects at the end never waits on a (stopped) device.
    body: dict[str, Any] = {
        "deletionPolicy": "Orphan",
        "services": objects.firewall_rules([dict(r) for r in rules], policy),
    }
    body.update(spec)  # may replace the services too
    return objects.appliance(
        ns, name, provider, ports={"api": device.port if device else 9}, credentials=f"{name}-api",
        ca=f"{name}-ca", **body,
    )  # fmt: skip


def apply(kubectl: Kubectl, objs: Sequence[Mapping[str, Any]], *, check: bool = True) -> Any:
    """One server-side apply of many objects (a v1 List)."""
    return objects.apply(kubectl, *objs, field_manager="reliability", force=True, check=check)


def appliances(kubectl: Kubectl, ns: str) -> dict[str, dict[str, Any]]:
    proc = kubectl("get", "vnfappliances", "-n", ns, "-o", "json", check=False)
    if proc.returncode != 0:
        return {}
    return {o["metadata"]["name"]: o for o in json.loads(proc.stdout).get("items", [])}


def is_ready(obj: Mapping[str, Any], generation: int | None = None) -> bool:
    gen = generation if generation is not None else (obj.get("metadata") or {}).get("generation")
    st = obj.get("status") or {}
    return bool(
        st.get("observedGeneration") == gen
        and gen == (obj.get("metadata") or {}).get("generation")
        and condition(obj, "Ready").get("status") == "True"
    )


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.5,
    describe: Callable[[], str] | None = None,
) -> T:
    """A bounded wait (never a timing assertion): the first truthy result of `predicate`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = describe() if describe is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}")
        time.sleep(interval)


def summary(objs: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for name, obj in sorted(objs.items()):
        r = condition(obj, "Ready")
        gen = (obj.get("metadata") or {}).get("generation")
        seen = (obj.get("status") or {}).get("observedGeneration")
        lines.append(f"  {name}: gen {gen} observed {seen} Ready={r.get('status')} {r.get('reason')}: "
                     f"{str(r.get('message'))[:300]}")  # fmt: skip
    return "\n".join(lines)


def wait_ready(
    kubectl: Kubectl, ns: str, names: Iterable[str], *, timeout: float
) -> dict[str, dict[str, Any]]:
    wanted = set(names)

    def check() -> dict[str, dict[str, Any]] | None:
        objs = appliances(kubectl, ns)
        if all(n in objs and is_ready(objs[n]) for n in wanted):
            return objs
        return None

    return wait_until(
        check,
        timeout=timeout,
        what=f"{len(wanted)} appliance(s) Ready in {ns}",
        describe=lambda: summary({k: v for k, v in appliances(kubectl, ns).items() if k in wanted}),
    )


def purge(kubectl: Kubectl, ns: str, *, timeout: float = 30.0) -> None:
    """Delete the namespace's appliances (Orphan: nothing is sent to devices); force if stuck."""
    kubectl("delete", "vnfappliances,vnfoperations", "--all", "-n", ns, "--wait=false", check=False)
    deadline = time.monotonic() + timeout
    while appliances(kubectl, ns) and time.monotonic() < deadline:
        time.sleep(0.5)
    for name in appliances(kubectl, ns):
        kubectl(
            "patch", "vnfappliance", name, "-n", ns, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip


# ------------------------------------------------------------------------------ device checks


@dataclass
class DeviceCheck:
    """What the device holds for one appliance, against what the spec wants."""

    appliance: str
    desired: int
    duplicates: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    foreign_missing: list[str] = field(default_factory=list)
    unapplied: list[str] = field(default_factory=list)
    """Desired rules in config.xml but not in the running (applied) rule set."""

    @property
    def duplicate_count(self) -> int:
        return sum(n - 1 for n in self.duplicates.values())

    @property
    def ok(self) -> bool:
        return not (
            self.duplicates
            or self.lost
            or self.unexpected
            or self.mismatched
            or self.foreign_missing
            or self.unapplied
        )

    def __str__(self) -> str:
        parts = [f"{self.appliance}: {self.desired} desired"]
        for name in ("duplicates", "lost", "unexpected", "mismatched", "foreign_missing", "unapplied"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        return ", ".join(parts)


def marker(ns: str, name: str) -> str:
    return f"vnf:{ns}/{name} "


def ours(rows: Iterable[Mapping[str, Any]], ns: str, name: str) -> list[dict[str, Any]]:
    m = marker(ns, name)
    return [
        {**r, "description": str(r["description"])[len(m) :]}
        for r in rows
        if str(r.get("description", "")).startswith(m)
    ]


def check_device(
    device: Device,
    ns: str,
    name: str,
    desired: Sequence[Mapping[str, Any]],
    *,
    foreign: Mapping[str, str] | None = None,
    applied: bool = True,
) -> DeviceCheck:
    state = device.state()
    config = ours(state["config"]["filter_rules"], ns, name)
    result = DeviceCheck(f"{ns}/{name}", len(desired))
    counts = Counter(r["description"] for r in config)
    result.duplicates = {d: n for d, n in counts.items() if n > 1}
    want = {str(d["description"]): d for d in desired}
    result.lost = sorted(set(want) - set(counts))
    result.unexpected = sorted(set(counts) - set(want))
    for row in config:
        d = want.get(row["description"])
        if d is None:
            continue
        for f in ("action", "destination_port", "interface"):
            if f in d and str(row.get(f)) != str(d[f]):
                result.mismatched.append(f"{row['description']}.{f}={row.get(f)!r} (want {d[f]!r})")
    all_uuids = {r["uuid"]: r.get("description") for r in state["config"]["filter_rules"]}
    for uuid, descr in (foreign or {}).items():
        if all_uuids.get(uuid) != descr:
            result.foreign_missing.append(descr)
    if applied:
        # What the firewall enforces: each desired rule once, with the desired values.
        running_rows = ours(state["running"]["filter_rules"], ns, name)
        running = Counter(r["description"] for r in running_rows)
        result.unapplied = sorted(d for d in want if running.get(d, 0) != 1)
        for row in running_rows:
            d = want.get(row["description"])
            for f in ("action", "destination_port", "interface"):
                if d is not None and f in d and str(row.get(f)) != str(d[f]):
                    result.unapplied.append(
                        f"{row['description']}.{f}: running {row.get(f)!r}, want {d[f]!r}"
                    )
    return result


def duplicates_now(device: Device, ns: str, names: Iterable[str]) -> dict[str, dict[str, int]]:
    """Duplicated descriptions per appliance in config.xml right now (empty when none)."""
    rows = device.state()["config"]["filter_rules"]
    found: dict[str, dict[str, int]] = {}
    for name in names:
        counts = Counter(r["description"] for r in ours(rows, ns, name))
        dups = {d: n for d, n in counts.items() if n > 1}
        if dups:
            found[name] = dups
    return found


# ------------------------------------------------------------------------------ operator


def start_operator(kubeconfig: Path, log_path: Path, *, metrics_port: int = 0, **env: str) -> OperatorProcess:
    proc = OperatorProcess(kubeconfig, log_path, env={"VNF_METRICS_PORT": str(metrics_port), **env})
    return proc.start()


def wait_operator_up(proc: OperatorProcess, *, timeout: float = 60.0) -> None:
    """kopf logs this once its startup handler ran (before that no event is processed)."""
    wait_until(
        lambda: "vnf-operator started" in proc.output() or None,
        timeout=timeout,
        what="the operator's startup handler",
        describe=lambda: proc.output()[-3000:],
    )


def tracebacks(text: str) -> list[str]:
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            blocks.append("\n".join(lines[max(0, i - 2) : i + 25]))
    return blocks


def scrape_metrics(port: int) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.append((s.name, dict(s.labels), float(s.value)))
    return samples


def metric_sum(samples: Iterable[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))


# ------------------------------------------------------------------------------ leak accounting


def leaked_in_namespace(kubectl: Kubectl, ns: str, *logs: str) -> int:
    """Secrets found in the namespace's events and statuses and in the given logs (0 expected)."""
    texts: list[tuple[str, str]] = []
    for what in ("events", "vnfappliances", "vnfoperations"):
        proc = kubectl("get", what, "-n", ns, "-o", "json", check=False)
        texts.append((f"{what} in {ns}", proc.stdout or ""))
    describe = kubectl("describe", "vnfappliances", "-n", ns, check=False)
    texts.append(
        (f"kubectl describe vnfappliances -n {ns}", record_output(f"describe {ns}", describe.stdout))
    )
    texts.extend((f"operator log #{i}", log) for i, log in enumerate(logs))
    return sum(len(find_leaks(text, where)) for where, text in texts)


# ------------------------------------------------------------------------------ summary table


@dataclass
class ScenarioRow:
    scenario: str
    runs: int = 0
    converged: int = 0
    duplicates: int = 0
    lost: int = 0
    leaked: int = 0
    notes: str = ""


SUMMARY: list[ScenarioRow] = []
_SUMMARY_LOCK = threading.Lock()


def record_row(row: ScenarioRow) -> ScenarioRow:
    with _SUMMARY_LOCK:
        SUMMARY.append(copy.copy(row))
    return row


def record_check(scenario: str, check: DeviceCheck, *, if_unapplied: str = "") -> ScenarioRow:
    """One run's row from its device check; `if_unapplied` is the note when items stayed staged."""
    return record_row(
        ScenarioRow(
            scenario,
            runs=1,
            converged=int(check.ok),
            duplicates=check.duplicate_count,
            lost=len(check.lost) + len(check.unapplied),
            notes=if_unapplied if check.unapplied else "",
        )
    )


def summary_table() -> str:
    head = ("scenario", "runs", "converged", "duplicates", "lost", "leaked secrets", "notes")
    rows = [head] + [
        (r.scenario, str(r.runs), str(r.converged), str(r.duplicates), str(r.lost), str(r.leaked), r.notes)
        for r in SUMMARY
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    out = []
    for i, row in enumerate(rows):
        out.append(" | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)
