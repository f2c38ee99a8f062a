"""providers/haproxy-dataplane.yaml configures a pool that spreads real connections over its backends.

dataplaneapi itself cannot be had here (its Go module is not served by the module proxy), so the
Data Plane API is the simulator, and behind it stands the lab router's real HAProxy: every
configuration the simulator commits is written to the router's haproxy.cfg, checked and loaded
(`reload_hook`), which is what dataplaneapi does. The engine (as the operator runs it) syncs
`lb_pools` and `lb_frontends`; HTTP requests from the client namespace show which backend answers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.integration.conformance.conftest import ALL_CASES, Lab, open_lab

from vnf_operator.testing.netns import LabConfig, LinuxRouterLab
from vnf_operator.testing.simulators import DataplaneSimulator, SimulatorConfig
from vnf_operator.testing.simulators.dataplane import HaproxyConfig

pytestmark = pytest.mark.e2e

POOL_PORT = 8090
CASE = next(c for c in ALL_CASES if c.provider == "haproxy-dataplane")


@pytest.fixture(scope="module")
def linux_router_lab_config() -> LabConfig:
    return LabConfig(with_peer=False, backend_count=3)


@pytest.fixture(scope="module")
def router(linux_router_lab: LinuxRouterLab) -> Iterator[LinuxRouterLab]:
    """The lab router; its HAProxy configuration is put back afterwards."""
    original = linux_router_lab.haproxy_config_path.read_text()
    yield linux_router_lab
    linux_router_lab.haproxy_config_path.write_text(original)
    linux_router_lab.haproxy_reload()


@pytest.fixture
async def api(router: LinuxRouterLab) -> AsyncIterator[Lab]:
    """An engine session on the Data Plane API simulator whose commits load the router's HAProxy."""
    head = router.haproxy_config_path.read_text().split("\nfrontend ", 1)[0].split("\nbackend ", 1)[0]

    def load(config: HaproxyConfig) -> None:
        router.haproxy_config_path.write_text(f"{head}\n{config.render_sections()}")
        router.haproxy_reload()

    async def reload(config: HaproxyConfig) -> None:
        await asyncio.to_thread(load, config)

    sim = DataplaneSimulator(SimulatorConfig(tls=True))
    sim.reload_hook = reload
    await reload(sim.haproxy)  # start from a configuration without frontends and backends
    lab = await open_lab(CASE, sim=sim)
    yield lab
    await lab.close()


def spread(router: LinuxRouterLab, requests: int) -> Counter[str]:
    """Which backend answered each of `requests` HTTP requests sent to the pool's frontend."""
    url = f"http://{router.front_address}:{POOL_PORT}/"
    return Counter(router.http_get_json("client", url)["backend"] for _ in range(requests))


class Syncer:
    """Syncs one service at a time; managed keys carry over, as the operator keeps them in status."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.managed: dict[str, list[list[Any]]] = {}

    async def __call__(self, service: str, items: list[dict[str, Any]]) -> tuple[int, int, int]:
        result = await self.lab.sync(service, items, managed_keys=self.managed.get(service, []))
        self.managed[service] = result.managed_keys
        assert result.remaining == [], result.remaining
        assert result.plan is not None
        counts = result.plan.counts()
        return counts["create"], counts["update"], counts["delete"]


async def test_pool_spreads_connections_over_its_servers(api: Lab, router: LinuxRouterLab) -> None:
    sync = Syncer(api)
    sim = api.sim
    assert isinstance(sim, DataplaneSimulator)
    b1, b2, b3 = router.backends
    servers = [
        {"name": f"s{i}", "address": b.address, "port": b.http_port} for i, b in enumerate((b1, b2, b3), 1)
    ]
    pool = {"name": "be_web", "mode": "http", "servers": servers}
    frontend = {
        "name": "fe_web",
        "mode": "http",
        "default_backend": "be_web",
        "address": router.front_address,
        "port": POOL_PORT,
    }
    assert await sync("lb_pools", [pool]) == (1, 0, 0)
    assert await sync("lb_frontends", [frontend]) == (1, 0, 0)
    assert "server s2 " in router.haproxy_config_path.read_text()
    counts = await asyncio.to_thread(spread, router, 12)
    assert set(counts) == {"backend-1", "backend-2", "backend-3"}, counts

    # One server fewer and weights 3:1 → traffic follows: backend-2 gets none, backend-1 most.
    weighted = [{**servers[0], "weight": 3}, {**servers[2], "weight": 1}]
    assert await sync("lb_pools", [{**pool, "servers": weighted}]) == (0, 1, 0)
    counts = await asyncio.to_thread(spread, router, 16)
    assert set(counts) == {"backend-1", "backend-3"}, counts
    assert counts["backend-1"] > counts["backend-3"], counts

    # Re-applying changes nothing on the device: no configuration version is spent.
    version = sim.version
    assert await sync("lb_pools", [{**pool, "servers": weighted}]) == (0, 0, 0)
    assert sim.version == version

    # Frontend first, then its pool: HAProxy no longer listens.
    assert await sync("lb_frontends", []) == (0, 0, 1)
    assert await sync("lb_pools", []) == (0, 0, 1)
    assert not await router.atcp_connect("client", router.front_address, POOL_PORT)
