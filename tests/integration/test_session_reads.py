"""A read asked with `reuse` (the version after the health checks) costs no second request; nothing
else is answered from memory, and any write forgets what was read."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from tests.integration.conformance.conftest import CASE_LIST, Lab, open_lab

from vnf_operator.engine.health import run_health_checks
from vnf_operator.engine.upgrade import device_version

pytestmark = pytest.mark.integration

STATUS_PAGE = "/api/core/firmware/status"


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    case = next(c for c in CASE_LIST if c.provider == "opnsense")
    opened = await open_lab(case)
    try:
        yield opened
    finally:
        await opened.close()


async def status_reads(lab: Lab) -> int:
    return Counter(r["path"] for r in await lab.requests())[STATUS_PAGE]


async def test_version_read_reuses_the_health_checks_answer_until_a_write(lab: Lab) -> None:
    await lab.reset_requests()
    health = await run_health_checks(lab.session)
    assert health.ok, health.message
    assert await status_reads(lab) == 1
    version = await device_version(lab.session)
    assert version
    assert await status_reads(lab) == 1  # answered by the health check's read

    # A poll (the health checks again) always asks the device.
    assert (await run_health_checks(lab.session)).ok
    assert await status_reads(lab) == 2

    # A write in between: the version is read from the device again.
    rule = {
        "description": "reads-test",
        "action": "pass",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "2222",
    }
    result = await lab.sync("firewall_rules", [rule])
    assert result.applied.get("create") == 1, result.applied
    assert await device_version(lab.session) == version
    assert await status_reads(lab) == 3
