"""Secrets and trust: no credential in any output; wrong CAs and changed SSH host keys are refused.

- The whole life of appliances with credentials (bootstrap of a factory-fresh device that sets a
  new root password and creates the operator's API key, refused credentials, a sync, an edit, an
  on-demand operation) must leave no secret value in the operator's log, the Events, the statuses,
  `kubectl describe` or `vnfctl render` output. tests/leakcheck.py checks the same over the whole
  session; this test makes the sources and the verdict explicit.
- TLS: an appliance that trusts another CA stops with a reason naming certificate verification,
  and nothing is sent (no HTTP request completes).
- SSH (Cisco IOS-XE provider and simulator): a pinned host key that differs from the device's is
  refused; with trust-on-first-use, a device whose key changes after the first connection is
  refused, also after an operator restart (status.hostKeys is the record).
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml
from tests.integration import objects
from tests.integration.operator_runner import VENV_BIN, OperatorProcess, condition, get_json
from tests.integration.reliability import lab
from tests.leakcheck import find_leaks, record_output, register_test_secret

from vnf_operator.testing.demo import SimulatorThread
from vnf_operator.testing.simulators.base import Credentials, SimulatorConfig
from vnf_operator.testing.simulators.tls import generate_tls_material

pytestmark = pytest.mark.integration


@pytest.fixture
def ns(kubectl: Any, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    yield namespace
    lab.purge(kubectl, namespace)


def _settled(kubectl: Any, ns: str, name: str, *, timeout: float = 90) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = lab.appliances(kubectl, ns).get(name)
        if not obj or (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        return obj if condition(obj, "Ready").get("reason") not in ("Progressing", None) else None

    return lab.wait_until(check, timeout=timeout, what=f"{ns}/{name} to settle",
                          describe=lambda: lab.summary(lab.appliances(kubectl, ns)))  # fmt: skip


# ------------------------------------------------------------------------------ TLS


def test_wrong_ca_is_refused_with_a_clear_reason(kubectl: Any, ns: str, operator: OperatorProcess) -> None:
    other_ca = generate_tls_material().ca_pem  # a perfectly valid CA, just not the device's
    with lab.Device("tls") as device:
        device.reset_stats()
        lab.apply(
            kubectl,
            [
                lab.secret_objects(ns, "fw", device)[0],
                objects.secret(ns, "fw-ca", {"ca.crt": other_ca}),
                lab.appliance_object(ns, "fw", device, lab.make_rules(2, "t")),
            ],
        )
        obj = _settled(kubectl, ns, "fw")
        ready = condition(obj, "Ready")
        assert ready["status"] == "False", ready
        assert "certificate verify failed" in ready["message"].lower(), ready
        assert device.total_requests() == 0, device.request_log()[:5]  # no request got through TLS
        events = get_json(kubectl, "events", "-n", ns)
        assert any("certificate verify failed" in e.get("message", "").lower() for e in events["items"])


# ------------------------------------------------------------------------------ SSH host keys


class IosXe:
    """A simulated IOS-XE; `like` makes one that differs from another only by its SSH host key."""

    def __init__(self, like: IosXe | None = None) -> None:
        self.password: str = (
            like.password if like else register_test_secret("Ios-" + secrets.token_urlsafe(18))
        )
        config = SimulatorConfig(
            tls=True,
            credentials=Credentials(username="netops", password=self.password),
            port=like.thread.sim.port if like else 0,
            ssh_port=like.ssh_port if like else 0,
        )
        self.thread: SimulatorThread = SimulatorThread("iosxe", config)
        if like is not None:
            self.thread.sim.tls = like.thread.sim.tls  # same certificate: only the host key differs

    def __enter__(self) -> IosXe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hang_up()
        self.thread.stop()

    def hang_up(self) -> None:
        """Drop every SSH connection, as a powered-off device does. (The simulator's stop() closes
        the listener and the sessions but leaves the connections open: reported.)"""
        conns = [o for o in gc.get_objects() if isinstance(o, asyncssh.SSHServerConnection)]

        async def abort() -> None:
            for c in conns:
                with contextlib.suppress(Exception):
                    c.abort()

        self.thread.call(abort())

    @property
    def ssh_port(self) -> int:
        port = self.thread.sim.ssh_port
        assert port is not None
        return port

    def known_hosts(self, key: str | None = None) -> str:
        return f"[127.0.0.1]:{self.ssh_port} {key or self.thread.sim.ssh_host_public_key}\n"

    def objects(self, ns: str, name: str, ssh: dict[str, Any]) -> list[dict[str, Any]]:
        ca = self.thread.sim.tls_ca_pem
        assert ca is not None
        return [
            objects.secret(ns, f"{name}-creds", {"username": "netops", "password": self.password}),
            objects.secret(ns, f"{name}-ca", {"ca.crt": ca}),
            objects.appliance(
                ns, name, "cisco-iosxe",
                ports={"cli": self.ssh_port, "restconf": self.thread.sim.port},
                credentials=f"{name}-creds",
                ca=f"{name}-ca",
                ssh=ssh,
                deletionPolicy="Orphan",
            ),
        ]  # fmt: skip


@pytest.fixture
def iosxe_provider(kubectl: Any) -> str:
    lab.apply(kubectl, [lab.iosxe_provider()])
    return "cisco-iosxe"


def _other_key() -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return key.export_public_key().decode().strip()


def test_pinned_ssh_host_key_mismatch_is_refused(
    kubectl: Any, ns: str, operator: OperatorProcess, iosxe_provider: str
) -> None:
    with IosXe() as dev:
        objs = dev.objects(ns, "rtr", {"knownHostsSecretRef": {"name": "rtr-known-hosts"}})
        objs.append(objects.secret(ns, "rtr-known-hosts", {"known_hosts": dev.known_hosts(_other_key())}))
        lab.apply(kubectl, objs)
        obj = _settled(kubectl, ns, "rtr")
        ready = condition(obj, "Ready")
        assert ready["status"] == "False", ready
        assert "host key" in ready["message"].lower(), ready
        # With the right key it works: the refusal was about the key, nothing else.
        lab.apply(kubectl, [objects.secret(ns, "rtr-known-hosts", {"known_hosts": dev.known_hosts()})])
        lab.wait_ready(kubectl, ns, ["rtr"], timeout=90)


def _poke(kubectl: Any, ns: str, name: str) -> None:
    kubectl("annotate", "vnfappliance", name, "-n", ns, "--overwrite",
            f"vnf.operators.dev/reconcile-requested={secrets.token_hex(4)}")  # fmt: skip


def _refused(kubectl: Any, ns: str, name: str) -> dict[str, Any] | None:
    o = lab.appliances(kubectl, ns).get(name) or {}
    r = condition(o, "Ready")
    return o if r.get("status") == "False" and "host key" in str(r.get("message")).lower() else None


def _trust_first_then_swap(kubectl: Any, ns: str) -> tuple[IosXe, dict[str, str]]:
    """TOFU against one device; returns an impostor (same address, certificate and password,
    another SSH host key) ready to start, and the fingerprints recorded in status.hostKeys."""
    first = IosXe()
    with first:
        lab.apply(kubectl, first.objects(ns, "rtr", {"trustOnFirstUse": True}))
        lab.wait_ready(kubectl, ns, ["rtr"], timeout=90)
        # status.hostKeys is filled from the transports before they connect, so only from the
        # second reconcile on (reported); ask for one and wait for the record.
        _poke(kubectl, ns, "rtr")
        obj = lab.wait_until(
            lambda: (lambda o: o if (o.get("status") or {}).get("hostKeys") else None)(
                lab.appliances(kubectl, ns).get("rtr") or {}
            ),
            timeout=60,
            what="status.hostKeys to record the first host key",
        )
        recorded: dict[str, str] = obj["status"]["hostKeys"]
        impostor = IosXe(like=first)
    return impostor, recorded


def test_changed_ssh_host_key_is_refused_after_trust_on_first_use(
    kubectl: Any, ns: str, operator: OperatorProcess, iosxe_provider: str
) -> None:
    impostor, _ = _trust_first_then_swap(kubectl, ns)
    with impostor:
        _poke(kubectl, ns, "rtr")
        lab.wait_until(lambda: _refused(kubectl, ns, "rtr"), timeout=90,
                       what="the changed host key to be refused",
                       describe=lambda: lab.summary(lab.appliances(kubectl, ns)))  # fmt: skip


def test_changed_ssh_host_key_is_refused_after_an_operator_restart(
    kubectl: Any, ns: str, operator: OperatorProcess, iosxe_provider: str
) -> None:
    impostor, recorded = _trust_first_then_swap(kubectl, ns)
    starts = operator.output().count("vnf-operator started")
    operator.stop()
    operator.start()
    lab.wait_until(lambda: operator.output().count("vnf-operator started") > starts or None,
                   timeout=60, what="the operator to restart")  # fmt: skip
    # The new process reconciles once on its own: the device is gone (refused connection).
    lab.wait_until(
        lambda: (
            condition(lab.appliances(kubectl, ns).get("rtr") or {}, "Ready").get("status") == "False" or None
        ),
        timeout=60,
        what="the restarted operator to find the device gone",
    )
    with impostor:
        _poke(kubectl, ns, "rtr")

        def decided() -> dict[str, Any] | None:
            o = lab.appliances(kubectl, ns).get("rtr") or {}
            trusted = condition(o, "Ready").get("status") == "True"
            return o if trusted or _refused(kubectl, ns, "rtr") else None

        obj = lab.wait_until(decided, timeout=90, what="the operator to accept or refuse the new host key",
                             describe=lambda: lab.summary(lab.appliances(kubectl, ns)))  # fmt: skip
        assert _refused(kubectl, ns, "rtr") is not None, (
            "after a restart the operator trusted a changed SSH host key: "
            + lab.summary({"rtr": obj})
            + f"; recorded {recorded}, now {(obj.get('status') or {}).get('hostKeys')}"
        )


# ------------------------------------------------------------------------------ leaks


def test_no_secret_in_logs_events_status_or_cli(
    kubectl: Any, ns: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    # 1. Refused credentials: the right key with a wrong secret.
    with lab.Device("leak") as device:
        wrong = register_test_secret("Wr0ng-" + secrets.token_urlsafe(20))
        objs = [
            objects.secret(ns, "bad-api", {"api_key": device.api_key, "api_secret": wrong}),
            lab.secret_objects(ns, "bad", device)[1],
            lab.appliance_object(ns, "bad", device, lab.make_rules(2, "l")),
            *lab.secret_objects(ns, "fw", device),
            lab.appliance_object(ns, "fw", device, lab.make_rules(3, "l")),
        ]
        lab.apply(kubectl, objs)
        bad = _settled(kubectl, ns, "bad")
        assert condition(bad, "Ready")["status"] == "False"
        lab.wait_ready(kubectl, ns, ["fw"], timeout=90)
        # 2. An edit and an on-demand operation (its rows land in status).
        lab.apply(kubectl, [lab.appliance_object(ns, "fw", device, lab.make_rules(4, "l"))])
        lab.wait_ready(kubectl, ns, ["fw"], timeout=90)
        op = {
            "apiVersion": lab.API,
            "kind": "VnfOperation",
            "metadata": {"name": "list-rules", "namespace": ns},
            "spec": {"applianceRef": {"name": "fw"}, "service": "firewall_rules", "operation": "list"},
        }
        lab.apply(kubectl, [op])
        lab.wait_until(
            lambda: (
                (get_json(kubectl, "vnfoperation", "list-rules", "-n", ns).get("status") or {}).get("phase")
                in ("Succeeded", "Failed")
                or None
            ),
            timeout=60,
            what="the operation to finish",
        )
        # 3. CLI outputs a user would look at.
        for args in (("get", "vnf", "-n", ns, "-o", "wide"), ("describe", "vnfappliances", "-n", ns),
                     ("describe", "vnfoperations", "-n", ns), ("get", "events", "-n", ns)):  # fmt: skip
            proc = kubectl(*args, check=False)
            record_output("kubectl " + " ".join(args), proc.stdout + proc.stderr)
        creds = tmp_path / "creds.yaml"
        creds.write_text(yaml.safe_dump({"api_key": device.api_key, "api_secret": device.api_secret,
                                         "bootstrap_api_key": "root", "bootstrap_api_secret": wrong,
                                         "root_password": device.api_secret}))  # fmt: skip
        provider = lab.REPO / "providers" / "opnsense.yaml"
        outputs = []
        for extra in (("--service", "firewall_rules", "--op", "list"), ("--step", "set_root_password"),
                      ("--check", "firmware_status")):  # fmt: skip
            for fmt in ("text", "json", "yaml"):
                cmd = [
                    str(VENV_BIN / "vnfctl"),
                    "render",
                    str(provider),
                    *extra,
                    "--credentials",
                    str(creds),
                    "-o",
                    fmt,
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                outputs.append(proc.stdout)
                record_output("vnfctl render " + " ".join(extra) + f" -o {fmt}", proc.stdout + proc.stderr)
        assert any("Authorization" in o or "password" in o for o in outputs), outputs[:1]

        # The verdict over everything this test produced (the plugin repeats it session-wide).
        sources = {
            "operator log": operator.output(),
            "events": json.dumps(get_json(kubectl, "events", "-n", ns)),
            "appliance statuses": json.dumps([o.get("status") for o in lab.appliances(kubectl, ns).values()]),
            "operation status": json.dumps(
                get_json(kubectl, "vnfoperation", "list-rules", "-n", ns).get("status")
            ),
            "vnfctl render": "\n".join(outputs),
        }
        values = [device.api_key, device.api_secret, wrong]
        hits = [h for where, text in sources.items() for h in find_leaks(text, where, values)]
        assert not hits, "\n".join(str(h) for h in hits)
        lab.record_row(lab.ScenarioRow("secrets: lifecycle + CLI", runs=1, converged=1, leaked=len(hits)))


async def _count_requests(sim: SimulatorThread) -> int:
    return len(sim.sim.telemetry.request_log)


def test_no_secret_leaks_on_the_bootstrap_path(kubectl: Any, ns: str, operator: OperatorProcess) -> None:
    """A factory-fresh OPNsense (only the template's day-0 API key): the operator bootstraps it
    (new root password, its own API key), syncs, and reconciles again with the generated key.
    The day-0 key and password, the new password and the generated key appear nowhere."""
    day0 = {
        "bootstrap_api_key": register_test_secret(secrets.token_hex(16)),
        "bootstrap_api_secret": register_test_secret("Day0-" + secrets.token_urlsafe(24)),
        "root_password": register_test_secret("NewRoot-" + secrets.token_urlsafe(18)),
    }
    console_password = register_test_secret("Day0Root-" + secrets.token_urlsafe(16))
    creds = Credentials(
        username="root",
        password=console_password,
        api_key=day0["bootstrap_api_key"],
        api_secret=day0["bootstrap_api_secret"],
    )
    sim = SimulatorThread("opnsense", SimulatorConfig(tls=True, credentials=creds, ssh=False))
    sim.start()
    try:
        ca = sim.sim.tls_ca_pem
        assert ca is not None
        body = lab.appliance_object(ns, "fresh", None, lab.make_rules(2, "b"))
        body["spec"]["management"]["ports"] = dict.fromkeys(
            ("api", "bootstrap_api", "bootstrap_root"), sim.sim.port
        )
        del body["spec"]["credentialsSecretRef"]  # the operator's key does not exist yet
        body["spec"]["bootstrapCredentialsSecretRef"] = {"name": "fresh-day0"}
        lab.apply(
            kubectl,
            [objects.secret(ns, "fresh-day0", day0), objects.secret(ns, "fresh-ca", {"ca.crt": ca}), body],
        )
        obj = lab.wait_ready(kubectl, ns, ["fresh"], timeout=90)["fresh"]
        assert condition(obj, "Bootstrapped").get("status") == "True", condition(obj, "Bootstrapped")
        outputs = get_json(kubectl, "secret", "fresh-bootstrap-outputs", "-n", ns).get("data") or {}
        generated = [
            register_test_secret(base64.b64decode(outputs[k]).decode()) for k in ("api_key", "api_secret")
        ]
        # The next reconcile logs in with the generated key (from the outputs Secret).
        before = sim.call(_count_requests(sim))
        _poke(kubectl, ns, "fresh")
        lab.wait_until(lambda: sim.call(_count_requests(sim)) > before + 1 or None, timeout=60,
                       what="a second reconcile to reach the device")  # fmt: skip
        lab.wait_ready(kubectl, ns, ["fresh"], timeout=60)
        sources = {"operator log": operator.output()}
        for args in (("get", "vnfappliances", "-n", ns, "-o", "yaml"), ("describe", "vnfappliances", "-n", ns),
                     ("get", "events", "-n", ns, "-o", "json")):  # fmt: skip
            proc = kubectl(*args, check=False)
            where = "kubectl " + " ".join(args)
            sources[where] = record_output(where, proc.stdout + proc.stderr)
        values = [*day0.values(), console_password, *generated]
        hits = [h for where, text in sources.items() for h in find_leaks(text, where, values)]
        assert "Bootstrapped" in sources["kubectl get events -n " + ns + " -o json"]
    finally:
        sim.stop()
    lab.record_row(lab.ScenarioRow("secrets: bootstrap path", runs=1, converged=1, leaked=len(hits)))
    assert not hits, "\n".join(str(h) for h in hits)


# ------------------------------------------------------------------------------ the plugin itself

LEAKY_SESSION = """
import pytest
from tests.leakcheck import register_test_secret

@pytest.fixture
def creds():
    return {{"api_secret": register_test_secret("Plugin-" + "{token}")}}

def test_writes_a_log(tmp_path, creds):
    (tmp_path / "operator.log").write_text("connecting with " + creds["api_secret"] * {in_log} + "\\n")
    assert {passes}, "the secret is in this test's arguments, shown by its traceback"
"""


@pytest.mark.parametrize("case", ["leak in a log", "no leak", "failed test"])
def test_the_leak_check_plugin(request: pytest.FixtureRequest, tmp_path: Path, case: str) -> None:
    """tests/leakcheck.py is active (tests/conftest.py) and turns a leak in a log into a failed
    session that names where, not what; the traceback of a failed test is printed masked. Each case
    runs in a pytest of its own so that this session stays clean."""
    assert request.config.pluginmanager.has_plugin("tests.leakcheck")
    token = secrets.token_urlsafe(18)
    source = LEAKY_SESSION.format(
        token=token, in_log=int(case == "leak in a log"), passes=case != "failed test"
    )
    (tmp_path / "test_leaky.py").write_text(source)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.leakcheck", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'base'}", str(tmp_path / "test_leaky.py")],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(lab.REPO)},
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert token not in out
    if case == "leak in a log":
        assert proc.returncode == 1, out
        assert "secret leak check FAILED" in out and "operator.log:1: secret #1 found" in out, out
    elif case == "failed test":
        assert proc.returncode == 1 and "1 failed" in out, out
        assert "'api_secret': '<SECRET>'" in out and "masked in 1 failure report(s)" in out, out
        assert "secret leak check FAILED" not in out, out
    else:
        assert proc.returncode == 0, out
        assert "secret leak check: 1 secret value(s)" in out and ", no leak" in out, out
