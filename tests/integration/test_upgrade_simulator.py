"""The OPNsense simulator's firmware endpoints: an update reboots into what the mirror offers (the
device is unreachable meanwhile); a breaking update leaves the old version unhealthy until a
configuration restore, which like the real one takes only a multipart upload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from vnf_operator.testing.simulators import OpnsenseSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

AUTH = (OpnsenseSimulator.default_credentials.api_key, OpnsenseSimulator.default_credentials.api_secret)


@pytest.fixture
async def sim() -> AsyncIterator[OpnsenseSimulator]:
    simulator = OpnsenseSimulator(SimulatorConfig())
    simulator.upgrade_reboot_s = 0.5
    await simulator.start()
    yield simulator
    await simulator.stop()


async def status(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/api/core/firmware/status")


async def went_down(client: httpx.AsyncClient) -> bool:
    """True once a request is refused (the reboot window began)."""
    for _ in range(100):
        try:
            await status(client)
        except httpx.TransportError:
            return True
        await asyncio.sleep(0.05)
    return False


async def until_back(client: httpx.AsyncClient) -> httpx.Response:
    for _ in range(100):
        try:
            return await status(client)
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise AssertionError("the simulator did not come back")


async def test_update_reboots_into_the_offered_version(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=AUTH) as api:
        assert (await status(api)).json()["status"] == "none"
        sim.firmware_available = "25.7.9"
        offered = (await status(api)).json()
        assert offered["status"] == "update" and offered["product"]["product_latest"] == "25.7.9"
        assert (await api.get("/api/core/firmware/update")).json() == {"status": "failed"}  # POST only
        started = (await api.post("/api/core/firmware/update")).json()
        assert started["status"] == "ok" and started["msg_uuid"]
        assert await went_down(api), "the device never became unreachable during the reboot"
        after = (await until_back(api)).json()
        assert after["product_version"] == "25.7.9" and after["status"] == "none"


async def test_breaking_update_is_repaired_by_a_multipart_restore(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=AUTH) as api:
        backup = (await api.get("/api/core/backup/download/this")).content
        sim.firmware_available, sim.upgrade_breaks = "25.7.9", True
        await api.post("/api/core/firmware/update")
        assert await went_down(api)
        broken = await until_back(api)
        assert broken.status_code == 500 and "could not be loaded" in broken.json()["errorMessage"]
        # Not a file upload: refused, as by the real endpoint.
        refused = await api.post("/api/core/backup/restore", data={"conffile": backup.decode()})
        assert refused.json() == {"status": "failed", "message": "No files uploaded"}
        restored = await api.post(
            "/api/core/backup/restore",
            files={"conffile": ("config.xml", backup, "text/xml"), "rebootafterrestore": (None, b"0")},
        )
        assert restored.json() == {"status": "success"}  # "0" means no reboot (PHP empty())
        healthy = await status(api)
        assert healthy.status_code == 200 and healthy.json()["product_version"] == "25.7"
