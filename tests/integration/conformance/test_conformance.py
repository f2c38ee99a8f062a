"""Conformance of every provider dictionary with a simulator, service by service.

For each (provider, service) of `cases/*.yaml` the engine (Session + sync_service, as the operator
runs it) must: create an item, list it back and find it on the device; re-apply the same desired
state with zero device writes; update it and see the change; delete it and see it gone; and adopt an
identical item made beforehand through the device's own API instead of duplicating it. Ordered
services keep the spec order; health checks pass, and fail with wrong credentials; providers with a
bootstrap turn a factory-fresh simulator into a managed appliance through the operator's reconciler.

Ground truth is the simulator's own state (`GET /_sim/state`) and request log (`GET /_sim/requests`),
never only what the dictionary under test reads back. The same tests run against a real Linux router
in network namespaces for the `lab:` cases (tests/e2e/test_conformance_netns.py, e2e tier).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest
from tests.integration.conformance.conftest import (
    CASE_LIST,
    PROVIDERS,
    Case,
    Lab,
    merged,
    provider_params,
    row_matches,
    service_params,
)

from vnf_operator.core.loader import load_provider_file
from vnf_operator.engine.health import run_health_checks

pytestmark = pytest.mark.integration

LabFactory = Callable[..., Awaitable[Lab]]


async def assert_state(lab: Lab, service: str, phase: str, *, count: int = 1) -> None:
    """The simulator's state shows the item (`count` rows match `identity`) and, for `created` /
    `updated`, its fields as that phase left them."""
    spec = lab.case.service(service)["state"]
    rows = await lab.state_rows(service)
    mine = [r for r in rows if row_matches(r, spec["identity"])]
    assert len(mine) == count, f"{phase}: {len(mine)} device row(s) match {spec['identity']}: {mine}"
    expected: Mapping[str, str] = spec.get(phase) or {}
    if not expected or count == 0:
        return
    if "_" in expected:  # text rows (configuration lines): the line must be there
        assert any(row_matches(r, expected) for r in rows), f"{phase}: no device line matches {expected}"
    else:
        assert row_matches(mine[0], expected), f"{phase}: device row {mine[0]} does not match {expected}"


@pytest.mark.parametrize(("case", "service"), service_params("test_create_update_delete"))
async def test_create_update_delete(lab_factory: LabFactory, case: Case, service: str) -> None:
    lab = await lab_factory(case, service=service)
    spec = case.service(service)
    created: dict[str, Any] = dict(spec["create"])
    updated = merged(created, spec["update"])
    assert lab.differences(service, updated, lab.validated(service, [created])[0]), (
        "the case's update changes nothing"
    )

    # create → the list shows it, the device has it
    await lab.reset_requests()
    result = await lab.sync(service, [created])
    assert result.plan is not None
    assert result.plan.counts()["create"] == 1, result.plan.summary()
    assert result.applied["create"] == 1
    assert result.remaining == [], result.remaining
    assert any(lab.is_write(r) for r in await lab.requests()), "no request counted as a write"
    found = await lab.find(service, created)
    assert len(found) == 1, found
    assert lab.differences(service, created, found[0]) == []
    await assert_state(lab, service, "created")

    # the same desired state again: nothing to do, no device writes
    await lab.reset_requests()
    again = await lab.sync(service, [created], managed_keys=result.managed_keys)
    assert again.plan is not None and again.plan.is_empty, again.plan.summary() if again.plan else None
    log = await lab.requests()
    assert log, "re-applying did not even read the device"
    assert [r for r in log if lab.is_write(r)] == []

    # update → the list shows the change (managed keys carried over, as the operator's status does)
    result = await lab.sync(service, [updated], managed_keys=again.managed_keys)
    assert result.plan is not None
    counts = result.plan.counts()
    assert (counts["update"], counts["create"], counts["delete"]) == (1, 0, 0), result.plan.summary()
    assert result.remaining == [], result.remaining
    found = await lab.find(service, updated)
    assert len(found) == 1, found
    assert lab.differences(service, updated, found[0]) == []
    await assert_state(lab, service, "updated")
    state = case.service(service)["state"]
    if "_" in (state.get("created") or {}) and state["created"] != state.get("updated"):
        assert await lab.state_matching(service, state["created"]) == [], "the old value is still there"

    # delete → the list no longer shows it
    result = await lab.sync(service, [], managed_keys=result.managed_keys)
    assert result.plan is not None
    assert result.plan.counts()["delete"] == 1, result.plan.summary()
    assert result.remaining == [], result.remaining
    assert await lab.find(service, created) == []
    await assert_state(lab, service, "deleted", count=0)


@pytest.mark.parametrize(
    ("case", "service"), service_params("test_adopts_preexisting_item", needs="preexisting")
)
async def test_adopts_preexisting_item(lab_factory: LabFactory, case: Case, service: str) -> None:
    lab = await lab_factory(case, service=service)
    spec = case.service(service)
    created: dict[str, Any] = dict(spec["create"])
    await lab.device_do(spec["preexisting"])
    before = await lab.find(service, created)
    assert len(before) == 1, f"the item made through the device API is not listed: {before}"
    await assert_state(lab, service, "preexisting")

    result = await lab.sync(service, [created])
    assert result.plan is not None
    counts = result.plan.counts()
    assert (counts["create"], counts["update"], counts["delete"]) == (0, 0, 0), result.plan.summary()
    assert lab.key(service, created) in result.plan.adopted
    assert result.remaining == [], result.remaining
    assert len(await lab.find(service, created)) == 1
    await assert_state(lab, service, "preexisting")

    # Adopted, its key is managed (the operator records it in status): once the spec drops it,
    # `replaced` deletes it, although it never carried the ownership marker.
    result = await lab.sync(service, [], managed_keys=result.managed_keys)
    assert result.plan is not None
    assert result.plan.counts()["delete"] == 1, result.plan.summary()
    assert result.remaining == [], result.remaining
    assert await lab.find(service, created) == []
    await assert_state(lab, service, "deleted", count=0)


def ordered_trios(test: str, cases: Sequence[Case] = CASE_LIST) -> list[Any]:
    return [
        p
        for p in service_params(test, needs="trio", cases=cases)
        if load_provider_file(PROVIDERS / f"{p.values[0].provider}.yaml")
        .dictionary.services[p.values[1]]
        .ordering
    ]


@pytest.mark.parametrize(
    ("case", "service"), service_params("test_delete_and_update_in_one_sync", needs="trio")
)
async def test_delete_and_update_in_one_sync(lab_factory: LabFactory, case: Case, service: str) -> None:
    """One sync that deletes an item and updates another: ids must still point at the right items."""
    lab = await lab_factory(case, service=service)
    a, b, c = case.service(service)["trio"]
    first = await lab.sync(service, [a, b, c])
    assert first.remaining == [], first.remaining
    b2 = merged(b, case.service(service)["update"])
    result = await lab.sync(service, [b2, c], managed_keys=first.managed_keys)
    assert result.plan is not None
    counts = result.plan.counts()
    assert (counts["delete"], counts["update"], counts["create"]) == (1, 1, 0), result.plan.summary()
    assert result.remaining == [], result.remaining
    assert await lab.find(service, a) == []
    for wanted in (b2, c):
        found = await lab.find(service, wanted)
        assert len(found) == 1, found
        assert lab.differences(service, wanted, found[0]) == []


async def device_order(lab: Lab, service: str, trio: list[dict[str, Any]]) -> list[int]:
    """Positions of the trio's items in the order the device lists them."""
    keys = [lab.key(service, x) for x in trio]
    listed = [lab.key(service, i, desired=False) for i in await lab.listed(service)]
    return [keys.index(k) for k in listed if k in keys]


@pytest.mark.parametrize(("case", "service"), ordered_trios("test_reorder_moves_items"))
async def test_reorder_moves_items(lab_factory: LabFactory, case: Case, service: str) -> None:
    """Ordered collections: a new spec order is the device order after one sync, by moves only."""
    lab = await lab_factory(case, service=service)
    trio = list(case.service(service)["trio"])
    a, b, c = trio
    result = await lab.sync(service, [a, b, c])
    assert result.remaining == [], result.remaining
    assert await device_order(lab, service, trio) == [0, 1, 2]
    for desired, expected in (([c, a, b], [2, 0, 1]), ([b, c, a], [1, 2, 0])):
        result = await lab.sync(service, desired, managed_keys=result.managed_keys)
        assert result.plan is not None
        counts = result.plan.counts()
        assert counts["move"] >= 1 and (counts["create"], counts["delete"]) == (0, 0), result.plan.summary()
        assert result.remaining == [], result.remaining
        assert await device_order(lab, service, trio) == expected


@pytest.mark.parametrize(("case", "service"), ordered_trios("test_insert_lands_in_place"))
async def test_insert_lands_in_place(lab_factory: LabFactory, case: Case, service: str) -> None:
    """Ordered collections: an item added between two others is created there, in one sync."""
    lab = await lab_factory(case, service=service)
    trio = list(case.service(service)["trio"])
    a, b, c = trio
    result = await lab.sync(service, [a, c])
    assert await device_order(lab, service, trio) == [0, 2]
    result = await lab.sync(service, [a, b, c], managed_keys=result.managed_keys)
    assert result.remaining == [], result.remaining
    assert await device_order(lab, service, trio) == [0, 1, 2]


@pytest.mark.parametrize("case", provider_params("test_health_checks_pass"))
async def test_health_checks_pass(lab_factory: LabFactory, case: Case) -> None:
    lab = await lab_factory(case)
    result = await run_health_checks(lab.session)
    assert result.ok, result.message
    phases = case.doc.get("healthPhases") or ["network", "api", "service"]
    assert {c.phase for c in result.checks} == set(phases)


@pytest.mark.parametrize("case", provider_params("test_health_checks_fail_with_wrong_credentials"))
async def test_health_checks_fail_with_wrong_credentials(lab_factory: LabFactory, case: Case) -> None:
    lab = await lab_factory(case, broken_credentials=True)
    result = await run_health_checks(lab.session)
    assert not result.ok
    assert result.failed is not None and result.failed.phase == "api", result.message


@pytest.mark.parametrize("case", provider_params("test_every_service_is_covered"))
async def test_every_service_is_covered(case: Case) -> None:
    """Each writable service of the dictionary has a conformance case (or a stated reason)."""
    dictionary = load_provider_file(PROVIDERS / f"{case.provider}.yaml").dictionary
    writable = {n for n, s in dictionary.services.items() if "create" in s.operations}
    skipped = set((case.doc.get("notCovered") or {}).keys())
    assert writable - skipped == set(case.services), (
        f"services without a case: {sorted(writable - skipped - set(case.services))}"
    )


class MemorySecrets:
    """The reconciler's Secret reader, in memory: no Kubernetes needed."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        self.secrets = {name: dict(data) for name, data in secrets.items()}

    async def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        from vnf_operator.k8s.client import NotFound

        if name not in self.secrets:
            raise NotFound(f"secret {namespace}/{name} not found")
        return dict(self.secrets[name])

    async def apply_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.secrets[name] = dict(data)


def condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def bootstrap_params(cases: Sequence[Case] = CASE_LIST) -> list[Any]:
    return [
        p
        for p in provider_params("test_bootstrap_of_a_factory_fresh_device", cases)
        if "bootstrap" in p.values[0].doc
    ]


@pytest.mark.parametrize("case", bootstrap_params())
async def test_bootstrap_of_a_factory_fresh_device(lab_factory: LabFactory, case: Case) -> None:
    """The operator's reconciler (no Kubernetes: Secrets in memory) bootstraps a factory-fresh
    simulator, then syncs a service; the next reconcile needs no bootstrap and changes nothing."""
    lab = await lab_factory(case, factory_defaults=True)
    service = case.doc["bootstrap"]["service"]
    item = case.service(service)["create"]
    dictionary = lab.provider.dictionary
    secrets = MemorySecrets(
        {
            "credentials": {
                k: v for k, v in lab.creds.values.items() if not dictionary.credentials[k].bootstrap
            },
            "bootstrap": {k: v for k, v in lab.creds.values.items() if dictionary.credentials[k].bootstrap},
            "ca": {"ca.crt": lab.creds.extra.get("ca.crt", "")},
            "hosts": {"known_hosts": lab.creds.extra.get("known_hosts", "")},
        }
    )
    body = {
        **lab.body,
        "metadata": {**lab.body["metadata"], "generation": 1},
        "spec": {
            **lab.body["spec"],
            "providerRef": {"name": case.provider},
            "credentialsSecretRef": {"name": "credentials"},
            "bootstrapCredentialsSecretRef": {"name": "bootstrap"},
            "tls": {"caSecretRef": {"name": "ca"}},
            "ssh": {"knownHostsSecretRef": {"name": "hosts"}},
            "vars": dict(case.doc.get("vars") or {}),
            "services": {service: {"policy": "replaced", "items": [item]}},
        },
    }
    from vnf_operator.engine.appliance import ApplianceReconciler
    from vnf_operator.engine.connections import ConnectionFactory
    from vnf_operator.engine.providers import ProviderEntry
    from vnf_operator.engine.secrets import SecretResolver

    entry = ProviderEntry(case.provider, 1, loaded=lab.provider)
    factory = ConnectionFactory()
    try:
        reconciler = ApplianceReconciler(SecretResolver(secrets), factory)
        first = await reconciler.reconcile(body, entry)
        assert condition(first.status, "Ready").get("status") == "True", [
            (c.get("type"), c.get("status"), c.get("message")) for c in first.status.get("conditions") or []
        ]
        assert any(e.reason == "Bootstrapped" for e in first.events), [e.reason for e in first.events]
        await assert_state(lab, service, "created")

        second = await reconciler.reconcile({**body, "status": first.status}, entry)
        assert condition(second.status, "Ready").get("status") == "True", second.status
        assert not any(e.reason == "Bootstrapped" for e in second.events)
        assert not any(e.reason == "Applied" for e in second.events), [e.message for e in second.events]
    finally:
        await factory.aclose()
