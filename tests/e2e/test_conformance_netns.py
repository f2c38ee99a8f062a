"""The shared conformance suite against real software: the `lab:` case files of
tests/integration/conformance/cases (linux-nftables-frr, haproxy-runtime) run the very tests of
test_conformance.py against a real Linux router (OpenSSH, nftables, FRR, HAProxy) in network
namespaces, one router shared by the session and reset before each test.

Ground truth is what the router's own tools say (`nft -j list ruleset`, FRR's running
configuration, HAProxy's `show servers state`); the request log is the engine's own.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.conformance import conftest as conformance
from tests.integration.conformance import test_conformance as suite
from tests.integration.conformance.conftest import NETNS_CASES, Case, provider_params, service_params

pytestmark = pytest.mark.e2e

# The conformance fixtures, visible to this module's tests.
lab_factory = conformance.lab_factory
conformance_router = conformance.conformance_router

LabFactory = suite.LabFactory


def _services(test: str, **kwargs: Any) -> Any:
    return pytest.mark.parametrize(("case", "service"), service_params(test, cases=NETNS_CASES, **kwargs))


def _providers(test: str) -> Any:
    return pytest.mark.parametrize("case", provider_params(test, NETNS_CASES))


@_services("test_create_update_delete")
async def test_create_update_delete(lab_factory: LabFactory, case: Case, service: str) -> None:
    await suite.test_create_update_delete(lab_factory, case, service)


@_services("test_adopts_preexisting_item", needs="preexisting")
async def test_adopts_preexisting_item(lab_factory: LabFactory, case: Case, service: str) -> None:
    await suite.test_adopts_preexisting_item(lab_factory, case, service)


@_services("test_delete_and_update_in_one_sync", needs="trio")
async def test_delete_and_update_in_one_sync(lab_factory: LabFactory, case: Case, service: str) -> None:
    await suite.test_delete_and_update_in_one_sync(lab_factory, case, service)


@pytest.mark.parametrize(("case", "service"), suite.ordered_trios("test_reorder_moves_items", NETNS_CASES))
async def test_reorder_moves_items(lab_factory: LabFactory, case: Case, service: str) -> None:
    await suite.test_reorder_moves_items(lab_factory, case, service)


@pytest.mark.parametrize(("case", "service"), suite.ordered_trios("test_insert_lands_in_place", NETNS_CASES))
async def test_insert_lands_in_place(lab_factory: LabFactory, case: Case, service: str) -> None:
    await suite.test_insert_lands_in_place(lab_factory, case, service)


@_providers("test_health_checks_pass")
async def test_health_checks_pass(lab_factory: LabFactory, case: Case) -> None:
    await suite.test_health_checks_pass(lab_factory, case)


@_providers("test_health_checks_fail_with_wrong_credentials")
async def test_health_checks_fail_with_wrong_credentials(lab_factory: LabFactory, case: Case) -> None:
    await suite.test_health_checks_fail_with_wrong_credentials(lab_factory, case)


@_providers("test_every_service_is_covered")
async def test_every_service_is_covered(case: Case) -> None:
    await suite.test_every_service_is_covered(case)


@pytest.mark.parametrize("case", suite.bootstrap_params(NETNS_CASES))
async def test_bootstrap_of_a_factory_fresh_device(lab_factory: LabFactory, case: Case) -> None:
    await suite.test_bootstrap_of_a_factory_fresh_device(lab_factory, case)
