"""The conformance lab: one vendor simulator, the provider dictionary and the engine that runs it.

Every case file in `cases/` names a provider dictionary (`providers/<provider>.yaml`), the simulator
that stands in for its device, how the simulator's credentials map onto the dictionary's credentials,
and, per service, the items the suite creates and updates, how the same item is made directly through
the device's own API (adoption), where the result shows in the simulator's state dump, and which
requests count as writes. The dictionary's HTTP(S) connections go to the simulator's HTTP listener,
its SSH connections to the SSH listener. The suite drives the engine directly (`Session` +
`sync_service`, or the operator's `ApplianceReconciler` with Secrets in memory): no Kubernetes.

Case file reference (YAML):

```yaml
provider: pfsense                  # providers/pfsense.yaml
simulator: {vendor: pfsense, tls: true}   # or `lab:` (a real router in a netns: netns_device.py)
credentials:                       # dictionary credential -> {sim: Credentials attribute} | {value: text}
                                   #   | {lab: LinuxRouterLab attribute}
  api_key: {sim: api_key}
vars: {}                           # the appliance's spec.vars (text)
healthPhases: [network, api]       # optional: the phases the health checks cover (default: all three)
device:                            # how the suite talks to the device itself (pre-existing items)
  http: {header: {X-API-Key: api_key}}   # or {basic: [user, password]}, {bearer: api_key}, {formKey: api_key}
writes:                            # request-log entries (method, path regexes) that change the device
  - {method: '^(POST|PUT|PATCH|DELETE)$'}
bootstrap:                         # optional: a factory-fresh simulator, its Secrets, a service to sync
  credentials: {bootstrap_username: {value: admin}, bootstrap_password: {value: pfsense}}
  service: firewall_rules
services:
  firewall_rules:
    create: {...}                  # a desired item
    update: {...}                  # fields merged into `create` for the update step
    preexisting: [{http: {method: POST, path: ..., json: {...}}}, {cli: [lines]}]
    state:                         # ground truth in GET /_sim/state
      rows: $.running.FirewallRule[*]
      identity: {descr: 'conformance ssh$'}   # field -> regex; `_` for rows that are text lines
      created: {destination_port: '^22$'}
      updated: {destination_port: '^2222$'}
    trio: [{...}, {...}, {...}]    # optional: three items (mixed-plan test; ordering tests if ordered)
    setup: [{http: {...}}]         # optional: device actions before each test of the service
gaps:                              # known gaps: strict xfails (see _gap_marks)
  - {service: firewall_rules, test: test_delete_and_update_in_one_sync, reason: ...}
notCovered: {service: reason}      # writable services deliberately left out
```

Simulator cases run in the integration tier (test_conformance.py); `lab:` cases need root and network
namespaces and run the same tests in the e2e tier (tests/e2e/test_conformance_netns.py). For those,
the request log is the engine's own (every device request, as `{method: SSH, path:
service.operation}`) and the state is what the router's tools show.

`VNF_CONFORMANCE_PROVIDERS=DIR` runs the cases against the dictionaries in DIR instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest
import yaml
from jsonpath_ng.ext import parse as jsonpath  # type: ignore[attr-defined]
from tests.integration.conformance import netns_device

from vnf_operator.core import diff
from vnf_operator.core.itemschema import validate_items
from vnf_operator.core.loader import LoadedProvider, load_provider_file
from vnf_operator.core.model import Policy
from vnf_operator.engine.connections import ConnectionFactory
from vnf_operator.engine.secrets import Credentials
from vnf_operator.engine.session import ApplianceRef, Session
from vnf_operator.engine.sync import (
    ServiceResult,
    comparison_rules,
    list_items,
    service_marker,
    strip_marker,
    sync_service,
)
from vnf_operator.testing.netns import LinuxRouterLab
from vnf_operator.testing.simulators import SIMULATORS, SimulatorConfig
from vnf_operator.testing.simulators.base import BaseSimulator

REPO = Path(__file__).resolve().parents[3]
PROVIDERS = Path(os.environ.get("VNF_CONFORMANCE_PROVIDERS") or REPO / "providers")
CASES = Path(__file__).resolve().parent / "cases"
NAMESPACE = "conformance"


# --------------------------------------------------------------------------- case files


@dataclass(frozen=True)
class Case:
    """One provider's case file."""

    provider: str
    path: Path
    doc: Mapping[str, Any]

    @property
    def services(self) -> Mapping[str, Mapping[str, Any]]:
        services: Mapping[str, Mapping[str, Any]] = self.doc.get("services") or {}
        return services

    def service(self, name: str) -> Mapping[str, Any]:
        return self.services[name]


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CASES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        cases.append(Case(provider=str(doc["provider"]), path=path, doc=doc))
    return cases


ALL_CASES = load_cases()
CASE_LIST = [c for c in ALL_CASES if "lab" not in c.doc]  # simulators: integration tier
NETNS_CASES = [c for c in ALL_CASES if "lab" in c.doc]  # the Linux router lab: e2e tier


def _gap_marks(case: Case, test: str, service: str | None) -> list[Any]:
    """`gaps:` entries of a case file become strict xfails: a known engine gap keeps the suite
    green, and fixing it turns the test into an XPASS failure that asks for the entry's removal."""
    marks = []
    for gap in case.doc.get("gaps") or []:
        if gap.get("test", "*") in ("*", test) and (
            service is None or gap.get("service", "*") in ("*", service)
        ):
            marks.append(pytest.mark.xfail(strict=True, reason=str(gap["reason"])))
    return marks


def provider_params(test: str, cases: Sequence[Case] = CASE_LIST) -> list[Any]:
    return [pytest.param(c, id=c.provider, marks=_gap_marks(c, test, None)) for c in cases]


def service_params(test: str, *, needs: str | None = None, cases: Sequence[Case] = CASE_LIST) -> list[Any]:
    """One parameter per (provider, service) of the case files; `needs` keeps services whose case
    has that key."""
    out = []
    for c in cases:
        for name, spec in c.services.items():
            if needs is None or needs in spec:
                marks = _gap_marks(c, test, name)
                out.append(pytest.param(c, name, id=f"{c.provider}-{name}", marks=marks))
    return out


def merged(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    return {**base, **patch}


# --------------------------------------------------------------------------- the lab


@dataclass
class Lab:
    """A started simulator (or the reset router lab), the loaded provider and an engine session."""

    case: Case
    sim: BaseSimulator | None
    provider: LoadedProvider
    factory: ConnectionFactory
    session: Session
    ref: ApplianceRef
    body: dict[str, Any]
    creds: Credentials
    admin: httpx.AsyncClient | None
    extra_clients: list[httpx.AsyncClient] = field(default_factory=list)
    router: LinuxRouterLab | None = None
    log: list[dict[str, Any]] = field(default_factory=list)  # device requests (router cases)

    # ----------------------------------------------------------------- engine
    def validated(self, service: str, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        svc = self.provider.dictionary.services[service]
        return validate_items(svc, list(items), where=f"spec.services.{service}.items")

    async def sync(
        self,
        service: str,
        items: Sequence[Mapping[str, Any]],
        *,
        policy: Policy = Policy.REPLACED,
        managed_keys: Sequence[Sequence[Any]] = (),
    ) -> ServiceResult:
        """What the operator does for one service: validate, then list, diff, apply, commit, verify."""
        return await sync_service(
            self.session,
            service,
            self.validated(service, items),
            policy=policy,
            managed_keys=managed_keys,
        )

    async def listed(self, service: str) -> list[dict[str, Any]]:
        """The service's items as the dictionary's `list` reads them, ownership marker removed."""
        svc = self.provider.dictionary.services[service]
        rules = comparison_rules(svc, service)
        marker = service_marker(self.session, service)
        items, _ = strip_marker(await list_items(self.session, service), svc, marker, rules)
        return items

    def rules(self, service: str) -> diff.ComparisonRules:
        return comparison_rules(self.provider.dictionary.services[service], service)

    def key(self, service: str, item: Mapping[str, Any], *, desired: bool = True) -> diff.Key | None:
        """The natural key of a desired item (validated first) or of a listed device item."""
        chosen = self.validated(service, [item])[0] if desired else item
        return diff.item_key(chosen, self.rules(service))

    async def find(self, service: str, item: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Listed items with the natural key of `item`."""
        rules, wanted = self.rules(service), self.key(service, item)
        return [i for i in await self.listed(service) if diff.item_key(i, rules) == wanted]

    def differences(self, service: str, desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
        """Fields in which the device's item differs from the desired one (empty: equal)."""
        want = self.validated(service, [desired])[0]
        return [c.field for c in diff.compare(want, actual, self.rules(service))]

    # ----------------------------------------------------------------- simulator (or router)
    async def state(self) -> dict[str, Any]:
        if self.router is not None:
            return await asyncio.to_thread(netns_device.router_state, self.router)
        assert self.admin is not None
        resp = await self.admin.get("/_sim/state")
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def reset_requests(self) -> None:
        if self.admin is None:
            self.log.clear()
            return
        (await self.admin.delete("/_sim/stats")).raise_for_status()

    async def requests(self) -> list[dict[str, Any]]:
        if self.admin is None:
            return list(self.log)
        resp = await self.admin.get("/_sim/requests")
        resp.raise_for_status()
        log: list[dict[str, Any]] = resp.json()
        return log

    def is_write(self, record: Mapping[str, Any]) -> bool:
        for rule in self.case.doc.get("writes") or []:
            if re.search(rule.get("method", ".*"), str(record["method"])) and re.search(
                rule.get("path", ".*"), str(record["path"])
            ):
                return True
        return False

    async def state_rows(self, service: str) -> list[Any]:
        spec = self.case.service(service)["state"]
        return [m.value for m in jsonpath(spec["rows"]).find(await self.state())]

    async def state_matching(self, service: str, selector: Mapping[str, str]) -> list[Any]:
        return [row for row in await self.state_rows(service) if row_matches(row, selector)]

    # ----------------------------------------------------------------- the device's own API
    def sim_value(self, spec: Mapping[str, Any]) -> str:
        if "value" in spec:
            return str(spec["value"])
        assert self.sim is not None
        return str(getattr(self.sim.credentials, spec["sim"]))

    def device_client(self) -> httpx.AsyncClient:
        assert self.sim is not None
        auth_spec: Mapping[str, Any] = (self.case.doc.get("device") or {}).get("http") or {}
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if "basic" in auth_spec:
            user, password = auth_spec["basic"]
            auth = (self.sim_value({"sim": user}), self.sim_value({"sim": password}))
        for name, attr in (auth_spec.get("header") or {}).items():
            headers[name] = self.sim_value({"sim": attr})
        if "bearer" in auth_spec:
            headers["Authorization"] = "Bearer " + self.sim_value({"sim": auth_spec["bearer"]})
        client = httpx.AsyncClient(
            base_url=self.sim.base_url,
            verify=self.sim.client_ssl_context() if self.sim.tls else False,
            auth=auth,
            headers=headers,
            timeout=10,
        )
        self.extra_clients.append(client)
        return client

    async def device_do(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """Change the device directly, as an administrator would (not through the engine)."""
        client: httpx.AsyncClient | None = None
        form_key = ((self.case.doc.get("device") or {}).get("http") or {}).get("formKey")
        for action in actions:
            if "http" in action:
                client = client or self.device_client()
                call = action["http"]
                kwargs: dict[str, Any] = {}
                if "json" in call:
                    kwargs["json"] = call["json"]
                if "form" in call:
                    form = {
                        k: (v if isinstance(v, str) else json.dumps(v)) for k, v in dict(call["form"]).items()
                    }
                    if form_key:
                        form["key"] = self.sim_value({"sim": form_key})
                    kwargs["data"] = form
                if "query" in call:
                    kwargs["params"] = call["query"]
                resp = await client.request(call.get("method", "GET"), call["path"], **kwargs)
                assert resp.status_code < 300, f"{call['path']}: {resp.status_code} {resp.text[:300]}"
            elif "cli" in action:
                await self.device_cli(action["cli"])
            else:
                raise AssertionError(f"unknown device action {action!r}")

    async def device_cli(self, lines: Sequence[str]) -> str:
        """Run CLI lines in one CLI session as the simulator's admin user (router: shell lines)."""
        if self.router is not None:
            return await asyncio.to_thread(netns_device.run_lines, self.router, lines)
        assert self.sim is not None and self.sim.ssh_port is not None
        creds = self.sim.credentials
        async with asyncssh.connect(
            "127.0.0.1",
            self.sim.ssh_port,
            username=creds.username,
            password=creds.password,
            known_hosts=None,
        ) as conn:
            # One exec request runs every line in one CLI session (configuration modes carry over).
            result = await conn.run("\n".join(lines), check=False)
            assert result.exit_status == 0, f"{lines!r} failed: {result.stdout!s}{result.stderr!s}"
            return str(result.stdout or "")

    async def close(self) -> None:
        for client in self.extra_clients:
            await client.aclose()
        if self.admin is not None:
            await self.admin.aclose()
        await self.factory.aclose()
        if self.sim is not None:
            await self.sim.stop()


def row_matches(row: Any, selector: Mapping[str, str]) -> bool:
    """Every selector regex matches: `_` against a text row, a field's text otherwise."""
    for name, pattern in selector.items():
        if name == "_":
            text = row if isinstance(row, str) else json.dumps(row, sort_keys=True)
        elif isinstance(row, Mapping):
            value: Any = row.get(name)  # a literal key (RouterOS `remote.as`) wins over a dotted path
            if value is None:
                value = row
                for part in name.split("."):
                    value = value.get(part) if isinstance(value, Mapping) else None
            if value is None:
                return False
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        else:
            return False
        if re.search(pattern, text) is None:
            return False
    return True


def _credentials(case: Case, source: Any, *, bootstrap: bool) -> dict[str, str]:
    """`source`: the simulator (`sim:` attributes of its Credentials) or the router lab (`lab:`)."""
    specs: dict[str, Any] = dict(case.doc.get("credentials") or {})
    if bootstrap:
        specs = dict((case.doc.get("bootstrap") or {}).get("credentials") or {})
    values = {}
    for name, spec in specs.items():
        if "value" in spec:
            values[name] = str(spec["value"])
        elif "lab" in spec:
            values[name] = str(getattr(source, spec["lab"]))
        else:
            values[name] = str(getattr(source.credentials, spec["sim"]))
    return values


async def open_lab(
    case: Case,
    *,
    factory_defaults: bool = False,
    broken_credentials: bool = False,
    service: str | None = None,
    router: LinuxRouterLab | None = None,
    sim: BaseSimulator | None = None,
) -> Lab:
    """Start the case's simulator (`sim`: this one, not yet started, instead of a new one), or
    reset the shared `router` for a `lab:` case, and open an engine session on it; with `service`,
    run that service's `setup` device actions (what its items need on the device, e.g. a default
    backend)."""
    provider = load_provider_file(PROVIDERS / f"{case.provider}.yaml")
    extra: dict[str, str] = {}
    ports: dict[str, int] = {}
    if router is not None:
        await netns_device.prepare(router, case.doc["lab"], factory=factory_defaults)
        host, source, name = router.mgmt_address, router, f"lab-{case.provider}"
        ports = {n: router.ssh_port for n, c in provider.dictionary.connections.items() if c.type == "ssh"}
        extra["known_hosts"] = router.known_hosts_line + "\n"
    else:
        if sim is None:
            sim_spec: Mapping[str, Any] = case.doc["simulator"]
            sim_cls = SIMULATORS[sim_spec["vendor"]]
            tls = bool(sim_spec.get("tls", True))
            sim = sim_cls(SimulatorConfig(tls=tls, factory_defaults=factory_defaults))
        await sim.start()
        host, source, name = "127.0.0.1", sim, f"sim-{case.provider}"
        # HTTP(S) connections go to the simulator's HTTP listener, SSH ones to its SSH listener.
        for conn_name, conn in provider.dictionary.connections.items():
            port = sim.ssh_port if conn.type == "ssh" else sim.port
            if port is not None:
                ports[conn_name] = int(port)
        if sim.tls_ca_pem:
            extra["ca.crt"] = sim.tls_ca_pem
        if sim.ssh_port is not None and sim.ssh_host_public_key:
            extra["known_hosts"] = f"[127.0.0.1]:{sim.ssh_port} {sim.ssh_host_public_key}\n"
    ref = ApplianceRef(
        name=name, namespace=NAMESPACE, host=host, ports=ports, vars=dict(case.doc.get("vars") or {})
    )
    values = _credentials(case, source, bootstrap=factory_defaults)
    if broken_credentials:
        values = {k: v + "-wrong" for k, v in values.items()}
    creds = Credentials(values=values, extra=extra)
    body: dict[str, Any] = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": str(uuid.uuid4())},
        # The dictionaries' request rates protect real appliances; a local simulator needs no such
        # care, and the suite must stay fast (an appliance may override limits the same way).
        "spec": {"management": {"host": host, "ports": ports}, "limits": {"requestsPerSecond": 500}},
    }
    factory = ConnectionFactory()
    conns = await factory.get(body, provider.dictionary, creds, ref)
    log: list[dict[str, Any]] = []
    session = Session(
        provider,
        ref,
        creds.values,
        conns,
        observe=lambda op, outcome, _s: log.append({"method": "SSH", "path": op, "outcome": outcome}),
    )
    admin = None
    if sim is not None:
        admin = httpx.AsyncClient(
            base_url=sim.base_url, verify=sim.client_ssl_context() if sim.tls else False, timeout=10
        )
    lab = Lab(case, sim, provider, factory, session, ref, body, creds, admin, router=router, log=log)
    if service is not None:
        await lab.device_do(case.service(service).get("setup") or [])
    return lab


@pytest.fixture(scope="session")
def conformance_router() -> Iterator[LinuxRouterLab]:
    """The Linux router lab of the `lab:` cases: started on first use, shared by the session."""
    if os.geteuid() != 0:
        pytest.skip("the Linux router lab needs root (network namespaces)")
    lab = netns_device.start_lab()
    yield lab
    lab.stop()


@pytest.fixture
async def lab_factory(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """`await lab_factory(case, factory_defaults=False)` → a Lab, closed after the test."""
    labs: list[Lab] = []

    async def make(case: Case, **kwargs: Any) -> Lab:
        if "lab" in case.doc:
            kwargs["router"] = request.getfixturevalue("conformance_router")
        lab = await open_lab(case, **kwargs)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        await lab.close()
